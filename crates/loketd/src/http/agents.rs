//! `/v1/agents`: register, list, read, change and remove agents.

use super::*;

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

pub(super) async fn upsert_agent(
    Authed(tenant): Authed,
    Body(line): Body<AgentLine>,
) -> Result<Json<AgentJson>, ApiError> {
    let record = agent_record(&line).map_err(ApiError::invalid)?;
    let id = record.id.clone();
    tenant.apply(Command::UpsertAgent(record)).await?;
    Ok(Json(agent_json(&tenant, find_agent(&tenant, &id)?)))
}

pub(super) async fn get_agent(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<AgentJson>, ApiError> {
    Ok(Json(agent_json(&tenant, find_agent(&tenant, &id)?)))
}

/// Paging of a listing: `limit` (1 to 1,000, default 100) items from
/// `offset` (default 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    #[serde(default = "default_page_limit")]
    pub(super) limit: usize,
    #[serde(default)]
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

/// A page of a listing.
#[derive(Debug, Serialize)]
pub(super) struct Listing<T> {
    /// Items in all.
    pub(super) total: usize,
    /// Pass as `offset` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_offset: Option<usize>,
    #[serde(flatten)]
    pub(super) items: T,
}

#[derive(Debug, Serialize)]
pub(super) struct Agents {
    pub(super) agents: Vec<AgentJson>,
}

pub(super) async fn list_agents(
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
pub(super) struct AgentUpdate {
    #[serde(default)]
    pub(super) skills: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    pub(super) capacity: Option<CapacityLine>,
    #[serde(default)]
    pub(super) presence: Option<Presence>,
}

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

#[derive(Debug, Serialize)]
pub(super) struct Removed {
    pub(super) removed: Id,
    pub(super) last_seq: u64,
}

pub(super) async fn remove_agent(
    Authed(tenant): Authed,
    PathId(id): PathId,
) -> Result<Json<Removed>, ApiError> {
    let ack = tenant.apply(Command::RemoveAgent { agent: id.clone() }).await?;
    Ok(Json(Removed { removed: id, last_seq: ack.last_seq }))
}
