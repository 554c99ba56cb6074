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

// ----- Errors -------------------------------------------------------------------

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, for programs: see `docs/loketd.md`.
    pub code: String,
    /// For people.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    /// 422: the request parses but a value is wrong.
    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
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
        let message = error.to_string();
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
async fn json_errors(request: Request, next: Next) -> Response {
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

// ----- Extractors -----------------------------------------------------------------

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
            .get(header::AUTHORIZATION)
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

/// A JSON body. A `Content-Type` is optional; one that is not JSON is 415.
/// A body that is not JSON is 400 `bad_json`; JSON with a missing, unknown
/// or wrong field is 422 `invalid`, naming the field.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        if let Some(value) = content_type {
            let json = value.to_str().ok().and_then(|v| v.split(';').next()).is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            });
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("send JSON (Content-Type: application/json), not {value:?}"),
                ));
            }
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            let status = rejection.status();
            let code =
                if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "bad_json" };
            ApiError::new(status, code, rejection.body_text())
        })?;
        parse_json(&bytes).map(Body)
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            let field = if path == "." { String::new() } else { format!("{path}: ") };
            ApiError::invalid(format!("{field}{inner}"))
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("the body is not JSON: {inner}"),
            )
        }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("the body is not JSON: {e}"))
    })?;
    Ok(value)
}

/// An id in the path (`/v1/conversations/{id}`): a string of 1 to 128
/// bytes without control characters. Anything else is 400 `bad_path`.
#[derive(Debug)]
pub struct PathId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_path", message);
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| bad(rejection.body_text()))?;
        text.parse::<Id>().map(PathId).map_err(|e| bad(format!("the id in the path: {e}")))
    }
}

/// Query parameters; a bad one is 400 `bad_query`.
#[derive(Debug)]
pub struct QueryOf<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryOf(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))
    }
}

// ----- The application ------------------------------------------------------------

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

// ----- Shared shapes ----------------------------------------------------------------

fn round(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

/// A skill by name with a proficiency.
#[derive(Debug, Serialize)]
pub struct SkillJson {
    /// The skill's name.
    pub skill: String,
    /// Proficiency (an agent's) or minimum (a requirement), 1..=10.
    pub level: u8,
}

fn name_skills(router: &loket_router::Router, skills: &[SkillLevel]) -> Vec<SkillJson> {
    skills
        .iter()
        .map(|level| SkillJson {
            skill: router.skill_name(level.skill).unwrap_or_default(),
            level: level.level,
        })
        .collect()
}

/// Skills as a body gives them (name to proficiency), checked: names of 1
/// to 64 bytes, proficiency 1..=10. `field` prefixes the error's field.
fn skill_records(
    skills: &BTreeMap<String, i64>,
    field: &str,
) -> Result<Vec<SkillRecord>, ApiError> {
    skills
        .iter()
        .map(|(name, &level)| {
            let record =
                SkillRecord { name: name.clone(), level: u8::try_from(level).unwrap_or(0) };
            crate::state::check_skill(&record).map_err(|_| {
                ApiError::invalid(if record.level == 0 || record.level > 10 {
                    format!("{field}skills.{name}: proficiency {level} is outside 1..=10")
                } else {
                    format!(
                        "{field}skills: skill names are 1 to {} bytes",
                        loket_wire::MAX_SKILL_NAME
                    )
                })
            })?;
            Ok(record)
        })
        .collect()
}

/// Refuses a message that asks for a skill the tenant has never seen,
/// unless it allows new ones (422 `unknown_skill`).
fn admit_skills(tenant: &Tenant, skills: &[SkillRecord], field: &str) -> Result<(), ApiError> {
    match skills.iter().find(|skill| !tenant.admits_skill(&skill.name)) {
        None => Ok(()),
        Some(skill) => Err(TenantError::Apply(ApplyError::UnknownSkill {
            field: format!("{field}skills.{}", skill.name),
            skill: skill.name.clone(),
        })
        .into()),
    }
}

/// Intent, buying intent, language and signals of one text.
#[derive(Debug, Serialize)]
pub struct ScoreJson {
    /// Intent label (`oos` when none fits).
    pub intent: String,
    /// Confidence in the intent, 0..=1.
    pub confidence: f64,
    /// The message's buying intent, 0..=1.
    pub buying_intent: f64,
    /// `nl`, `en` or `und` (undetermined).
    pub language: &'static str,
    /// Hand-off and topic signals.
    pub signals: Vec<&'static str>,
}

fn score_json(tenant: &Tenant, score: &Score) -> ScoreJson {
    let model = tenant.pipeline().model();
    ScoreJson {
        intent: model.label(score.intent).to_owned(),
        confidence: round(score.confidence),
        buying_intent: round(score.buying_intent),
        language: score.language.code(),
        signals: score.signals.names().collect(),
    }
}

/// A routing decision: the event, plus what this message did to the
/// conversation.
#[derive(Debug, Serialize)]
pub struct DecisionJson<'a> {
    /// The decision event.
    #[serde(flatten)]
    pub event: EventJson<'a>,
    /// The message escalated the conversation to a person: what triggered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<EscalationTrigger>,
    /// The conversation's buying intent after the message.
    pub conversation_score: f64,
}

fn decision_json<'a>(
    decision: &'a Decision,
    router: &loket_router::Router,
    ids: &'a loket_ids::TenantIds,
    holder: &'a mut Option<SeqEvent>,
) -> DecisionJson<'a> {
    let event = holder.insert(SeqEvent { seq: decision.seq, event: decision.event });
    DecisionJson {
        event: EventJson::new(event, router, ids),
        trigger: decision.escalation,
        conversation_score: round(decision.conversation_score),
    }
}

// ----- Messages ---------------------------------------------------------------

/// A customer message as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// Conversation id; a new one opens a conversation.
    pub conversation_id: Id,
    /// Customer id.
    pub customer_id: Id,
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
    /// Skills the conversation needs (name to minimum proficiency), on top
    /// of those its intent maps to.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
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

/// Scores the messages of one request. Errors name the field; in a batch,
/// prefixed with `messages[i].`.
fn score_messages(
    tenant: &Tenant,
    limits: &LimitsConfig,
    messages: Vec<MessageBody>,
    batch: bool,
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
    with_scratch(|scratch| {
        let mut scored_messages = Vec::with_capacity(messages.len());
        for (index, message) in messages.into_iter().enumerate() {
            let field = if batch { format!("messages[{index}].") } else { String::new() };
            if message.text.len() > limits.max_text_bytes {
                return Err(ApiError::invalid(format!(
                    "{field}text: {} bytes; at most {}",
                    message.text.len(),
                    limits.max_text_bytes
                )));
            }
            let language = language_code(message.language.as_deref())
                .map_err(|e| ApiError::invalid(format!("{field}language: {e}")))?;
            let skills = skill_records(&message.skills, &field)?;
            admit_skills(tenant, &skills, &field)?;
            let incoming = Incoming {
                conversation: message.conversation_id,
                customer: message.customer_id,
                channel: message.channel.index() as u8,
                language,
                tier: message.tier,
                text: &message.text,
                skills,
            };
            scored_messages.push(scored(pipeline, scratch, incoming));
        }
        Ok(scored_messages)
    })
}

/// The answer to `POST /v1/messages`.
#[derive(Debug, Serialize)]
struct MessageAnswer<'a> {
    #[serde(flatten)]
    score: ScoreJson,
    decision: DecisionJson<'a>,
    conversation_score: f64,
    products: &'a [Hit],
    last_seq: u64,
}

async fn post_message(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    Body(message): Body<MessageBody>,
) -> Result<Response, ApiError> {
    let ingest = Instant::now();
    tenant.check_rate(1)?;
    let text = message.text.clone();
    let scored_messages = score_messages(&tenant, &state.limits, vec![message], false)?;
    let score = crate::state::score(&scored_messages[0]);
    let ack = tenant
        .submit(Command::Messages(scored_messages), ingest)
        .await
        .unwrap_or(Err(TenantError::ShuttingDown))?;
    let decision = ack.applied.decisions.first().ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no decision")
    })?;
    let router = tenant.pipeline().router();
    let products = tenant.pipeline().products(&text, &score);
    let mut holder = None;
    let ids = tenant.ids().read();
    let answer = MessageAnswer {
        score: score_json(&tenant, &score),
        conversation_score: round(decision.conversation_score),
        decision: decision_json(decision, router, &ids, &mut holder),
        products: &products,
        last_seq: ack.last_seq,
    };
    let response = Json(answer).into_response();
    drop(ids);
    Ok(response)
}

/// The answer to `POST /v1/messages/batch`.
#[derive(Debug, Serialize)]
struct BatchAnswer<'a> {
    accepted: usize,
    last_seq: u64,
    decisions: Vec<DecisionJson<'a>>,
}

async fn post_batch(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    Body(batch): Body<BatchBody>,
) -> Result<Response, ApiError> {
    let ingest = Instant::now();
    tenant.check_rate(batch.messages.len())?;
    let scored_messages = score_messages(&tenant, &state.limits, batch.messages, true)?;
    let ack = tenant
        .submit(Command::Messages(scored_messages), ingest)
        .await
        .unwrap_or(Err(TenantError::ShuttingDown))?;
    let router = tenant.pipeline().router();
    let mut holders: Vec<Option<SeqEvent>> = vec![None; ack.applied.decisions.len()];
    let ids = tenant.ids().read();
    let decisions = ack
        .applied
        .decisions
        .iter()
        .zip(holders.iter_mut())
        .map(|(decision, holder)| decision_json(decision, router, &ids, holder))
        .collect();
    let answer =
        BatchAnswer { accepted: ack.applied.decisions.len(), last_seq: ack.last_seq, decisions };
    let response = Json(answer).into_response();
    drop(ids);
    Ok(response)
}

// ----- Agents -----------------------------------------------------------------

/// An agent as the API shows it.
#[derive(Debug, Serialize)]
pub struct AgentJson {
    /// The agent's id (always there; an agent's id is never released).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Name>,
    /// `human` or `bot`.
    pub kind: AgentKind,
    /// Skills by name.
    pub skills: Vec<SkillJson>,
    /// Languages spoken.
    pub languages: Vec<Language>,
    /// Capacity per channel and overall.
    pub capacity: Capacity,
    /// Presence.
    pub presence: Presence,
    /// Team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Conversations held per channel.
    pub load: BTreeMap<&'static str, u32>,
    /// Conversations held in all.
    pub total_load: u32,
    /// The conversations holding this agent's capacity.
    pub holding: Vec<Name>,
    /// Offers missed in a row.
    pub missed_offers: u32,
}

fn agent_json(tenant: &Tenant, view: AgentView) -> AgentJson {
    let router = tenant.pipeline().router();
    let ids = tenant.ids().read();
    AgentJson {
        id: ids.agents.name(view.spec.id.0),
        kind: view.spec.kind,
        skills: name_skills(router, &view.spec.skills),
        languages: view.spec.languages,
        capacity: view.spec.capacity,
        presence: view.spec.presence,
        team: view.spec.team,
        load: Channel::ALL.iter().map(|c| (c.as_str(), view.load[c.index()])).collect(),
        total_load: view.total_load,
        holding: view.holding.iter().filter_map(|c| ids.conversations.name(c.0)).collect(),
        missed_offers: view.missed_offers,
    }
}

fn find_agent(tenant: &Tenant, id: &Id) -> Result<AgentView, ApiError> {
    let key = tenant.ids().read().agents.find(id);
    key.and_then(|key| tenant.pipeline().router().agent(loket_router::AgentId(key)))
        .ok_or_else(|| ApiError::not_found(format!("no agent {:?}", id.to_string())))
}

async fn upsert_agent(
    Authed(tenant): Authed,
    Body(line): Body<AgentLine>,
) -> Result<Json<AgentJson>, ApiError> {
    let record = agent_record(&line).map_err(ApiError::invalid)?;
    let id = record.id.clone();
    tenant.apply(Command::UpsertAgent(record)).await?;
    Ok(Json(agent_json(&tenant, find_agent(&tenant, &id)?)))
}

async fn get_agent(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<AgentJson>, ApiError> {
    Ok(Json(agent_json(&tenant, find_agent(&tenant, &id)?)))
}

/// Paging of a listing: `limit` (1 to 1,000, default 100) items from
/// `offset` (default 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    #[serde(default = "default_page_limit")]
    limit: usize,
    #[serde(default)]
    offset: usize,
}

fn default_page_limit() -> usize {
    100
}

impl Page {
    fn check(&self) -> Result<(), ApiError> {
        if (1..=1_000).contains(&self.limit) {
            Ok(())
        } else {
            Err(ApiError::invalid(format!("limit: must be 1 to 1000, not {}", self.limit)))
        }
    }

    /// The page's items and the offset of the next page, if any.
    fn cut<T>(&self, items: Vec<T>) -> (Vec<T>, Option<usize>) {
        let total = items.len();
        let end = self.offset.saturating_add(self.limit).min(total);
        let next = (end < total).then_some(end);
        (items.into_iter().skip(self.offset).take(self.limit).collect(), next)
    }
}

/// A page of a listing.
#[derive(Debug, Serialize)]
struct Listing<T> {
    /// Items in all.
    total: usize,
    /// Pass as `offset` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_offset: Option<usize>,
    #[serde(flatten)]
    items: T,
}

#[derive(Debug, Serialize)]
struct Agents {
    agents: Vec<AgentJson>,
}

async fn list_agents(
    Authed(tenant): Authed,
    QueryOf(page): QueryOf<Page>,
) -> Result<Json<Listing<Agents>>, ApiError> {
    page.check()?;
    let router = tenant.pipeline().router();
    let ids = router.agent_ids();
    let total = ids.len();
    let (ids, next_offset) = page.cut(ids);
    let agents = ids.into_iter().filter_map(|id| router.agent(id)).map(|v| agent_json(&tenant, v));
    Ok(Json(Listing { total, next_offset, items: Agents { agents: agents.collect() } }))
}

/// Changes to an agent; fields left out stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentUpdate {
    #[serde(default)]
    skills: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    capacity: Option<CapacityLine>,
    #[serde(default)]
    presence: Option<Presence>,
}

async fn update_agent(
    Authed(tenant): Authed,
    PathId(id): PathId,
    Body(update): Body<AgentUpdate>,
) -> Result<Json<AgentJson>, ApiError> {
    find_agent(&tenant, &id)?;
    // Every value is checked before any change is applied.
    let skills = update.skills.as_ref().map(|skills| skill_records(skills, "")).transpose()?;
    let capacity = match &update.capacity {
        Some(capacity) => Some(crate::state::capacity_values(
            &capacity
                .to_capacity()
                .map_err(|e| ApiError::invalid(format!("capacity.{}: {e}", e.field)))?,
        )),
        None => None,
    };
    let presence = update.presence.map(presence_code);
    tenant.apply(Command::UpdateAgent { agent: id.clone(), skills, capacity, presence }).await?;
    Ok(Json(agent_json(&tenant, find_agent(&tenant, &id)?)))
}

#[derive(Debug, Serialize)]
struct Removed {
    removed: Id,
    last_seq: u64,
}

async fn remove_agent(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Removed>, ApiError> {
    let ack = tenant.apply(Command::RemoveAgent { agent: id.clone() }).await?;
    Ok(Json(Removed { removed: id, last_seq: ack.last_seq }))
}

// ----- Conversations ------------------------------------------------------------

/// A conversation as the API shows it.
#[derive(Debug, Serialize)]
pub struct ConversationJson {
    /// Its id.
    pub id: Option<Name>,
    /// The customer's id.
    pub customer: Option<Name>,
    /// Channel.
    pub channel: Channel,
    /// Language.
    pub language: Language,
    /// `bot`, `queued`, `offered`, `assigned`, `wrap_up` or `closed`.
    pub state: ConversationState,
    /// The agent holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Name>,
    /// Skills required now (after overflow steps).
    pub required: Vec<SkillJson>,
    /// Overflow steps applied.
    pub overflow_step: u8,
    /// Escalated from a bot to a person.
    pub escalated: bool,
    /// The latest message's buying intent as routed.
    pub buying_intent: f64,
    /// The conversation's buying intent (recency-weighted).
    pub conversation_score: Option<f64>,
    /// Opened, ms since the Unix epoch.
    pub created_at: u64,
    /// Last message, ms since the Unix epoch.
    pub last_message_at: u64,
    /// Messages seen.
    pub messages: u32,
}

fn conversation_json(tenant: &Tenant, view: ConversationView) -> ConversationJson {
    let pipeline = tenant.pipeline();
    let ids = tenant.ids().read();
    ConversationJson {
        id: ids.conversations.name(view.id.0),
        customer: ids.customers.name(view.customer.0),
        channel: view.channel,
        language: view.language,
        state: view.state,
        agent: view.agent.and_then(|a| ids.agents.name(a.0)),
        required: name_skills(pipeline.router(), &view.required),
        overflow_step: view.overflow_step,
        escalated: view.escalated,
        buying_intent: round(view.buying_intent),
        conversation_score: pipeline.conversation_score(view.id).map(round),
        created_at: view.created_at.0,
        last_message_at: view.last_message_at.0,
        messages: view.messages,
    }
}

async fn get_conversation(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<ConversationJson>, ApiError> {
    let key = tenant.ids().read().conversations.find(&id);
    let view = key
        .and_then(|key| tenant.pipeline().router().conversation(ConversationId(key)))
        .ok_or_else(|| ApiError::not_found(format!("no conversation {:?}", id.to_string())))?;
    Ok(Json(conversation_json(&tenant, view)))
}

/// `state` and the [`Page`] fields (not flattened: query strings carry
/// no types, and serde's flatten loses the numbers' parsing).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationFilter {
    #[serde(default)]
    state: Option<ConversationState>,
    #[serde(default = "default_page_limit")]
    limit: usize,
    #[serde(default)]
    offset: usize,
}

#[derive(Debug, Serialize)]
struct Conversations {
    conversations: Vec<ConversationJson>,
}

/// `GET /v1/conversations?state=queued|assigned|bot|offered|wrap_up`: the
/// open conversations, oldest first, paged. Walks every conversation: for
/// supervisors and debugging, not for every message.
async fn list_conversations(
    Authed(tenant): Authed,
    QueryOf(filter): QueryOf<ConversationFilter>,
) -> Result<Json<Listing<Conversations>>, ApiError> {
    let page = Page { limit: filter.limit, offset: filter.offset };
    page.check()?;
    let mut views = tenant.pipeline().router().conversations();
    if let Some(state) = filter.state {
        views.retain(|view| view.state == state);
    }
    let total = views.len();
    let (views, next_offset) = page.cut(views);
    let conversations = views.into_iter().map(|v| conversation_json(&tenant, v)).collect();
    Ok(Json(Listing { total, next_offset, items: Conversations { conversations } }))
}

#[derive(Debug, Serialize)]
struct Closed {
    closed: Id,
    last_seq: u64,
}

async fn close_conversation(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Closed>, ApiError> {
    let ack = tenant.apply(Command::Close { conversation: id.clone() }).await?;
    Ok(Json(Closed { closed: id, last_seq: ack.last_seq }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    agent: Id,
}

#[derive(Debug, Serialize)]
struct Transferred {
    transferred: Id,
    agent: Id,
    last_seq: u64,
}

async fn transfer_conversation(
    Authed(tenant): Authed,
    PathId(id): PathId,
    Body(body): Body<TransferBody>,
) -> Result<Json<Transferred>, ApiError> {
    let command = Command::Transfer { conversation: id.clone(), agent: body.agent.clone() };
    let ack = tenant.apply(command).await?;
    Ok(Json(Transferred { transferred: id, agent: body.agent, last_seq: ack.last_seq }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferBody {
    agent: Id,
    accept: bool,
}

#[derive(Debug, Serialize)]
struct OfferAnswered {
    conversation: Id,
    accepted: bool,
    last_seq: u64,
}

async fn answer_offer(
    Authed(tenant): Authed,
    PathId(id): PathId,
    Body(body): Body<OfferBody>,
) -> Result<Json<OfferAnswered>, ApiError> {
    let command =
        Command::AnswerOffer { conversation: id.clone(), agent: body.agent, accept: body.accept };
    let ack = tenant.apply(command).await?;
    Ok(Json(OfferAnswered { conversation: id, accepted: body.accept, last_seq: ack.last_seq }))
}

/// One lane of the backlog.
#[derive(Debug, Serialize)]
struct LaneJson {
    channel: Channel,
    language: Language,
    /// Conversations waiting.
    depth: usize,
    /// How long the longest-waiting one has waited, ms (tenant clock).
    oldest_wait_ms: u64,
}

#[derive(Debug, Serialize)]
struct Queues {
    queues: Vec<LaneJson>,
}

/// `GET /v1/queues`: per (channel, language) lane, how many wait and the
/// longest wait.
async fn queues(Authed(tenant): Authed) -> Json<Queues> {
    let router = tenant.pipeline().router();
    let now = router.now();
    let queues = router
        .queues()
        .into_iter()
        .map(|lane| LaneJson {
            channel: lane.channel,
            language: lane.language,
            depth: lane.depth,
            oldest_wait_ms: now.since(lane.oldest_since),
        })
        .collect();
    Json(Queues { queues })
}

#[derive(Debug, Serialize)]
struct Erased {
    erased: ErasureReport,
}

async fn erase_customer(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Erased>, ApiError> {
    let report = tenant.erase(id).await?;
    Ok(Json(Erased { erased: report }))
}

// ----- Catalog and scoring ---------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    5
}

/// The most hits one search returns.
const MAX_HITS: usize = 100;

/// One query's hits: the shape `loket catalog search` prints too.
#[derive(Debug, Serialize)]
struct SearchAnswer {
    query: String,
    hits: Vec<Hit>,
}

async fn search_catalog(
    Authed(tenant): Authed,
    QueryOf(query): QueryOf<SearchQuery>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let catalog = tenant.pipeline().catalog().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_catalog", "this tenant has no catalog")
    })?;
    if !(1..=MAX_HITS).contains(&query.limit) {
        return Err(ApiError::invalid(format!(
            "limit: must be 1 to {MAX_HITS}, not {}",
            query.limit
        )));
    }
    let hits =
        catalog.search(&query.q, query.limit).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Json(SearchAnswer { query: query.q, hits }))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StockBody {
    sku: String,
    stock: i64,
}

async fn set_stock(
    Authed(tenant): Authed,
    Body(body): Body<StockBody>,
) -> Result<Json<StockBody>, ApiError> {
    tenant.apply(Command::SetStock { sku: body.sku.clone(), stock: body.stock }).await?;
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreBody {
    text: String,
    #[serde(default)]
    conversation_id: Option<Id>,
}

#[derive(Debug, Serialize)]
struct ScoreAnswer {
    #[serde(flatten)]
    score: ScoreJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_score: Option<Option<f64>>,
}

async fn score(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    Body(body): Body<ScoreBody>,
) -> Result<Json<ScoreAnswer>, ApiError> {
    if body.text.len() > state.limits.max_text_bytes {
        return Err(ApiError::invalid(format!(
            "text: {} bytes; at most {}",
            body.text.len(),
            state.limits.max_text_bytes
        )));
    }
    let pipeline = tenant.pipeline();
    let score = with_scratch(|scratch| pipeline.score(&body.text, scratch));
    let conversation_score = body.conversation_id.as_ref().map(|id| {
        let key = tenant.ids().read().conversations.find(id);
        key.and_then(|key| pipeline.conversation_score(ConversationId(key))).map(round)
    });
    Ok(Json(ScoreAnswer {
        score: score_json(&tenant, &score),
        conversation_id: body.conversation_id,
        conversation_score,
    }))
}

#[derive(Debug, Serialize)]
struct StatsAnswer {
    tenant: String,
    router: RouterStats,
    last_seq: u64,
}

async fn stats(Authed(tenant): Authed) -> Json<StatsAnswer> {
    let router = tenant.pipeline().router().stats();
    let last_seq = tenant.events().latest();
    Json(StatsAnswer { tenant: tenant.name().to_owned(), router, last_seq })
}

// ----- Events ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    from: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Gap {
    from: u64,
    oldest: u64,
}

/// `GET /v1/events?from=SEQ`: Server-Sent Events, each with `id:` = its
/// sequence number and JSON data. Without `from`, the stream resumes after
/// `Last-Event-ID` if sent, else starts with the next event. A `from` older
/// than what is kept gives one `gap` event (`{"from":..,"oldest":..}`) first.
async fn events(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryOf(query): QueryOf<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let from = match (query.from, last_event_id) {
        (Some(from), _) => from,
        (None, Some(last)) => last.saturating_add(1),
        (None, None) => tenant.events().latest() + 1,
    };
    let log = tenant.events().clone();
    let updates = log.subscribe();
    let shutdown = state.shutdown.clone();
    struct Cursor {
        tenant: Arc<Tenant>,
        log: Arc<crate::events::EventLog>,
        updates: watch::Receiver<u64>,
        shutdown: watch::Receiver<bool>,
        next: u64,
        buffer: std::collections::VecDeque<SseEvent>,
        scratch: Vec<SeqEvent>,
    }
    let cursor = Cursor {
        tenant,
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
                let gap = Gap { from: cursor.next, oldest: read.oldest };
                let data = serde_json::to_string(&gap).unwrap_or_default();
                cursor.buffer.push_back(SseEvent::default().event("gap").data(data));
            }
            {
                let router = cursor.tenant.pipeline().router();
                let ids = cursor.tenant.ids().read();
                for event in &cursor.scratch {
                    let json = EventJson::new(event, router, &ids);
                    let data = serde_json::to_string(&json).unwrap_or_default();
                    cursor
                        .buffer
                        .push_back(SseEvent::default().id(event.seq.to_string()).data(data));
                }
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

#[derive(Debug, Serialize)]
struct Health<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unhealthy_tenants: Vec<&'a str>,
}

async fn healthz() -> Json<Health<'static>> {
    Json(Health { status: "ok", unhealthy_tenants: Vec::new() })
}

async fn readyz(State(state): State<AppState>) -> Response {
    let unhealthy: Vec<&str> =
        state.tenants.iter().filter(|t| !t.is_healthy()).map(|t| t.name()).collect();
    if state.ready.load(Ordering::Relaxed) && unhealthy.is_empty() {
        Json(Health { status: "ready", unhealthy_tenants: unhealthy }).into_response()
    } else {
        let body = Health { status: "not_ready", unhealthy_tenants: unhealthy };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn metrics() -> Response {
    let body = crate::metrics::prometheus().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
