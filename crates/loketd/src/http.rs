//! The HTTP/JSON API, the event stream, metrics and health.
//!
//! Every `/v1` route needs `Authorization: Bearer <token>`; the token names
//! the tenant, and a handler only ever sees that tenant. Errors are JSON:
//! `{"error": {"code": "...", "message": "..."}}` with a stable code.

use std::cell::RefCell;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use loket_catalog::{CatalogError, Hit};
use loket_intent::Score;
use loket_replay::AgentLine;
use loket_router::{Channel, ConversationId, RouterError};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;

use crate::auth::TokenTable;
use crate::command::{Command, ScoredMessage, SkillRecord};
use crate::config::LimitsConfig;
use crate::demo::agent_record;
use crate::events::EventJson;
use crate::state::{ApplyError, Decision, Incoming, presence_code, scored};
use crate::tenant::{Tenant, TenantError};

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

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<TenantError> for ApiError {
    fn from(error: TenantError) -> ApiError {
        let message = error.to_string();
        match error {
            TenantError::Apply(ApplyError::Router(
                RouterError::UnknownAgent(_) | RouterError::UnknownConversation(_),
            ))
            | TenantError::Apply(ApplyError::Catalog(CatalogError::UnknownSku(_))) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            TenantError::Apply(ApplyError::Router(RouterError::NoSuchOffer { .. })) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            TenantError::Apply(_) => ApiError::invalid(message),
            TenantError::RateLimited(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            }
            TenantError::JournalUnavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "journal_unavailable", message)
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

/// The tenant a request's bearer token names.
#[derive(Debug)]
pub struct Authed(pub Arc<Tenant>);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized =
            |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("an Authorization: Bearer <token> header is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        state
            .tokens
            .get(token.trim())
            .cloned()
            .map(Authed)
            .ok_or_else(|| unauthorized("unknown token"))
    }
}

/// A JSON body whose rejections are API errors.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "bad_json",
    };
    ApiError::new(
        if code == "bad_json" { StatusCode::BAD_REQUEST } else { status },
        code,
        rejection.body_text(),
    )
}

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    let limits = state.limits.clone();
    let api = Router::new()
        .route("/v1/messages", post(post_message))
        .route("/v1/messages/batch", post(post_batch))
        .route("/v1/agents", post(upsert_agent))
        .route("/v1/agents/{id}", get(get_agent).patch(update_agent).delete(remove_agent))
        .route("/v1/conversations/{id}", get(get_conversation))
        .route("/v1/conversations/{id}/close", post(close_conversation))
        .route("/v1/conversations/{id}/transfer", post(transfer_conversation))
        .route("/v1/conversations/{id}/offer", post(answer_offer))
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
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
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
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &LimitsConfig,
    mut stopping: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms.max(1)));
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
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "http: connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

// ----- Messages ---------------------------------------------------------------

/// A customer message as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// Conversation id; a new one opens a conversation.
    pub conversation_id: u64,
    /// Customer id.
    pub customer_id: u64,
    /// `chat`, `whatsapp`, `messenger`, `sms`, `email` or `voice`.
    pub channel: Channel,
    /// What the customer wrote.
    pub text: String,
    /// `nl` or `en`; detected when left out.
    #[serde(default)]
    pub language: Option<String>,
    /// Customer tier (0 = default).
    #[serde(default)]
    pub tier: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    messages: Vec<MessageBody>,
}

thread_local! {
    /// This worker thread's scoring memory, kept across requests so that
    /// buffers are not regrown and the model's token cache stays warm (see
    /// `loket_intent::Scratch`).
    static SCRATCH: RefCell<loket_pipeline::Scratch> = RefCell::default();
}

/// Runs `f` with this thread's scoring memory (a fresh one should it be
/// in use already, which synchronous scoring never causes).
fn with_scratch<R>(f: impl FnOnce(&mut loket_pipeline::Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut loket_pipeline::Scratch::default()),
    })
}

fn language_code(language: Option<&str>) -> Result<u8, String> {
    match language {
        None => Ok(loket_wire::language::DETECT),
        Some("nl") => Ok(loket_wire::language::NL),
        Some("en") => Ok(loket_wire::language::EN),
        Some(other) => Err(format!("language {other:?} is not \"nl\" or \"en\"")),
    }
}

fn score_messages(
    tenant: &Tenant,
    limits: &LimitsConfig,
    messages: &[MessageBody],
) -> Result<Vec<ScoredMessage>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid("messages: the batch is empty"));
    }
    if messages.len() > limits.max_batch_messages {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} messages; at most {} per batch", messages.len(), limits.max_batch_messages),
        ));
    }
    let pipeline = tenant.pipeline();
    with_scratch(|scratch| score_each(pipeline, scratch, limits, messages))
}

fn score_each(
    pipeline: &loket_pipeline::Pipeline,
    scratch: &mut loket_pipeline::Scratch,
    limits: &LimitsConfig,
    messages: &[MessageBody],
) -> Result<Vec<ScoredMessage>, ApiError> {
    let mut scored_messages = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        if message.text.len() > limits.max_text_bytes {
            return Err(ApiError::invalid(format!(
                "messages[{index}].text: {} bytes; at most {}",
                message.text.len(),
                limits.max_text_bytes
            )));
        }
        let language = language_code(message.language.as_deref())
            .map_err(|e| ApiError::invalid(format!("messages[{index}].language: {e}")))?;
        let incoming = Incoming {
            conversation: message.conversation_id,
            customer: message.customer_id,
            channel: message.channel.index() as u8,
            language,
            tier: message.tier,
            text: &message.text,
        };
        scored_messages.push(scored(pipeline, scratch, &incoming));
    }
    Ok(scored_messages)
}

fn decision_json(decision: &Decision) -> Value {
    let mut value = serde_json::to_value(EventJson { seq: decision.seq, event: &decision.event })
        .unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("conversation_score".to_owned(), json!(round(decision.conversation_score)));
    }
    value
}

fn round(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

fn hit_json(hit: &Hit) -> Value {
    json!({
        "sku": &*hit.sku,
        "name": &*hit.name,
        "stock": hit.stock,
        "in_stock": hit.in_stock,
        "price_cents": hit.price_cents,
        "matched": hit.matched.as_str(),
    })
}

fn score_json(tenant: &Tenant, score: &Score) -> Value {
    let model = tenant.pipeline().model();
    json!({
        "intent": model.label(score.intent),
        "confidence": round(score.confidence),
        "buying_intent": round(score.buying_intent),
        "language": score.language.code(),
        "signals": score.signals.names().collect::<Vec<_>>(),
    })
}

async fn post_message(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    Body(message): Body<MessageBody>,
) -> Result<Json<Value>, ApiError> {
    let ingest = Instant::now();
    tenant.check_rate(1)?;
    let scored_messages = score_messages(&tenant, &state.limits, std::slice::from_ref(&message))?;
    let score = crate::state::score(&scored_messages[0]);
    let ack = tenant
        .submit(Command::Messages(scored_messages), ingest)
        .await
        .unwrap_or(Err(TenantError::ShuttingDown))?;
    let decision = ack.applied.decisions.first().copied().ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no decision")
    })?;
    let mut body = score_json(&tenant, &score);
    body["decision"] = decision_json(&decision);
    body["conversation_score"] = json!(round(decision.conversation_score));
    body["products"] = Value::Array(
        tenant.pipeline().products(&message.text, &score).iter().map(hit_json).collect(),
    );
    body["last_seq"] = json!(ack.last_seq);
    Ok(Json(body))
}

async fn post_batch(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    Body(batch): Body<BatchBody>,
) -> Result<Json<Value>, ApiError> {
    let ingest = Instant::now();
    tenant.check_rate(batch.messages.len())?;
    let scored_messages = score_messages(&tenant, &state.limits, &batch.messages)?;
    let ack = tenant
        .submit(Command::Messages(scored_messages), ingest)
        .await
        .unwrap_or(Err(TenantError::ShuttingDown))?;
    Ok(Json(json!({
        "accepted": ack.applied.decisions.len(),
        "last_seq": ack.last_seq,
        "decisions": ack.applied.decisions.iter().map(decision_json).collect::<Vec<_>>(),
    })))
}

// ----- Agents -----------------------------------------------------------------

fn agent_json(tenant: &Tenant, id: u64) -> Result<Value, ApiError> {
    let router = tenant.pipeline().router();
    let view = router.agent(loket_router::AgentId(id)).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no agent {id}"))
    })?;
    let mut value = serde_json::to_value(&view).unwrap_or(Value::Null);
    if let Some(skills) = value.pointer_mut("/spec/skills") {
        *skills = name_skills(router, &view.spec.skills);
    }
    Ok(value)
}

/// Skill ids mean nothing outside the router: name them.
fn name_skills<'a>(
    router: &loket_router::Router,
    skills: impl IntoIterator<Item = &'a loket_router::SkillLevel>,
) -> Value {
    skills
        .into_iter()
        .map(|level| {
            json!({"skill": router.skill_name(level.skill).unwrap_or_default(), "level": level.level})
        })
        .collect()
}

async fn upsert_agent(
    Authed(tenant): Authed,
    Body(line): Body<AgentLine>,
) -> Result<Json<Value>, ApiError> {
    let record = agent_record(&line).map_err(ApiError::invalid)?;
    let id = record.id;
    tenant.apply(Command::UpsertAgent(record)).await?;
    Ok(Json(agent_json(&tenant, id)?))
}

async fn get_agent(Authed(tenant): Authed, Path(id): Path<u64>) -> Result<Json<Value>, ApiError> {
    Ok(Json(agent_json(&tenant, id)?))
}

/// Changes to an agent; fields left out stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentUpdate {
    #[serde(default)]
    skills: Option<std::collections::BTreeMap<String, i64>>,
    #[serde(default)]
    capacity: Option<loket_replay::CapacityLine>,
    #[serde(default)]
    presence: Option<loket_router::Presence>,
}

async fn update_agent(
    Authed(tenant): Authed,
    Path(id): Path<u64>,
    Body(update): Body<AgentUpdate>,
) -> Result<Json<Value>, ApiError> {
    if tenant.pipeline().router().agent(loket_router::AgentId(id)).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no agent {id}")));
    }
    // Reuse the agent-line checks for skills and capacity.
    let line = AgentLine {
        id: loket_replay::ExternalId(id.to_string()),
        kind: loket_router::AgentKind::Human,
        skills: update.skills.clone().unwrap_or_default(),
        languages: Vec::new(),
        capacity: update.capacity.clone(),
        presence: update.presence,
        team: None,
        tenant: None,
    };
    let record = agent_record(&line).map_err(ApiError::invalid)?;
    if update.skills.is_some() {
        let skills: Vec<SkillRecord> = record.skills.clone();
        tenant.apply(Command::SetSkills { agent: id, skills }).await?;
    }
    if update.capacity.is_some() {
        tenant.apply(Command::SetCapacity { agent: id, capacity: record.capacity }).await?;
    }
    if let Some(presence) = update.presence {
        tenant.apply(Command::SetPresence { agent: id, presence: presence_code(presence) }).await?;
    }
    Ok(Json(agent_json(&tenant, id)?))
}

async fn remove_agent(
    Authed(tenant): Authed,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let ack = tenant.apply(Command::RemoveAgent { agent: id }).await?;
    Ok(Json(json!({"removed": id, "last_seq": ack.last_seq})))
}

// ----- Conversations ------------------------------------------------------------

async fn get_conversation(
    Authed(tenant): Authed,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let pipeline = tenant.pipeline();
    let view = pipeline.router().conversation(ConversationId(id)).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no conversation {id}"))
    })?;
    let mut value = serde_json::to_value(&view).unwrap_or(Value::Null);
    value["required"] = name_skills(pipeline.router(), &view.required);
    value["conversation_score"] = json!(pipeline.conversation_score(ConversationId(id)).map(round));
    Ok(Json(value))
}

async fn close_conversation(
    Authed(tenant): Authed,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let ack = tenant.apply(Command::Close { conversation: id }).await?;
    Ok(Json(json!({"closed": id, "last_seq": ack.last_seq})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    agent: u64,
}

async fn transfer_conversation(
    Authed(tenant): Authed,
    Path(id): Path<u64>,
    Body(body): Body<TransferBody>,
) -> Result<Json<Value>, ApiError> {
    let ack = tenant.apply(Command::Transfer { conversation: id, agent: body.agent }).await?;
    Ok(Json(json!({"transferred": id, "agent": body.agent, "last_seq": ack.last_seq})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferBody {
    agent: u64,
    accept: bool,
}

async fn answer_offer(
    Authed(tenant): Authed,
    Path(id): Path<u64>,
    Body(body): Body<OfferBody>,
) -> Result<Json<Value>, ApiError> {
    let command = Command::AnswerOffer { conversation: id, agent: body.agent, accept: body.accept };
    let ack = tenant.apply(command).await?;
    Ok(Json(json!({"conversation": id, "accepted": body.accept, "last_seq": ack.last_seq})))
}

async fn erase_customer(
    Authed(tenant): Authed,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let report = tenant.erase(id).await?;
    Ok(Json(json!({"erased": report})))
}

// ----- Catalog and scoring ---------------------------------------------------------

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    5
}

async fn search_catalog(
    Authed(tenant): Authed,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let catalog = tenant.pipeline().catalog().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_catalog", "this tenant has no catalog")
    })?;
    let limit = query.limit.clamp(1, 100);
    let hits = catalog.search(&query.q, limit).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Json(json!({"query": query.q, "hits": hits.iter().map(hit_json).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StockBody {
    sku: String,
    stock: i64,
}

async fn set_stock(
    Authed(tenant): Authed,
    Body(body): Body<StockBody>,
) -> Result<Json<Value>, ApiError> {
    tenant.apply(Command::SetStock { sku: body.sku.clone(), stock: body.stock }).await?;
    Ok(Json(json!({"sku": body.sku, "stock": body.stock})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreBody {
    text: String,
    #[serde(default)]
    conversation_id: Option<u64>,
}

async fn score(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    Body(body): Body<ScoreBody>,
) -> Result<Json<Value>, ApiError> {
    if body.text.len() > state.limits.max_text_bytes {
        return Err(ApiError::invalid(format!(
            "text: {} bytes; at most {}",
            body.text.len(),
            state.limits.max_text_bytes
        )));
    }
    let pipeline = tenant.pipeline();
    let score = with_scratch(|scratch| pipeline.score(&body.text, scratch));
    let mut value = score_json(&tenant, &score);
    if let Some(id) = body.conversation_id {
        value["conversation_id"] = json!(id);
        value["conversation_score"] =
            json!(pipeline.conversation_score(ConversationId(id)).map(round));
    }
    Ok(Json(value))
}

async fn stats(Authed(tenant): Authed) -> Json<Value> {
    let stats = tenant.pipeline().router().stats();
    Json(json!({
        "tenant": tenant.name(),
        "router": stats,
        "last_seq": tenant.events().latest(),
    }))
}

// ----- Events ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    from: Option<u64>,
}

/// `GET /v1/events?from=SEQ`: Server-Sent Events, each with `id:` = its
/// sequence number and JSON data. Without `from`, the stream resumes after
/// `Last-Event-ID` if sent, else starts with the next event. A `from` older
/// than what is kept gives one `gap` event (`{"from":..,"oldest":..}`) first.
async fn events(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let from = match (query.from, last_event_id) {
        (Some(from), _) => from,
        (None, Some(last)) => last + 1,
        (None, None) => tenant.events().latest() + 1,
    };
    let log = tenant.events().clone();
    let updates = log.subscribe();
    let shutdown = state.shutdown.clone();
    struct Cursor {
        log: Arc<crate::events::EventLog>,
        updates: watch::Receiver<u64>,
        shutdown: watch::Receiver<bool>,
        next: u64,
        buffer: std::collections::VecDeque<SseEvent>,
        scratch: Vec<crate::state::SeqEvent>,
    }
    let cursor = Cursor {
        log,
        updates,
        shutdown,
        next: from,
        buffer: std::collections::VecDeque::new(),
        scratch: Vec::new(),
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.buffer.pop_front() {
                return Some((Ok(event), cursor));
            }
            if *cursor.shutdown.borrow() {
                return None;
            }
            cursor.scratch.clear();
            let read = cursor.log.read_from(cursor.next, 512, &mut cursor.scratch);
            if read.oldest > cursor.next && cursor.next <= cursor.log.latest() {
                let gap = json!({"from": cursor.next, "oldest": read.oldest});
                cursor.buffer.push_back(SseEvent::default().event("gap").data(gap.to_string()));
            }
            for event in &cursor.scratch {
                let data =
                    serde_json::to_string(&EventJson { seq: event.seq, event: &event.event })
                        .unwrap_or_default();
                cursor.buffer.push_back(SseEvent::default().id(event.seq.to_string()).data(data));
            }
            cursor.next = read.next;
            if !cursor.buffer.is_empty() {
                continue;
            }
            tokio::select! {
                changed = cursor.updates.changed() => if changed.is_err() { return None },
                _ = cursor.shutdown.changed() => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

// ----- Health and metrics ------------------------------------------------------------

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let unhealthy: Vec<&str> =
        state.tenants.iter().filter(|t| !t.is_healthy()).map(|t| t.name()).collect();
    if state.ready.load(Ordering::Relaxed) && unhealthy.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        let body = json!({"status": "not_ready", "unhealthy_tenants": unhealthy});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn metrics() -> Response {
    let body = crate::metrics::prometheus().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
