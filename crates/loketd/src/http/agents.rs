//! `/v1/agents`: register, list, read, change and remove agents.

use super::*;

/// An agent as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Agent, example = json!({"id": "dirk", "kind": "human",
    "skills": [{"skill": "sales", "level": 6}, {"skill": "service", "level": 4}],
    "languages": ["nl", "en"],
    "capacity": {"chat": 2, "whatsapp": 3, "messenger": 0, "sms": 0, "email": 0, "voice": 0, "total": 4},
    "presence": "available", "team": "sales",
    "load": {"chat": 0, "email": 0, "messenger": 0, "sms": 0, "voice": 0, "whatsapp": 0},
    "total_load": 0, "holding": [], "missed_offers": 0}))]
pub struct AgentJson {
    /// The agent's id (always there; an agent's id is never released).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub id: Option<Name>,
    /// `human` or `bot`.
    #[schema(value_type = schema::AgentKind)]
    pub kind: AgentKind,
    /// Skills by name.
    pub skills: Vec<SkillJson>,
    /// Languages spoken (`nl`, `en`).
    #[schema(value_type = Vec<String>)]
    pub languages: Vec<Language>,
    /// Capacity per channel and overall.
    #[schema(value_type = schema::Capacity)]
    pub capacity: Capacity,
    /// Presence.
    #[schema(value_type = schema::Presence)]
    pub presence: Presence,
    /// Team.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub team: Option<String>,
    /// Conversations held per channel.
    #[schema(value_type = schema::ChannelLoad)]
    pub load: BTreeMap<&'static str, u32>,
    /// Conversations held in all.
    pub total_load: u32,
    /// The conversations holding this agent's capacity.
    #[schema(value_type = Vec<String>)]
    pub holding: Vec<Name>,
    /// Offers missed in a row.
    pub missed_offers: u32,
}

pub(super) fn agent_json(tenant: &Tenant, view: AgentView) -> AgentJson {
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

pub(super) fn find_agent(tenant: &Tenant, id: &Id) -> Result<AgentView, ApiError> {
    let key = tenant.ids().read().agents.find(id);
    key.and_then(|key| tenant.pipeline().router().agent(loket_router::AgentId(key)))
        .ok_or_else(|| ApiError::not_found(format!("no agent {:?}", id.to_string())))
}

/// Registers an agent, or replaces one with the same id.
///
/// The body is an agents.jsonl line (docs/formats.md). Queued
/// conversations the agent can take are assigned at once.
#[utoipa::path(post, path = "/v1/agents", tag = "agents",
    security(("bearer" = [])),
    request_body(content = schema::AgentLine, example = json!({
        "id": "dirk", "kind": "human", "skills": {"sales": 6, "service": 4},
        "languages": ["nl", "en"], "capacity": {"chat": 2, "whatsapp": 3, "total": 4},
        "presence": "available", "team": "sales"
    })),
    responses(
        (status = 200, description = "The agent as registered.", body = AgentJson),
        BadRequest, Unauthorized, TooLarge, UnsupportedMediaType, Unprocessable, Unavailable,
    ))]
pub(super) async fn upsert_agent(
    Authed(tenant): Authed,
    Body(line): Body<AgentLine>,
) -> Result<Json<AgentJson>, ApiError> {
    let record = agent_record(&line).map_err(ApiError::invalid)?;
    let id = record.id.clone();
    tenant.apply(Command::UpsertAgent(record)).await?;
    Ok(Json(agent_json(&tenant, find_agent(&tenant, &id)?)))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The agent's id.", example = "dirk")),
    responses(
        (status = 200, description = "The agent.", body = AgentJson),
        BadRequest, Unauthorized, NotFound,
    ))]
pub(super) async fn get_agent(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<AgentJson>, ApiError> {
    Ok(Json(agent_json(&tenant, find_agent(&tenant, &id)?)))
}

/// Paging of a listing: `limit` (1 to 1,000, default 100) items from
/// `offset` (default 0).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// Items per page, 1 to 1,000.
    #[serde(default = "default_page_limit")]
    #[param(default = 100, minimum = 1, maximum = 1000, example = 2)]
    pub(super) limit: usize,
    /// Items to skip: `next_offset` of the previous page.
    #[serde(default)]
    #[param(default = 0, example = 0)]
    pub(super) offset: usize,
}

pub(super) fn default_page_limit() -> usize {
    100
}

impl Page {
    pub(super) fn check(&self) -> Result<(), ApiError> {
        if (1..=1_000).contains(&self.limit) {
            Ok(())
        } else {
            Err(ApiError::invalid(format!("limit: must be 1 to 1000, not {}", self.limit)))
        }
    }

    /// The page's items and the offset of the next page, if any.
    pub(super) fn cut<T>(&self, items: Vec<T>) -> (Vec<T>, Option<usize>) {
        let total = items.len();
        let end = self.offset.saturating_add(self.limit).min(total);
        let next = (end < total).then_some(end);
        (items.into_iter().skip(self.offset).take(self.limit).collect(), next)
    }
}

/// A page of agents.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AgentPage {
    /// Agents in all.
    pub(super) total: usize,
    /// Pass as `offset` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(super) next_offset: Option<usize>,
    /// This page's agents, in registration order.
    pub(super) agents: Vec<AgentJson>,
}

/// The agents, in registration order, paged.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    security(("bearer" = [])),
    params(Page),
    responses(
        (status = 200, description = "A page of agents.", body = AgentPage),
        BadRequest, Unauthorized, Unprocessable,
    ))]
pub(super) async fn list_agents(
    Authed(tenant): Authed,
    QueryOf(page): QueryOf<Page>,
) -> Result<Json<AgentPage>, ApiError> {
    page.check()?;
    let router = tenant.pipeline().router();
    let ids = router.agent_ids();
    let total = ids.len();
    let (ids, next_offset) = page.cut(ids);
    let agents = ids.into_iter().filter_map(|id| router.agent(id)).map(|v| agent_json(&tenant, v));
    Ok(Json(AgentPage { total, next_offset, agents: agents.collect() }))
}

/// Changes to an agent; fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentUpdate {
    /// Skill name to proficiency (1 to 10); replaces all the agent's skills.
    #[serde(default)]
    pub(super) skills: Option<BTreeMap<String, i64>>,
    /// Replaces the whole capacity (channels left out are 0).
    #[serde(default)]
    #[schema(value_type = Option<schema::CapacityLine>)]
    pub(super) capacity: Option<CapacityLine>,
    /// The new presence.
    #[serde(default)]
    #[schema(value_type = Option<schema::Presence>)]
    pub(super) presence: Option<Presence>,
}

/// Changes an agent's skills, capacity or presence.
///
/// Every field is checked before any applies; then they apply in that
/// order, each as a change of its own. The conversations of an agent who
/// goes away or offline are reassigned.
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The agent's id.", example = "dirk")),
    request_body(content = AgentUpdate, example = json!({
        "skills": {"sales": 7}, "capacity": {"chat": 3, "total": 3}, "presence": "away"
    })),
    responses(
        (status = 200, description = "The agent after the change.", body = AgentJson),
        BadRequest, Unauthorized, NotFound, TooLarge, UnsupportedMediaType, Unprocessable,
        Unavailable,
    ))]
pub(super) async fn update_agent(
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

/// An agent removed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Removed {
    /// The agent's id.
    #[schema(value_type = String)]
    pub(super) removed: Id,
    /// The tenant's event sequence number after the removal.
    pub(super) last_seq: u64,
}

/// Removes an agent; their conversations are reassigned.
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The agent's id.", example = "dirk")),
    responses(
        (status = 200, description = "Removed.", body = Removed,
            example = json!({"removed": "dirk", "last_seq": 21})),
        BadRequest, Unauthorized, NotFound, Unavailable,
    ))]
pub(super) async fn remove_agent(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Removed>, ApiError> {
    let ack = tenant.apply(Command::RemoveAgent { agent: id.clone() }).await?;
    Ok(Json(Removed { removed: id, last_seq: ack.last_seq }))
}
