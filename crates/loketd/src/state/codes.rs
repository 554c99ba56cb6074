//! The journal's and the wire's codes for router values (channel,
//! language, presence, capacity, skills, agents), and the errors that name
//! a caller's id.

use super::*;

/// The router's channel for a wire channel code.
pub fn channel_from(code: u8) -> Result<Channel, ApplyError> {
    Channel::ALL.get(usize::from(code)).copied().ok_or_else(|| {
        let last = loket_wire::channel::COUNT - 1;
        ApplyError::Invalid(format!("channel code {code} is not 0..={last}"))
    })
}

/// The wire code of a language: 0 none, 1 Dutch, 2 English.
pub fn language_from(code: u8) -> Result<Option<Language>, ApplyError> {
    use loket_wire::language;
    match code {
        language::DETECT => Ok(None),
        language::NL => Ok(Some(Language::NL)),
        language::EN => Ok(Some(Language::EN)),
        other => Err(ApplyError::Invalid(format!("language code {other} is not 0, 1 or 2"))),
    }
}

pub(super) fn unknown_agent(id: &Id) -> ApplyError {
    ApplyError::UnknownAgent(id.to_string())
}

pub(super) fn invalid_id(prefix: &str, field: &str, error: &loket_ids::IdError) -> ApplyError {
    ApplyError::Invalid(format!("{prefix}{field}: {error}"))
}

/// Presence from its code: 0 available, 1 away, 2 offline, 3 not responding.
pub fn presence_from(code: u8) -> Result<Presence, ApplyError> {
    match code {
        0 => Ok(Presence::Available),
        1 => Ok(Presence::Away),
        2 => Ok(Presence::Offline),
        3 => Ok(Presence::NotResponding),
        other => Err(ApplyError::Invalid(format!("presence code {other} is not 0..=3"))),
    }
}

/// The code of a presence.
pub fn presence_code(presence: Presence) -> u8 {
    match presence {
        Presence::Available => 0,
        Presence::Away => 1,
        Presence::Offline => 2,
        Presence::NotResponding => 3,
    }
}

pub(super) fn capacity_from(values: &[u32; 7]) -> Capacity {
    Capacity {
        chat: values[0],
        whatsapp: values[1],
        messenger: values[2],
        sms: values[3],
        email: values[4],
        voice: values[5],
        total: values[6],
    }
}

/// A capacity as journaled.
pub fn capacity_values(capacity: &Capacity) -> [u32; 7] {
    [
        capacity.chat,
        capacity.whatsapp,
        capacity.messenger,
        capacity.sms,
        capacity.email,
        capacity.voice,
        capacity.total,
    ]
}

pub(super) fn skills_from(
    router: &Router,
    skills: &[SkillRecord],
) -> Result<Vec<SkillLevel>, ApplyError> {
    skills
        .iter()
        .map(|skill| {
            check_skill(skill)?;
            Ok(SkillLevel { skill: router.skill(&skill.name)?, level: skill.level })
        })
        .collect()
}

pub(super) fn agent_spec(router: &Router, agent: &AgentRecord) -> Result<AgentSpec, ApplyError> {
    let mut spec = AgentSpec::new(AgentId(0));
    spec.kind = if agent.bot { AgentKind::Bot } else { AgentKind::Human };
    spec.languages =
        agent.languages.iter().map(|code| code.parse::<Language>()).collect::<Result<_, _>>()?;
    spec.capacity = capacity_from(&agent.capacity);
    spec.presence = presence_from(agent.presence)?;
    spec.team.clone_from(&agent.team);
    for skill in &agent.skills {
        check_skill(skill)?;
    }
    // Registers new skill names: last, once everything else is known good.
    spec.skills = skills_from(router, &agent.skills)?;
    Ok(spec)
}
