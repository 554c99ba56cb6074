//! Health, readiness and Prometheus metrics.

use super::*;

/// Liveness or readiness.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready"}))]
pub(super) struct Health<'a> {
    /// `ok` (`/healthz`), `ready` or `not_ready` (`/readyz`).
    #[schema(value_type = String)]
    pub(super) status: &'static str,
    /// Tenants that failed (their journal cannot be written, or they did
    /// not start); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub(super) unhealthy_tenants: Vec<&'a str>,
}

/// Liveness: `ok` while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process runs.", body = Health,
        example = json!({"status": "ok"}))))]
pub(super) async fn healthz() -> Json<Health<'static>> {
    Json(Health { status: "ok", unhealthy_tenants: Vec::new() })
}

/// Readiness.
///
/// Ready once every tenant has recovered, while none has failed and until
/// shutdown begins.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready.", body = Health, example = json!({"status": "ready"})),
        (status = 503, description = "Recovering, shutting down, or a tenant failed.", body = Health,
            example = json!({"status": "not_ready", "unhealthy_tenants": ["shop"]})),
    ))]
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let unhealthy: Vec<&str> =
        state.tenants.iter().filter(|t| !t.is_healthy()).map(|t| t.name()).collect();
    if state.ready.load(Ordering::Relaxed) && unhealthy.is_empty() {
        Json(Health { status: "ready", unhealthy_tenants: unhealthy }).into_response()
    } else {
        let body = Health { status: "not_ready", unhealthy_tenants: unhealthy };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// Prometheus metrics.
///
/// Every tenant's, in the Prometheus text format (docs/loketd.md#metrics).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text.", content_type = "text/plain; version=0.0.4",
        body = String)))]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    for tenant in state.tenants.iter() {
        tenant.metrics().observe(tenant.is_healthy(), tenant.pipeline().router());
        if let Some(metering) = tenant.metering() {
            tenant.metrics().observe_reports(&metering.read(), crate::tenant::wall_ms());
        }
    }
    let body = crate::metrics::prometheus().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
