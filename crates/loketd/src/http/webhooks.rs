//! `/v1/webhooks`: the tenant's endpoints, their dead letters, redelivery
//! and enabling an endpoint a 410 disabled.

use std::collections::BTreeSet;

use super::*;
use crate::webhooks::{Endpoint, EndpointStatus, WebhookStore};

/// The tenant's webhook endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WebhookList {
    /// In configuration order; empty without `[[tenants.webhooks]]`.
    pub(super) endpoints: Vec<EndpointStatus>,
}

/// Which dead letters to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DeadLetterQuery {
    /// At most this many, oldest first (default 100, at most 10000).
    #[serde(default)]
    #[param(example = 100)]
    pub(super) limit: Option<usize>,
}

/// An event whose every attempt failed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DeadLetterJson {
    /// The `webhook-id` it was sent with (and is sent with again).
    #[schema(example = "msg_shop_42")]
    pub(super) id: String,
    /// The tenant's sequence number of the event.
    pub(super) seq: u64,
    /// The event's type.
    #[serde(rename = "type")]
    #[schema(example = "escalated")]
    pub(super) kind: String,
    /// Attempts made.
    pub(super) attempts: u32,
    /// What the last attempt got.
    #[schema(example = "HTTP 503")]
    pub(super) error: String,
    /// When it was given up, ms since the Unix epoch.
    pub(super) failed_at_ms: u64,
    /// The request body it is sent with.
    #[schema(value_type = Object)]
    pub(super) body: serde_json::Value,
}

/// An endpoint's dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DeadLetterList {
    /// The endpoint.
    pub(super) endpoint: String,
    /// How many there are in all.
    pub(super) total: usize,
    /// The oldest `limit` of them.
    pub(super) dead_letters: Vec<DeadLetterJson>,
}

/// Which dead letters to send again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Redeliver)]
pub(super) struct RedeliverBody {
    /// Their ids; all dead letters when left out.
    #[serde(default)]
    pub(super) ids: Option<Vec<String>>,
}

/// Dead letters queued for redelivery.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Redelivery {
    /// The endpoint.
    pub(super) endpoint: String,
    /// Dead letters now queued: each is sent once more, in order; one that
    /// fails again returns to the list.
    pub(super) queued: usize,
}

fn store(tenant: &Tenant) -> Result<&Arc<WebhookStore>, ApiError> {
    tenant.webhooks().ok_or_else(|| ApiError::not_found("this tenant has no webhook endpoints"))
}

fn endpoint<'a>(store: &'a WebhookStore, name: &str) -> Result<&'a Arc<Endpoint>, ApiError> {
    store.endpoint(name).ok_or_else(|| ApiError::not_found(format!("no webhook endpoint {name:?}")))
}

/// The tenant's webhook endpoints: where each stands.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints.", body = WebhookList,
            example = json!({"endpoints": [{"name": "crm", "url": "https://crm.example.com/hooks/loket",
                "events": ["escalated", "assigned"], "enabled": true, "pending": 0,
                "dead_letters": 1, "cursor": 1842, "last_error": "HTTP 503"}]})),
        Unauthorized,
    ))]
pub(super) async fn list_webhooks(Authed(tenant): Authed) -> Json<WebhookList> {
    let endpoints = tenant
        .webhooks()
        .map(|store| store.endpoints().iter().map(|e| store.status(e)).collect())
        .unwrap_or_default();
    Json(WebhookList { endpoints })
}

/// An endpoint's dead letters: events whose every attempt failed.
#[utoipa::path(get, path = "/v1/webhooks/{endpoint}/dead-letters", tag = "webhooks",
    security(("bearer" = [])),
    params(("endpoint" = String, Path, description = "The endpoint's name.", example = "crm"),
        DeadLetterQuery),
    responses(
        (status = 200, description = "Its dead letters, oldest first.", body = DeadLetterList,
            example = json!({"endpoint": "crm", "total": 1, "dead_letters": [{"id": "msg_shop_42",
                "seq": 42, "type": "escalated", "attempts": 10, "error": "HTTP 503",
                "failed_at_ms": 1796870000000u64, "body": {"type": "escalated",
                "timestamp": "2026-12-07T10:00:00.000Z", "tenant": "shop",
                "data": {"seq": 42, "at": 1796610659944u64, "conversation": "c-1",
                "type": "escalated", "trigger": "human_request"}}}]})),
        BadRequest, Unauthorized, NotFound,
    ))]
pub(super) async fn list_dead_letters(
    Authed(tenant): Authed,
    Path(name): Path<String>,
    QueryOf(query): QueryOf<DeadLetterQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let store = store(&tenant)?;
    let endpoint = endpoint(store, &name)?;
    let total = endpoint.dead_letter_count();
    let limit = query.limit.unwrap_or(100).min(10_000);
    let dead_letters = endpoint
        .dead_letters(limit)
        .into_iter()
        .map(|letter| DeadLetterJson {
            body: serde_json::from_str(&letter.body)
                .unwrap_or(serde_json::Value::String(letter.body)),
            id: letter.id,
            seq: letter.seq,
            kind: letter.kind,
            attempts: letter.attempts,
            error: letter.error,
            failed_at_ms: letter.failed_at_ms,
        })
        .collect();
    Ok(Json(DeadLetterList { endpoint: endpoint.name.clone(), total, dead_letters }))
}

/// Sends dead letters again: the ones named, or all.
///
/// Each is sent once more, in order, with its original `webhook-id`; one
/// that fails again returns to the list with one attempt more.
#[utoipa::path(post, path = "/v1/webhooks/{endpoint}/dead-letters/redeliver", tag = "webhooks",
    security(("bearer" = [])),
    params(("endpoint" = String, Path, description = "The endpoint's name.", example = "crm")),
    request_body(content = RedeliverBody, example = json!({"ids": ["msg_shop_42"]})),
    responses(
        (status = 202, description = "Queued.", body = Redelivery,
            example = json!({"endpoint": "crm", "queued": 1})),
        BadRequest, Unauthorized, NotFound, UnsupportedMediaType,
    ))]
pub(super) async fn redeliver(
    Authed(tenant): Authed,
    Path(name): Path<String>,
    Body(body): Body<RedeliverBody>,
) -> Result<(StatusCode, Json<Redelivery>), ApiError> {
    let store = store(&tenant)?;
    let endpoint = endpoint(store, &name)?;
    let ids: Option<BTreeSet<String>> = body.ids.map(|ids| ids.into_iter().collect());
    let queued = endpoint.queue_redelivery(ids.as_ref());
    Ok((StatusCode::ACCEPTED, Json(Redelivery { endpoint: endpoint.name.clone(), queued })))
}

/// Enables an endpoint that a 410 answer disabled: it receives the events
/// from now on (those of the time it was disabled were not kept for it).
#[utoipa::path(post, path = "/v1/webhooks/{endpoint}/enable", tag = "webhooks",
    security(("bearer" = [])),
    params(("endpoint" = String, Path, description = "The endpoint's name.", example = "crm")),
    responses(
        (status = 200, description = "Enabled (also when it was).", body = EndpointStatus,
            example = json!({"name": "crm", "url": "https://crm.example.com/hooks/loket",
                "events": ["*"], "enabled": true, "pending": 0, "dead_letters": 0, "cursor": 1900})),
        Unauthorized, NotFound,
    ))]
pub(super) async fn enable_webhook(
    Authed(tenant): Authed,
    Path(name): Path<String>,
) -> Result<Json<EndpointStatus>, ApiError> {
    let store = store(&tenant)?;
    let endpoint = endpoint(store, &name)?;
    store.enable(endpoint);
    Ok(Json(store.status(endpoint)))
}
