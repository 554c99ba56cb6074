//! `POST /v1/messages` and `POST /v1/messages/batch`: score, admit, route.

use super::*;

/// A customer message as JSON.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Message, example = json!({"conversation_id": "c-1", "customer_id": "+31612345678",
    "channel": "chat", "text": "hebben jullie nog bananenbomen?"}))]
pub struct MessageBody {
    /// Conversation id; a new one opens a conversation.
    #[schema(value_type = schema::Id)]
    pub conversation_id: Id,
    /// Customer id.
    #[schema(value_type = schema::Id)]
    pub customer_id: Id,
    /// `chat`, `whatsapp`, `messenger`, `sms`, `email` or `voice`.
    #[schema(value_type = schema::Channel)]
    pub channel: Channel,
    /// What the customer wrote, at most `max_text_bytes` bytes.
    pub text: String,
    /// `nl` or `en`; detected when left out.
    #[serde(default)]
    #[schema(value_type = Option<schema::MessageLanguage>)]
    pub language: Option<String>,
    /// Customer tier (0 = default); a higher tier waits less.
    #[serde(default)]
    pub tier: u8,
    /// Skills the conversation needs (name to minimum proficiency, 1 to
    /// 10), on top of those its intent maps to.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
}

/// Messages routed all or none, at most `max_batch_messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Batch)]
pub(super) struct BatchBody {
    /// The messages, routed in order.
    pub(super) messages: Vec<MessageBody>,
}

thread_local! {
    /// This worker thread's scoring memory, kept across requests so that
    /// buffers are not regrown and the model's token cache stays warm (see
    /// `loket_intent::Scratch`).
    static SCRATCH: RefCell<loket_pipeline::Scratch> = RefCell::default();
}

/// Runs `f` with this thread's scoring memory (a fresh one should it be
/// in use already, which synchronous scoring never causes).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut loket_pipeline::Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut loket_pipeline::Scratch::default()),
    })
}

pub(super) fn language_code(language: Option<&str>) -> Result<u8, String> {
    match language {
        None => Ok(loket_wire::language::DETECT),
        Some("nl") => Ok(loket_wire::language::NL),
        Some("en") => Ok(loket_wire::language::EN),
        Some(other) => Err(format!("language {other:?} is not \"nl\" or \"en\"")),
    }
}

/// Scores the messages of one request. Errors name the field; in a batch,
/// prefixed with `messages[i].`.
pub(super) fn score_messages(
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
            scored_messages.push(scored(pipeline, scratch, incoming, tenant.stores_text()));
        }
        Ok(scored_messages)
    })
}

/// The answer to `POST /v1/messages`: the text's score, the decision,
/// and catalog matches for a product question.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MessageAnswer<'a> {
    #[serde(flatten)]
    pub(super) score: ScoreJson,
    /// The routing decision.
    pub(super) decision: DecisionJson<'a>,
    /// The conversation's buying intent after the message.
    pub(super) conversation_score: f64,
    /// Catalog matches with stock, for a product or stock question.
    #[schema(value_type = Vec<schema::Hit>)]
    pub(super) products: &'a [Hit],
    /// The tenant's event sequence number after the message.
    pub(super) last_seq: u64,
}

/// Routes one customer message.
///
/// Scores the text (intent, buying intent, language, signals), routes the
/// message (a new conversation id opens a conversation) and, for a
/// product or stock question, looks the products up in the catalog. The
/// message is journaled and synced before the answer.
#[utoipa::path(post, path = "/v1/messages", tag = "messages",
    security(("bearer" = [])),
    request_body(content = MessageBody, example = json!({
        "conversation_id": "c-1", "customer_id": "+31612345678", "channel": "chat",
        "text": "hebben jullie nog bananenbomen?", "language": "nl", "tier": 1,
        "skills": {"sales": 3}
    })),
    responses(
        (status = 200, description = "Scored and routed.", body = MessageAnswer, example = json!({
            "intent": "buy.stock", "confidence": 0.9565, "buying_intent": 0.9887, "language": "nl",
            "signals": ["question"],
            "decision": {"seq": 1, "at": 1796610747521_u64, "conversation": "c-1", "agent": "dirk",
                "type": "assigned", "reason": "skill_match", "strategy": "least_loaded",
                "waited_ms": 0, "conversation_score": 0.6921},
            "conversation_score": 0.6921,
            "products": [{"sku": "GC001", "name": "Musa basjoo", "score": 13.7973, "stock": 3,
                "in_stock": true, "price_cents": 2495, "matched": "synonym"}],
            "last_seq": 1
        })),
        BadRequest, Unauthorized, TooLarge, UnsupportedMediaType, Unprocessable, RateLimited,
        Unavailable,
    ))]
pub(super) async fn post_message(
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
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BatchAnswer<'a> {
    /// Messages routed.
    pub(super) accepted: usize,
    /// The tenant's event sequence number after the batch.
    pub(super) last_seq: u64,
    /// One decision per message, in order.
    pub(super) decisions: Vec<DecisionJson<'a>>,
}

/// Routes a batch of messages, all or none.
///
/// Every message is checked before any is routed; an error names
/// `messages[i].field`. The answer has one decision per message, without
/// the scores and products.
#[utoipa::path(post, path = "/v1/messages/batch", tag = "messages",
    security(("bearer" = [])),
    request_body(content = BatchBody, example = json!({"messages": [
        {"conversation_id": "c-2", "customer_id": 42, "channel": "chat", "text": "hallo"},
        {"conversation_id": "c-3", "customer_id": "k-7", "channel": "email",
            "text": "where is my order?", "language": "en"}
    ]})),
    responses(
        (status = 200, description = "Routed.", body = BatchAnswer),
        BadRequest, Unauthorized, TooLarge, UnsupportedMediaType, Unprocessable, RateLimited,
        Unavailable,
    ))]
pub(super) async fn post_batch(
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
