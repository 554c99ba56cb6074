//! `/v1/conversations`, `/v1/queues` and `/v1/customers`: read, list,
//! close, transfer, answer offers, see the backlog, erase a customer.

use super::*;

/// A conversation as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Conversation, example = json!({"id": "c-1", "customer": "+31612345678",
    "channel": "chat", "language": "nl", "state": "assigned", "agent": "dirk",
    "required": [{"skill": "sales", "level": 3}], "overflow_step": 0, "escalated": false,
    "buying_intent": 0.9887, "conversation_score": 0.6921, "created_at": 1796610747521_u64,
    "last_message_at": 1796610747521_u64, "messages": 1}))]
pub struct ConversationJson {
    /// Its id.
    #[schema(value_type = Option<String>)]
    pub id: Option<Name>,
    /// The customer's id.
    #[schema(value_type = Option<String>)]
    pub customer: Option<Name>,
    /// Channel.
    #[schema(value_type = schema::Channel)]
    pub channel: Channel,
    /// Language (`nl`, `en`).
    #[schema(value_type = String)]
    pub language: Language,
    /// `bot`, `queued`, `offered`, `assigned`, `wrap_up` or `closed`.
    #[schema(value_type = schema::ConversationState)]
    pub state: ConversationState,
    /// The agent holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
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

pub(super) fn conversation_json(tenant: &Tenant, view: ConversationView) -> ConversationJson {
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

/// A conversation the router holds.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation's id.", example = "c-1")),
    responses(
        (status = 200, description = "The conversation.", body = ConversationJson),
        BadRequest, Unauthorized, NotFound,
    ))]
pub(super) async fn get_conversation(
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
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ConversationFilter {
    /// Only conversations in this state.
    #[serde(default)]
    #[param(value_type = Option<schema::ConversationState>, example = "assigned")]
    pub(super) state: Option<ConversationState>,
    /// Conversations per page, 1 to 1,000.
    #[serde(default = "default_page_limit")]
    #[param(default = 100, minimum = 1, maximum = 1000, example = 50)]
    pub(super) limit: usize,
    /// Conversations to skip: `next_offset` of the previous page.
    #[serde(default)]
    #[param(default = 0, example = 0)]
    pub(super) offset: usize,
}

/// A page of conversations.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConversationPage {
    /// Conversations in all (in the state asked for).
    pub(super) total: usize,
    /// Pass as `offset` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(super) next_offset: Option<usize>,
    /// This page's conversations, oldest first.
    pub(super) conversations: Vec<ConversationJson>,
}

/// The open conversations, oldest first, optionally in one state, paged.
///
/// Walks every conversation: for supervisors and debugging, not for every
/// message.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations",
    security(("bearer" = [])),
    params(ConversationFilter),
    responses(
        (status = 200, description = "A page of conversations.", body = ConversationPage),
        BadRequest, Unauthorized, Unprocessable,
    ))]
pub(super) async fn list_conversations(
    Authed(tenant): Authed,
    QueryOf(filter): QueryOf<ConversationFilter>,
) -> Result<Json<ConversationPage>, ApiError> {
    let page = Page { limit: filter.limit, offset: filter.offset };
    page.check()?;
    let mut views = tenant.pipeline().router().conversations();
    if let Some(state) = filter.state {
        views.retain(|view| view.state == state);
    }
    let total = views.len();
    let (views, next_offset) = page.cut(views);
    let conversations = views.into_iter().map(|v| conversation_json(&tenant, v)).collect();
    Ok(Json(ConversationPage { total, next_offset, conversations }))
}

/// A conversation closed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Closed {
    /// The conversation's id.
    #[schema(value_type = String)]
    pub(super) closed: Id,
    /// The tenant's event sequence number after the close.
    pub(super) last_seq: u64,
}

/// Closes a conversation; the agent's capacity returns after wrap-up.
#[utoipa::path(post, path = "/v1/conversations/{id}/close", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation's id.", example = "c-1")),
    responses(
        (status = 200, description = "Closed.", body = Closed,
            example = json!({"closed": "c-1", "last_seq": 20})),
        BadRequest, Unauthorized, NotFound, Unavailable,
    ))]
pub(super) async fn close_conversation(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Closed>, ApiError> {
    let ack = tenant.apply(Command::Close { conversation: id.clone() }).await?;
    Ok(Json(Closed { closed: id, last_seq: ack.last_seq }))
}

/// Where to move a conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Transfer)]
pub(super) struct TransferBody {
    /// The agent to take it.
    #[schema(value_type = schema::Id)]
    pub(super) agent: Id,
}

/// A conversation moved.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Transferred {
    /// The conversation's id.
    #[schema(value_type = String)]
    pub(super) transferred: Id,
    /// The agent who holds it now.
    #[schema(value_type = String)]
    pub(super) agent: Id,
    /// The tenant's event sequence number after the transfer.
    pub(super) last_seq: u64,
}

/// Moves a conversation to an agent.
///
/// 409 `conflict` when the agent cannot take it (not available, not
/// speaking its language, or without room on its channel).
#[utoipa::path(post, path = "/v1/conversations/{id}/transfer", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation's id.", example = "c-1")),
    request_body(content = TransferBody, example = json!({"agent": "7"})),
    responses(
        (status = 200, description = "Transferred.", body = Transferred,
            example = json!({"transferred": "c-1", "agent": "7", "last_seq": 22})),
        BadRequest, Unauthorized, NotFound, Conflict, TooLarge, UnsupportedMediaType,
        Unprocessable, Unavailable,
    ))]
pub(super) async fn transfer_conversation(
    Authed(tenant): Authed,
    PathId(id): PathId,
    Body(body): Body<TransferBody>,
) -> Result<Json<Transferred>, ApiError> {
    let command = Command::Transfer { conversation: id.clone(), agent: body.agent.clone() };
    let ack = tenant.apply(command).await?;
    Ok(Json(Transferred { transferred: id, agent: body.agent, last_seq: ack.last_seq }))
}

/// An agent's answer to an offer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OfferAnswer)]
pub(super) struct OfferBody {
    /// The agent the conversation is offered to.
    #[schema(value_type = schema::Id)]
    pub(super) agent: Id,
    /// Accept, or decline (the conversation is re-routed ahead).
    pub(super) accept: bool,
}

/// An offer answered.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OfferAnswered {
    /// The conversation's id.
    #[schema(value_type = String)]
    pub(super) conversation: Id,
    /// Whether the agent accepted.
    pub(super) accepted: bool,
    /// The tenant's event sequence number after the answer.
    pub(super) last_seq: u64,
}

/// Answers an offer (offer mode).
///
/// A decline re-routes the conversation ahead; 409 `conflict` when the
/// agent has no pending offer for it.
#[utoipa::path(post, path = "/v1/conversations/{id}/offer", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation's id.", example = "c-1")),
    request_body(content = OfferBody, example = json!({"agent": "dirk", "accept": true})),
    responses(
        (status = 200, description = "Answered.", body = OfferAnswered,
            example = json!({"conversation": "c-1", "accepted": true, "last_seq": 23})),
        BadRequest, Unauthorized, NotFound, Conflict, TooLarge, UnsupportedMediaType,
        Unprocessable, Unavailable,
    ))]
pub(super) async fn answer_offer(
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Lane)]
pub(super) struct LaneJson {
    /// The lane's channel.
    #[schema(value_type = schema::Channel)]
    pub(super) channel: Channel,
    /// The lane's language.
    #[schema(value_type = String)]
    pub(super) language: Language,
    /// Conversations waiting.
    pub(super) depth: usize,
    /// How long the longest-waiting one has waited, ms (tenant clock).
    pub(super) oldest_wait_ms: u64,
}

/// The backlog.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Queues {
    /// Lanes with anyone waiting, by channel, then language.
    pub(super) queues: Vec<LaneJson>,
}

/// The backlog: per (channel, language) lane, how many wait and the
/// longest wait.
#[utoipa::path(get, path = "/v1/queues", tag = "conversations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The lanes with anyone waiting.", body = Queues,
            example = json!({"queues": [{"channel": "sms", "language": "nl", "depth": 1, "oldest_wait_ms": 23}]})),
        Unauthorized,
    ))]
pub(super) async fn queues(Authed(tenant): Authed) -> Json<Queues> {
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

/// A customer erased.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Erased {
    /// What the erasure removed.
    #[schema(value_type = schema::ErasureReport)]
    pub(super) erased: ErasureReport,
}

/// Erases a customer: their conversations, history, events and the
/// journal segments that held their messages (docs/loketd.md#erasure).
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The customer's id.", example = "+31612345678")),
    responses(
        (status = 200, description = "Erased.", body = Erased, example = json!({"erased": {
            "customer": "+31612345678", "conversations": ["c-1"], "events_removed": 3, "webhook_events_removed": 0,
            "journal_segments_removed": 1, "snapshots_removed": 0, "snapshot_lsn": 22}})),
        BadRequest, Unauthorized, Unavailable,
    ))]
pub(super) async fn erase_customer(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Erased>, ApiError> {
    let report = tenant.erase(id).await?;
    Ok(Json(Erased { erased: report }))
}
