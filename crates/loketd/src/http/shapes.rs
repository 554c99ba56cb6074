//! JSON shapes more than one route answers with.

use super::*;

pub(super) fn round(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

/// A skill by name with a proficiency.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Skill)]
pub struct SkillJson {
    /// The skill's name.
    pub skill: String,
    /// Proficiency (an agent's) or minimum (a requirement), 1..=10.
    pub level: u8,
}

pub(super) fn name_skills(router: &loket_router::Router, skills: &[SkillLevel]) -> Vec<SkillJson> {
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
pub(super) fn skill_records(
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
pub(super) fn admit_skills(
    tenant: &Tenant,
    skills: &[SkillRecord],
    field: &str,
) -> Result<(), ApiError> {
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Score)]
pub struct ScoreJson {
    /// Intent label (`oos` when none fits).
    pub intent: String,
    /// Confidence in the intent, 0..=1.
    pub confidence: f64,
    /// The message's buying intent, 0..=1.
    pub buying_intent: f64,
    /// `nl`, `en` or `und` (undetermined).
    #[schema(value_type = schema::ScoreLanguage)]
    pub language: &'static str,
    /// Hand-off and topic signals (`price`, `stock`, `question`,
    /// `human_request`, ...).
    #[schema(value_type = Vec<String>)]
    pub signals: Vec<&'static str>,
}

pub(super) fn score_json(tenant: &Tenant, score: &Score) -> ScoreJson {
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Decision)]
pub struct DecisionJson<'a> {
    /// The decision event.
    #[serde(flatten)]
    #[schema(value_type = schema::Event)]
    pub event: EventJson<'a>,
    /// The message escalated the conversation to a person: what triggered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::EscalationTrigger>, nullable = false)]
    pub trigger: Option<EscalationTrigger>,
    /// The conversation's buying intent after the message.
    pub conversation_score: f64,
}

pub(super) fn decision_json<'a>(
    decision: &'a Decision,
    router: &loket_router::Router,
    ids: &'a loket_ids::TenantIds,
    holder: &'a mut Option<SeqEvent>,
) -> DecisionJson<'a> {
    let event = holder.insert(SeqEvent {
        seq: decision.seq,
        event: crate::state::StreamEvent::Routed(decision.event),
    });
    DecisionJson {
        event: EventJson::new(event, router, ids),
        trigger: decision.escalation,
        conversation_score: round(decision.conversation_score),
    }
}
