//! Errors: one JSON shape, `{"error": {"code", "message"}}`, on every
//! route, including the responses axum and tower make themselves.

use super::*;

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid", "message": "text: 5000 bytes; at most 4096"}}))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: see `docs/loketd.md`.
    pub code: String,
    /// For people.
    pub message: String,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    /// 422: the request parses but a value is wrong.
    pub(super) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<TenantError> for ApiError {
    fn from(error: TenantError) -> ApiError {
        let message = error.describe();
        match error {
            TenantError::Apply(
                ApplyError::UnknownAgent(_)
                | ApplyError::UnknownConversation(_)
                | ApplyError::Catalog(CatalogError::UnknownSku(_)),
            ) => ApiError::not_found(message),
            TenantError::Apply(ApplyError::NoCatalog) => {
                ApiError::new(StatusCode::NOT_FOUND, "no_catalog", message)
            }
            TenantError::Apply(ApplyError::UnknownSkill { .. }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_skill", message)
            }
            TenantError::Apply(
                ApplyError::NoSuchOffer { .. } | ApplyError::AgentCannotTake { .. },
            ) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            TenantError::Apply(_) => ApiError::invalid(message),
            TenantError::RateLimited(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            }
            TenantError::JournalUnavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "journal_unavailable", message)
            }
            TenantError::NotLeader { .. } => {
                ApiError::new(StatusCode::MISDIRECTED_REQUEST, "not_leader", message)
            }
            TenantError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
            }
            TenantError::Startup { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

/// Gives the responses that axum and tower make themselves (405 with an
/// empty body, 408 from the timeout, ...) the JSON error shape.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", format!("{method} is not allowed on this route"))
        }
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the body is too large".to_owned()),
        StatusCode::NOT_FOUND => ("not_found", "no such route".to_owned()),
        status if status.is_server_error() => ("internal", status.to_string()),
        status => ("bad_request", status.to_string()),
    };
    ApiError::new(status, code, message).into_response()
}
