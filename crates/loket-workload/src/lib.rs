//! Generated, reproducible workloads: agent rosters and Dutch/English
//! customer traffic for the demo, the benchmarks and the tests.
//!
//! Everything is derived from a seed, so two runs with the same parameters
//! route exactly the same messages.
//!
//! ```
//! use loket_router::Router;
//! use loket_workload::{Roster, RosterShape};
//!
//! let router = Router::new();
//! let roster = Roster::generate(&router, &RosterShape { agents: 100, skills: 20, ..RosterShape::default() }, 7);
//! let mut events = Vec::new();
//! router.upsert_agents(roster.specs.clone(), &mut events).unwrap();
//! assert_eq!(router.stats().agents, 100);
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use loket_router::{
    AgentId, AgentKind, AgentSpec, Capacity, Channel, ConversationId, CustomerId, Language,
    Message, Presence, Router, SkillId, SkillLevel,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The shape of a generated roster.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterShape {
    /// Number of agents.
    pub agents: usize,
    /// Number of distinct skills.
    pub skills: usize,
    /// Skills per agent.
    pub skills_per_agent: usize,
    /// Share of bots, 0..=1.
    pub bot_share: f64,
}

impl Default for RosterShape {
    fn default() -> Self {
        RosterShape { agents: 10_000, skills: 200, skills_per_agent: 8, bot_share: 0.0 }
    }
}

/// A generated roster.
#[derive(Debug, Clone)]
pub struct Roster {
    /// The agents, ready for [`Router::upsert_agents`].
    pub specs: Vec<AgentSpec>,
    /// The skill ids, interned in the router, index = skill number.
    pub skills: Vec<SkillId>,
}

/// Names for the first skills, so the demo reads like a garden centre's
/// service desk; further skills are numbered.
pub const SKILL_NAMES: &[&str] = &[
    "plants",
    "trees",
    "garden_tools",
    "delivery",
    "payments",
    "returns",
    "orders",
    "advice",
    "houseplants",
    "bulbs",
    "fruit_trees",
    "ponds",
    "furniture",
    "bbq",
    "christmas",
    "b2b",
];

/// The name of skill number `index`.
pub fn skill_name(index: usize) -> String {
    SKILL_NAMES.get(index).map_or_else(|| format!("skill_{index:03}"), |name| (*name).to_owned())
}

impl Roster {
    /// Generates agents with random skills (proficiency 1..=10), Dutch and/or
    /// English, typical capacities, all available.
    pub fn generate(router: &Router, shape: &RosterShape, seed: u64) -> Roster {
        let mut rng = SmallRng::seed_from_u64(seed);
        let skills: Vec<SkillId> = (0..shape.skills.max(1))
            .map(|i| router.skill(&skill_name(i)).expect("fewer than 65,536 skills"))
            .collect();
        let specs = (0..shape.agents)
            .map(|i| {
                let mut spec = AgentSpec::new(AgentId(i as u64 + 1));
                spec.kind = if rng.random_bool(shape.bot_share) {
                    AgentKind::Bot
                } else {
                    AgentKind::Human
                };
                let per_agent = shape.skills_per_agent.min(skills.len());
                spec.skills = rand::seq::index::sample(&mut rng, skills.len(), per_agent)
                    .into_iter()
                    .map(|s| SkillLevel { skill: skills[s], level: rng.random_range(1..=10) })
                    .collect();
                spec.languages = match rng.random_range(0..10) {
                    0..=4 => vec![Language::NL, Language::EN],
                    5..=7 => vec![Language::NL],
                    _ => vec![Language::EN],
                };
                spec.capacity = if spec.kind == AgentKind::Bot {
                    Capacity {
                        chat: 100,
                        whatsapp: 100,
                        messenger: 100,
                        sms: 100,
                        email: 100,
                        voice: 0,
                        total: 500,
                    }
                } else {
                    Capacity::default()
                };
                spec.presence = Presence::Available;
                spec
            })
            .collect();
        Roster { specs, skills }
    }
}

/// Customer texts, Dutch and English, with whether they show buying intent.
pub const TEXTS: &[(Language, &str, bool)] = &[
    (Language::NL, "hebben jullie nog bananenbomen op voorraad?", true),
    (Language::NL, "wat kost de olijfboom van 1,5 meter?", true),
    (Language::NL, "kan ik met ideal betalen?", true),
    (Language::NL, "wanneer wordt mijn bestelling bezorgd", false),
    (Language::NL, "is deze ook in maat 43 verkrijgbaar", true),
    (Language::NL, "ik wil graag een medewerker spreken", false),
    (Language::NL, "mijn pakket is beschadigd aangekomen", false),
    (Language::NL, "hoi, ik twijfel tussen de twee barbecues", true),
    (Language::NL, "kunnen jullie een betaallink sturen?", true),
    (Language::NL, "ik wil mijn bestelling annuleren", false),
    (Language::EN, "do you have lemon trees in stock", true),
    (Language::EN, "how much is delivery to belgium?", true),
    (Language::EN, "where is my order, it's been a week", false),
    (Language::EN, "can i pay with paypal", true),
    (Language::EN, "i want to return the pots", false),
    (Language::EN, "can i talk to a real person please", false),
    (Language::EN, "does the fig tree survive winter outside?", true),
    (Language::EN, "thanks, that's all", false),
];

/// Generates customer messages over a roster's skills.
#[derive(Debug)]
pub struct Traffic {
    rng: SmallRng,
    skills: Vec<SkillId>,
    next_conversation: u64,
    customers: u64,
}

impl Traffic {
    /// Traffic over `skills`, conversation ids from `first_conversation` up
    /// (give each thread its own range), customers drawn from `customers`.
    pub fn new(
        skills: Vec<SkillId>,
        first_conversation: u64,
        customers: u64,
        seed: u64,
    ) -> Traffic {
        Traffic {
            rng: SmallRng::seed_from_u64(seed),
            skills,
            next_conversation: first_conversation,
            customers: customers.max(1),
        }
    }

    /// A message opening a new conversation: one required skill (two in a
    /// fifth of cases) at a low minimum, a channel weighted like a web shop's
    /// (chat 50%, WhatsApp 30%, email 15%, Messenger 5%), a language and a
    /// text. Returns the message and the index into [`TEXTS`].
    pub fn new_conversation(&mut self) -> (Message, usize) {
        let id = ConversationId(self.next_conversation);
        self.next_conversation += 1;
        let text = self.rng.random_range(0..TEXTS.len());
        let (language, _, buying) = TEXTS[text];
        let channel = match self.rng.random_range(0..100) {
            0..50 => Channel::Chat,
            50..80 => Channel::Whatsapp,
            80..95 => Channel::Email,
            _ => Channel::Messenger,
        };
        let customer = CustomerId(self.rng.random_range(0..self.customers));
        let mut message = Message::new(id, customer, channel, language);
        let needs = if self.rng.random_range(0..5) == 0 { 2 } else { 1 };
        for _ in 0..needs {
            let skill = self.skills[self.rng.random_range(0..self.skills.len())];
            if message.required.iter().all(|r| r.skill != skill) {
                message.required.push(SkillLevel { skill, level: self.rng.random_range(1..=3) });
            }
        }
        message.tier = self.rng.random_range(0..3);
        message.buying_intent =
            if buying { self.rng.random_range(0.4..0.95) } else { self.rng.random_range(0.0..0.3) };
        (message, text)
    }

    /// A follow-up message in an existing conversation.
    pub fn follow_up(&mut self, opening: &Message) -> Message {
        let mut message = opening.clone();
        message.buying_intent = self.rng.random_range(0.0..1.0);
        message
    }

    /// Opens up to `target` conversations in `router` that get an agent
    /// (those that would wait are closed again), trying at most `8 * target`
    /// times so a roster with too little capacity still returns. Returns
    /// their opening messages, oldest first.
    pub fn open_conversations(&mut self, router: &Router, target: usize) -> Vec<Message> {
        let mut events = Vec::new();
        let mut open = Vec::with_capacity(target);
        for _ in 0..target.saturating_mul(8) {
            if open.len() == target {
                break;
            }
            let (message, _) = self.new_conversation();
            if router.route(&message, &mut events).is_assignment() {
                open.push(message);
            } else {
                // It was opened a moment ago, so closing it cannot fail.
                let _ = router.close(message.conversation, &mut events);
            }
            events.clear();
        }
        open
    }

    /// A uniformly random index below `n`.
    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_reproducible_and_routable() {
        let router = Router::new();
        let shape = RosterShape { agents: 50, skills: 10, skills_per_agent: 3, bot_share: 0.1 };
        let a = Roster::generate(&router, &shape, 1);
        let b = Roster::generate(&router, &shape, 1);
        assert_eq!(a.specs, b.specs);
        assert!(a.specs.iter().all(|s| s.skills.len() == 3 && !s.languages.is_empty()));
        let mut events = Vec::new();
        router.upsert_agents(a.specs, &mut events).unwrap();
        let mut traffic = Traffic::new(a.skills.clone(), 1, 100, 3);
        let mut again = Traffic::new(a.skills, 1, 100, 3);
        let mut assigned = 0;
        for _ in 0..100 {
            let (message, text) = traffic.new_conversation();
            assert_eq!(again.new_conversation(), (message.clone(), text));
            assert_eq!(TEXTS[text].0, message.language);
            if router.route(&message, &mut events).is_assignment() {
                assigned += 1;
            }
        }
        assert!(assigned > 50, "most generated conversations find an agent: {assigned}");
        let open = traffic.open_conversations(&router, 20);
        assert_eq!(open.len(), 20);
        assert!(
            open.iter()
                .all(|m| router.conversation(m.conversation).is_some_and(|c| c.agent.is_some()))
        );
    }
}
