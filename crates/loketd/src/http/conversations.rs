//! `/v1/conversations`, `/v1/queues` and `/v1/customers`: read, list,
//! close, transfer, answer offers, see the backlog, erase a customer.

use super::*;

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConversationFilter {
    #[serde(default)]
    pub(super) state: Option<ConversationState>,
    #[serde(default = "default_page_limit")]
    pub(super) limit: usize,
    #[serde(default)]
    pub(super) offset: usize,
}

#[derive(Debug, Serialize)]
pub(super) struct Conversations {
    pub(super) conversations: Vec<ConversationJson>,
}

/// `GET /v1/conversations?state=queued|assigned|bot|offered|wrap_up`: the
/// open conversations, oldest first, paged. Walks every conversation: for
/// supervisors and debugging, not for every message.
pub(super) async fn list_conversations(
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
pub(super) struct Closed {
    pub(super) closed: Id,
    pub(super) last_seq: u64,
}

pub(super) async fn close_conversation(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Closed>, ApiError> {
    let ack = tenant.apply(Command::Close { conversation: id.clone() }).await?;
    Ok(Json(Closed { closed: id, last_seq: ack.last_seq }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    pub(super) agent: Id,
}

#[derive(Debug, Serialize)]
pub(super) struct Transferred {
    pub(super) transferred: Id,
    pub(super) agent: Id,
    pub(super) last_seq: u64,
}

pub(super) async fn transfer_conversation(
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
pub(super) struct OfferBody {
    pub(super) agent: Id,
    pub(super) accept: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct OfferAnswered {
    pub(super) conversation: Id,
    pub(super) accepted: bool,
    pub(super) last_seq: u64,
}

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
#[derive(Debug, Serialize)]
pub(super) struct LaneJson {
    pub(super) channel: Channel,
    pub(super) language: Language,
    /// Conversations waiting.
    pub(super) depth: usize,
    /// How long the longest-waiting one has waited, ms (tenant clock).
    pub(super) oldest_wait_ms: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct Queues {
    pub(super) queues: Vec<LaneJson>,
}

/// `GET /v1/queues`: per (channel, language) lane, how many wait and the
/// longest wait.
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

#[derive(Debug, Serialize)]
pub(super) struct Erased {
    pub(super) erased: ErasureReport,
}

pub(super) async fn erase_customer(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Erased>, ApiError> {
    let report = tenant.erase(id).await?;
    Ok(Json(Erased { erased: report }))
}
