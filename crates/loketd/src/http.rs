//! The HTTP/JSON API, the event stream, metrics and health.
//!
//! Every `/v1` route needs `Authorization: Bearer <token>`; the token names
//! the tenant, and a handler only ever sees that tenant. Conversations,
//! customers and agents are named by the platform's own ids (strings, or
//! integers meaning their decimal string); answers carry them back as
//! strings. Every error, on every route, is JSON:
//! `{"error": {"code": "...", "message": "..."}}`, with the stable codes
//! listed in `docs/loketd.md`.

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
use axum::routing::{get, post};
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
mod console;
mod conversations;
mod errors;
mod events;
mod extract;
mod health;
mod messages;
mod shapes;

pub use agents::AgentJson;
use agents::*;
use catalog::*;
pub use conversations::ConversationJson;
use conversations::*;
use errors::*;
pub use errors::{ApiError, ErrorBody, ErrorDetail};
use events::*;
pub use extract::{Authed, Body, PathId, QueryOf};
use health::*;
pub use messages::MessageBody;
use messages::*;
use shapes::*;
pub use shapes::{DecisionJson, ScoreJson, SkillJson};

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    let limits = state.limits.clone();
    let api = Router::new()
        .route("/v1/messages", post(post_message))
        .route("/v1/messages/batch", post(post_batch))
        .route("/v1/agents", get(list_agents).post(upsert_agent))
        .route("/v1/agents/{id}", get(get_agent).patch(update_agent).delete(remove_agent))
        .route("/v1/conversations", get(list_conversations))
        .route("/v1/conversations/{id}", get(get_conversation))
        .route("/v1/conversations/{id}/close", post(close_conversation))
        .route("/v1/conversations/{id}/transfer", post(transfer_conversation))
        .route("/v1/conversations/{id}/offer", post(answer_offer))
        .route("/v1/queues", get(queues))
        .route("/v1/customers/{id}", axum::routing::delete(erase_customer))
        .route("/v1/catalog/search", get(search_catalog))
        .route("/v1/catalog/stock", post(set_stock))
        .route("/v1/score", post(score))
        .route("/v1/stats", get(stats))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(limits.request_timeout_ms),
        ));
    Router::new()
        .route("/v1/events", get(events))
        .merge(api)
        .merge(console::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
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
