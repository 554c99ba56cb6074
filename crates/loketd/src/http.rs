//! The HTTP/JSON API, the event stream, metrics and health.
//!
//! Every `/v1` route needs `Authorization: Bearer <token>`; the token names
//! the tenant, and a handler only ever sees that tenant. Conversations,
//! customers and agents are named by the platform's own ids (strings, or
//! integers meaning their decimal string); answers carry them back as
//! strings. Every error, on every route, is JSON:
//! `{"error": {"code": "...", "message": "..."}}`, with the stable codes
//! listed in `docs/loketd.md`.
//!
//! Routes and their OpenAPI 3.1 description are built together from one
//! list (`routes`, `http/openapi.rs`); [`openapi`] gives the description,
//! which the daemon serves at `GET /openapi.json` and `docs/openapi.json`
//! holds a copy of.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::Stream;
use loket_catalog::{CatalogError, Hit};
use loket_ids::{Id, Name};
use loket_intent::Score;
use loket_replay::{AgentLine, CapacityLine};
use loket_router::{
    AgentKind, AgentView, Capacity, Channel, ConversationId, ConversationState, ConversationView,
    EscalationTrigger, Language, Presence, RouterStats, SkillLevel,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;
use utoipa::{IntoParams, ToSchema};

use crate::auth::TokenTable;
use crate::command::{Command, ScoredMessage, SkillRecord};
use crate::config::LimitsConfig;
use crate::demo::agent_record;
use crate::events::EventJson;
use crate::state::{ApplyError, Decision, Incoming, SeqEvent, presence_code, scored};
use crate::tenant::{ErasureReport, Tenant, TenantError};

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// This node, when the daemon runs in a cluster.
    pub cluster: Option<Arc<crate::cluster::Node>>,
    /// Tenants by bearer token.
    pub tokens: Arc<TokenTable<Tenant>>,
    /// All tenants.
    pub tenants: Arc<Vec<Arc<Tenant>>>,
    /// Limits.
    pub limits: Arc<LimitsConfig>,
    /// Recovery done and not shutting down.
    pub ready: Arc<AtomicBool>,
    /// Becomes true when the daemon shuts down (ends event streams).
    pub shutdown: watch::Receiver<bool>,
}

mod agents;
mod catalog;
mod cluster;
mod console;
mod conversations;
mod errors;
mod events;
mod extract;
mod health;
mod messages;
mod openapi;
mod reports;
mod shapes;
mod webhooks;

pub use agents::AgentJson;
use agents::*;
use catalog::*;
use cluster::*;
pub use conversations::ConversationJson;
use conversations::*;
use errors::*;
pub use errors::{ApiError, ErrorBody, ErrorDetail};
use events::*;
pub use extract::{Authed, Body, PathId, QueryOf};
use health::*;
pub use messages::MessageBody;
use messages::*;
use openapi::schema;
use openapi::{
    BadRequest, Conflict, NotFound, RateLimited, TooLarge, Unauthorized, Unavailable,
    Unprocessable, UnsupportedMediaType,
};
use reports::*;
use shapes::*;
pub use shapes::{DecisionJson, ScoreJson, SkillJson};
use webhooks::*;

/// The HTTP application: the routes of `routes`, each served as its
/// OpenAPI description says, plus `GET /openapi.json` serving that
/// description (generated here, once).
pub fn app(state: AppState) -> Router {
    let limits = state.limits.clone();
    let (router, description) = routes(&limits).into_parts();
    let json = openapi::DescriptionJson(Bytes::from(openapi::to_json(&description)));
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::Extension(json))
        .with_state(state)
}

/// The OpenAPI 3.1 description of the HTTP API, as `GET /openapi.json`
/// serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes(&LimitsConfig::default()).into_parts().1
}

/// [`openapi`] as pretty-printed JSON with a final newline: the bytes
/// `GET /openapi.json` answers with and `docs/openapi.json` holds.
pub fn openapi_json() -> String {
    openapi::to_json(&openapi())
}

/// Every route, with its description: the one list of the API. Each entry
/// names a handler and the type its `#[utoipa::path]` attribute generated
/// (`__path_<handler>`), which gives the path and methods it is routed at.
fn routes(limits: &LimitsConfig) -> openapi::Documented {
    use openapi::Documented;
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    let api = Documented::new()
        .route::<__path_post_message, _, _>(post_message)
        .route::<__path_post_batch, _, _>(post_batch)
        .route::<__path_list_agents, _, _>(list_agents)
        .route::<__path_upsert_agent, _, _>(upsert_agent)
        .route::<__path_get_agent, _, _>(get_agent)
        .route::<__path_update_agent, _, _>(update_agent)
        .route::<__path_remove_agent, _, _>(remove_agent)
        .route::<__path_list_conversations, _, _>(list_conversations)
        .route::<__path_get_conversation, _, _>(get_conversation)
        .route::<__path_close_conversation, _, _>(close_conversation)
        .route::<__path_post_reply, _, _>(post_reply)
        .route::<__path_post_order, _, _>(post_order)
        .route::<__path_get_reports, _, _>(get_reports)
        .route::<__path_transfer_conversation, _, _>(transfer_conversation)
        .route::<__path_answer_offer, _, _>(answer_offer)
        .route::<__path_queues, _, _>(queues)
        .route::<__path_erase_customer, _, _>(erase_customer)
        .route::<__path_search_catalog, _, _>(search_catalog)
        .route::<__path_set_stock, _, _>(set_stock)
        .route::<__path_score, _, _>(score)
        .route::<__path_stats, _, _>(stats)
        .route::<__path_cluster, _, _>(cluster)
        .route::<__path_list_webhooks, _, _>(list_webhooks)
        .route::<__path_list_dead_letters, _, _>(list_dead_letters)
        .route::<__path_redeliver, _, _>(redeliver)
        .route::<__path_enable_webhook, _, _>(enable_webhook);
    // The event stream lasts as long as the client reads: no timeout.
    let stream = Documented::new().route::<__path_events, _, _>(events);
    let health = Documented::new()
        .route::<__path_healthz, _, _>(healthz)
        .route::<__path_readyz, _, _>(readyz)
        .route::<__path_metrics, _, _>(metrics)
        .route::<openapi::__path_openapi_json, _, _>(openapi::openapi_json);
    let with_timeout = |router: Router<AppState>| {
        router.layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
    };
    api.map_router(with_timeout)
        .merge(stream)
        .merge(health.map_router(with_timeout))
        .merge(console::routes())
}

/// Serves `app` on `listener` over HTTP/1.1 until `stopping` turns true,
/// then stops accepting and waits for the connections to finish their
/// requests in flight (event streams end on the same signal).
///
/// Unlike `axum::serve`, every connection gets a header-read timeout
/// (`limits.header_timeout_ms`, also applied while a keep-alive connection
/// waits for its next request), so slow or idle clients cannot hold
/// connections open. Accept errors (out of file descriptors, ...) are
/// logged and retried after a pause; they never end the server.
///
/// With `tls`, each connection first completes a TLS handshake with the
/// certificate current when it was accepted, within the same header
/// timeout.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &LimitsConfig,
    tls: Option<Arc<crate::tls::Tls>>,
    mut stopping: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    let header_timeout = Duration::from_millis(limits.header_timeout_ms.max(1));
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "http: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let Some(tls) = &tls else {
            let connection =
                graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "http: connection ended with an error");
                }
            });
            continue;
        };
        let (acceptor, watcher, builder) = (tls.http(), graceful.watcher(), builder.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%error, "http: TLS handshake failed"),
                Err(_) => return tracing::debug!("http: TLS handshake timed out"),
            };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "http: connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
