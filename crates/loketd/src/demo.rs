//! The embedded demo: agents and a garden-centre catalog, so `loketd` with
//! no arguments has something to route to.

use std::path::Path;

use loket_ids::Id;
use loket_replay::AgentLine;
use loket_router::Capacity;

use crate::command::{AgentRecord, SkillRecord};
use crate::state::{capacity_values, presence_code};

/// The demo catalog: a garden centre's plants, Latin names included.
pub const CATALOG: &str = include_str!("../data/demo_catalog.csv");

/// The first id of the demo's bot agents; humans count up from 1.
pub const FIRST_BOT: u64 = 1_000;

/// 60 humans (sales, service and returns at varied proficiency, Dutch and
/// English) and 40 bots that take new conversations first.
pub fn agents() -> Vec<AgentRecord> {
    let mut agents = Vec::new();
    for i in 0..60u64 {
        let level = |offset: u64| (1 + (i * 7 + offset) % 10) as u8;
        let mut skills = vec![SkillRecord { name: "service".to_owned(), level: level(3) }];
        if i % 3 != 2 {
            skills.push(SkillRecord { name: "sales".to_owned(), level: level(5) });
        }
        if i % 4 == 0 {
            skills.push(SkillRecord { name: "returns".to_owned(), level: level(1) });
        }
        let languages =
            if i % 5 == 4 { vec!["en".to_owned()] } else { vec!["nl".to_owned(), "en".to_owned()] };
        agents.push(AgentRecord {
            id: Id::Number(i + 1),
            bot: false,
            skills,
            languages,
            capacity: capacity_values(&Capacity::default()),
            presence: 0,
            team: Some(if i % 3 == 2 { "service" } else { "sales" }.to_owned()),
        });
    }
    for i in 0..40u64 {
        agents.push(AgentRecord {
            id: Id::Number(FIRST_BOT + i),
            bot: true,
            skills: ["sales", "service", "returns"]
                .iter()
                .map(|name| SkillRecord { name: (*name).to_owned(), level: 5 })
                .collect(),
            languages: vec!["nl".to_owned(), "en".to_owned()],
            capacity: [255, 255, 255, 255, 255, 0, 1_275],
            presence: 0,
            team: Some("bots".to_owned()),
        });
    }
    agents
}

/// Agents from a JSONL file in the `loket route` format.
pub fn agents_from_file(path: &Path) -> Result<Vec<AgentRecord>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut agents = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at =
            |message: String| format!("agents {} line {}: {message}", path.display(), index + 1);
        let parsed: AgentLine = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        agents.push(agent_record(&parsed).map_err(at)?);
    }
    Ok(agents)
}

/// An agent from its JSON form (the `loket route` agent line).
pub fn agent_record(line: &AgentLine) -> Result<AgentRecord, String> {
    let skills = line
        .skills
        .iter()
        .map(|(name, &level)| match u8::try_from(level) {
            Ok(level @ 1..=10) => Ok(SkillRecord { name: name.clone(), level }),
            _ => Err(format!("skill {name:?}: proficiency {level} is outside 1..=10")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let capacity = match &line.capacity {
        None => capacity_values(&Capacity::default()),
        Some(capacity) => capacity_values(
            &capacity.to_capacity().map_err(|e| format!("capacity {}: {e}", e.field))?,
        ),
    };
    Ok(AgentRecord {
        id: line.id.clone(),
        bot: line.kind == loket_router::AgentKind::Bot,
        skills,
        languages: line.languages.clone(),
        capacity,
        presence: presence_code(line.presence.unwrap_or(loket_router::Presence::Available)),
        team: line.team.clone(),
    })
}
