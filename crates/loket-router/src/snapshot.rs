//! Snapshots: the router's whole state as plain, owned data, for durable
//! storage and for restoring a router that behaves exactly as the original.
//!
//! The types here mirror the router's live structures field by field but are
//! separate from them: they hold no atomics, locks or indexes, use plain
//! numbers for ids and times, and derive both `serde` and `rkyv` (validated
//! with bytecheck) so a daemon can write them as a compact archive and read
//! them back checked. Everything derived (eligibility indexes, the idle
//! hint, queue groups, the cached opening-hours answers, the waiting
//! counter) is rebuilt on restore, never stored.
//!
//! Loads may exceed an agent's capacity in a valid snapshot: lowering an
//! agent's capacity keeps the conversations it holds. They must equal the
//! conversations held, and fit a capacity cell (255 a channel, 65,535 in
//! all).
//!
//! A snapshot read from a file is untrusted: [`crate::RouterBuilder::restore`]
//! checks every cross-reference and refuses inconsistent data with a
//! [`SnapshotError`] naming the problem, before building anything.
//!
//! Lists are in a canonical order (agents by slot, conversations and
//! customers by id, the backlog by queue key, timers by due time and
//! sequence), so snapshots of routers in the same state are equal, and
//! restoring a snapshot and taking a snapshot again gives it back unchanged.

use loket_capacity::{CHANNELS, Channel};

use crate::agent::{AgentKind, Presence};
use crate::conversation::ConversationState;

/// The snapshot format this version of the router writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Derives shared by every snapshot type.
macro_rules! snapshot_type {
    ($item:item) => {
        #[derive(
            Debug,
            Clone,
            PartialEq,
            serde::Serialize,
            serde::Deserialize,
            rkyv::Archive,
            rkyv::Serialize,
            rkyv::Deserialize,
        )]
        $item
    };
}

/// Derives shared by every snapshot enum (plus `Copy` and `Eq`).
macro_rules! snapshot_enum {
    ($item:item) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            serde::Serialize,
            serde::Deserialize,
            rkyv::Archive,
            rkyv::Serialize,
            rkyv::Deserialize,
        )]
        #[serde(rename_all = "snake_case")]
        $item
    };
}

snapshot_type! {
/// Everything that influences a router's future behaviour; see the module
/// docs and [`crate::Router::snapshot`].
pub struct RouterSnapshot {
    /// [`SNAPSHOT_VERSION`] when written.
    pub version: u32,
    /// The router's clock when the snapshot was taken, in ms (informational:
    /// restoring does not require the clock to stand there).
    pub taken_at: u64,
    /// Interned skill names; a name's position is its `SkillId`.
    pub skills: Vec<String>,
    /// Every agent slot ever handed out, removed agents included (slots are
    /// never reused), in slot order.
    pub agents: Vec<SnapshotAgent>,
    /// Every conversation the router holds, by id.
    pub conversations: Vec<SnapshotConversation>,
    /// The backlog.
    pub backlog: SnapshotBacklog,
    /// Pending timers, by due time then sequence. Timers of conversations
    /// that closed or moved on since are kept: they are ignored when they
    /// fire, exactly as in the original.
    pub timers: Vec<SnapshotTimer>,
    /// The sequence number the next timer gets.
    pub timer_seq: u64,
    /// Customer histories (who served them last), by customer id.
    pub customers: Vec<SnapshotCustomer>,
    /// Round-robin cursor: the slot the next round-robin pick starts from.
    pub round_robin: u32,
    /// When customer histories past the affinity look-back were last swept (ms).
    pub customers_swept_at: u64,
}
}

snapshot_type! {
/// One agent slot.
pub struct SnapshotAgent {
    /// The slot number; must equal the agent's position in the list.
    pub slot: u32,
    /// Removed from the roster (the slot stays, offline, for good).
    pub removed: bool,
    /// The agent as registered (normalised).
    pub spec: SnapshotAgentSpec,
    /// Offers missed in a row.
    pub missed_offers: u32,
    /// When the agent was last given a conversation (ms), for longest-idle.
    pub last_assigned_ms: u64,
    /// Load per channel, indexed as [`Channel::ALL`]; must match the
    /// conversations held.
    pub load: [u32; CHANNELS],
    /// Conversations holding the agent's capacity, in the router's order.
    pub holding: Vec<u64>,
}
}

snapshot_type! {
/// An agent's spec; mirrors [`crate::AgentSpec`].
pub struct SnapshotAgentSpec {
    /// The platform's id.
    pub id: u64,
    /// Human or bot.
    pub kind: SnapshotAgentKind,
    /// Skills with proficiency 1..=10.
    pub skills: Vec<SnapshotSkill>,
    /// Two-letter language codes.
    pub languages: Vec<String>,
    /// Capacity per channel, indexed as [`Channel::ALL`].
    pub capacity: [u32; CHANNELS],
    /// Overall capacity.
    pub capacity_total: u32,
    /// Presence.
    pub presence: SnapshotPresence,
    /// Team.
    pub team: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
}
}

snapshot_type! {
/// A skill with a proficiency (or a required minimum).
pub struct SnapshotSkill {
    /// The `SkillId`: a position in [`RouterSnapshot::skills`].
    pub skill: u16,
    /// Proficiency or minimum, 1..=10.
    pub level: u8,
}
}

snapshot_enum! {
/// Mirrors [`AgentKind`].
pub enum SnapshotAgentKind {
    /// A person.
    Human,
    /// A bot.
    Bot,
}
}

snapshot_enum! {
/// Mirrors [`Presence`].
pub enum SnapshotPresence {
    /// Available.
    Available,
    /// Away.
    Away,
    /// Offline.
    Offline,
    /// Not responding.
    NotResponding,
}
}

snapshot_enum! {
/// Mirrors [`ConversationState`].
pub enum SnapshotState {
    /// Held by a bot.
    Bot,
    /// Waiting in the backlog.
    Queued,
    /// Offered.
    Offered,
    /// Assigned to a human.
    Assigned,
    /// In wrap-up.
    WrapUp,
    /// Closed.
    Closed,
}
}

snapshot_enum! {
/// Mirrors [`Channel`].
pub enum SnapshotChannel {
    /// Chat.
    Chat,
    /// WhatsApp.
    Whatsapp,
    /// Messenger.
    Messenger,
    /// SMS.
    Sms,
    /// Email.
    Email,
    /// Voice.
    Voice,
}
}

snapshot_type! {
/// The agent holding a conversation.
pub struct SnapshotHolder {
    /// Its slot.
    pub slot: u32,
    /// Its id (must be the slot's agent).
    pub agent: u64,
}
}

snapshot_type! {
/// One conversation record, every field.
pub struct SnapshotConversation {
    /// Its id.
    pub id: u64,
    /// The customer.
    pub customer: u64,
    /// Channel.
    pub channel: SnapshotChannel,
    /// Two-letter language code.
    pub language: String,
    /// State.
    pub state: SnapshotState,
    /// The agent holding its capacity, if any.
    pub holder: Option<SnapshotHolder>,
    /// Required skills as the first message gave them (normalised, before
    /// overflow).
    pub required: Vec<SnapshotSkill>,
    /// Customer tier.
    pub tier: u8,
    /// Overflow steps applied.
    pub overflow_step: u8,
    /// Escalated from bot to human.
    pub escalated: bool,
    /// Goes ahead in the queue (declined, reassigned or escalated).
    pub boosted: bool,
    /// Latest buying intent, 0..=1.
    pub buying_intent: f32,
    /// Created (ms).
    pub created_at: u64,
    /// Last message (ms).
    pub last_message_at: u64,
    /// First queued (ms), while it has not been assigned since.
    pub first_queued_at: Option<u64>,
    /// The slot skipped on re-route.
    pub excluded: Option<u32>,
    /// Generation: incarnation in the high 32 bits, state changes below.
    pub generation: u64,
    /// Messages seen.
    pub messages: u32,
}
}

snapshot_type! {
/// The backlog.
pub struct SnapshotBacklog {
    /// The last queue sequence number handed out.
    pub next_seq: u64,
    /// Waiting conversations, best first.
    pub entries: Vec<SnapshotWaiting>,
}
}

snapshot_enum! {
/// Which agents may take a waiting conversation.
pub enum SnapshotPool {
    /// Humans only.
    Humans,
    /// Humans or bots (after a bot overflow step).
    HumansOrBots,
    /// Bots only.
    Bots,
}
}

snapshot_type! {
/// One waiting conversation.
pub struct SnapshotWaiting {
    /// The conversation (must be queued).
    pub conversation: u64,
    /// Queue rank: lower is served first.
    pub rank: i64,
    /// Queue sequence number: unique, FIFO among equal ranks.
    pub seq: u64,
    /// Channel needed.
    pub channel: SnapshotChannel,
    /// Two-letter language code needed.
    pub language: String,
    /// Skills needed, overflow applied.
    pub required: Vec<SnapshotSkill>,
    /// Which agents may take it.
    pub pool: SnapshotPool,
    /// Priority in points, before aging.
    pub priority: u32,
    /// Waiting since (ms).
    pub enqueued_at: u64,
    /// Only this slot may take it until `preferred_until`.
    pub preferred: Option<u32>,
    /// End of the preferred agent's turn (ms).
    pub preferred_until: u64,
    /// This slot may not take it.
    pub excluded: Option<u32>,
    /// The conversation's generation when queued.
    pub generation: u64,
}
}

snapshot_enum! {
/// What a timer does when it fires.
pub enum SnapshotTimerKind {
    /// An offer lapses.
    OfferExpiry,
    /// Wrap-up ends.
    WrapUpEnd,
    /// The next overflow step.
    Overflow,
    /// The preferred agent's turn ends.
    AffinityEnd,
    /// An opening-hours change.
    HoursChange,
}
}

snapshot_type! {
/// One pending timer.
pub struct SnapshotTimer {
    /// Due (ms).
    pub at: u64,
    /// Sequence number: orders timers due at the same time.
    pub seq: u64,
    /// What it does.
    pub kind: SnapshotTimerKind,
    /// The conversation (0 for opening-hours changes).
    pub conversation: u64,
    /// The conversation's generation when set; stale timers do nothing.
    pub generation: u64,
}
}

snapshot_type! {
/// One customer's history.
pub struct SnapshotCustomer {
    /// The customer.
    pub customer: u64,
    /// The agents who served them, most recent first (at most four).
    pub served: Vec<SnapshotServed>,
}
}

snapshot_type! {
/// One agent in a customer's history.
pub struct SnapshotServed {
    /// The agent.
    pub agent: u64,
    /// Its slot (must be the agent's).
    pub slot: u32,
    /// When it took the customer's conversation (ms).
    pub at: u64,
}
}

/// What is wrong with a snapshot [`crate::RouterBuilder::restore`] refused.
/// Strings quoted from the snapshot are cut to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another format version.
    #[error("snapshot format version {found}, this router reads version {supported}")]
    UnsupportedVersion {
        /// The snapshot's version.
        found: u32,
        /// [`SNAPSHOT_VERSION`].
        supported: u32,
    },
    /// More skill names than a `SkillId` can name.
    #[error("snapshot interns {0} skills, more than a skill id can name")]
    TooManySkills(usize),
    /// A skill name interned twice.
    #[error("skill name {0:?} is interned twice")]
    DuplicateSkillName(String),
    /// A skill id past the interned names.
    #[error("{what} uses skill id {skill}, but only {interned} skills are interned")]
    UnknownSkill {
        /// Where.
        what: &'static str,
        /// The id.
        skill: u16,
        /// How many names the snapshot interns.
        interned: usize,
    },
    /// More agent slots than the router has.
    #[error("snapshot has {0} agent slots, more than the router's maximum")]
    TooManyAgents(usize),
    /// Agent slots must be listed as 0, 1, 2, ... in order.
    #[error("agent at position {position} claims slot {slot}")]
    SlotOutOfOrder {
        /// Position in the list.
        position: usize,
        /// The slot it claims.
        slot: u32,
    },
    /// Two registered (not removed) agents with one id.
    #[error("agent {0} is registered in two slots")]
    DuplicateAgent(u64),
    /// A removed agent that is not offline.
    #[error("removed agent in slot {0} is not offline")]
    RemovedAgentOnline(u32),
    /// An agent spec the router would refuse.
    #[error("agent in slot {slot}: {reason}")]
    InvalidAgentSpec {
        /// The slot.
        slot: u32,
        /// Why (the router's error).
        reason: String,
    },
    /// A language code that is not two letters.
    #[error("invalid language code {0:?}")]
    InvalidLanguage(String),
    /// A slot number past the last agent.
    #[error("{what} refers to slot {slot}, but there are {slots} slots")]
    SlotOutOfRange {
        /// Where.
        what: &'static str,
        /// The slot.
        slot: u32,
        /// How many slots the snapshot has.
        slots: usize,
    },
    /// A slot paired with an agent id that is not the slot's.
    #[error("{what} names agent {agent} in slot {slot}, which holds agent {actual}")]
    AgentMismatch {
        /// Where.
        what: &'static str,
        /// The slot.
        slot: u32,
        /// The agent id given.
        agent: u64,
        /// The slot's agent.
        actual: u64,
    },
    /// One conversation id listed twice.
    #[error("conversation {0} is listed twice")]
    DuplicateConversation(u64),
    /// A conversation whose fields contradict each other.
    #[error("conversation {conversation}: {problem}")]
    InvalidConversation {
        /// The conversation.
        conversation: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// An agent's recorded load differs from the conversations it holds, or
    /// exceeds what a capacity cell can count.
    #[error(
        "agent in slot {slot} records load {recorded} on {channel} but holds {held} conversations there"
    )]
    LoadMismatch {
        /// The slot.
        slot: u32,
        /// The channel (or `total`).
        channel: &'static str,
        /// The load recorded.
        recorded: u32,
        /// Conversations held.
        held: u32,
    },
    /// Loads past what a capacity cell can count.
    #[error("agent in slot {slot} holds more conversations than a capacity cell can count")]
    LoadTooLarge {
        /// The slot.
        slot: u32,
    },
    /// An agent's holding list differs from the conversations that name it
    /// as holder.
    #[error("agent in slot {slot} lists conversation {conversation} it does not hold")]
    HoldingMismatch {
        /// The slot.
        slot: u32,
        /// The conversation.
        conversation: u64,
    },
    /// A queued conversation with no backlog entry, or an entry for a
    /// conversation that is missing or not queued, or listed twice.
    #[error("conversation {0} is not queued exactly once in the backlog")]
    QueueMismatch(u64),
    /// Two backlog entries with one sequence number, or one not yet handed out.
    #[error("backlog sequence number {seq} is duplicated or past the counter {next_seq}")]
    QueueSequence {
        /// The entry's sequence number.
        seq: u64,
        /// The backlog's counter.
        next_seq: u64,
    },
    /// Two timers with one sequence number, or one not yet handed out.
    #[error("timer sequence number {seq} is duplicated or not below the counter {timer_seq}")]
    TimerSequence {
        /// The timer's sequence number.
        seq: u64,
        /// The counter.
        timer_seq: u64,
    },
    /// One customer listed twice.
    #[error("customer {0} is listed twice")]
    DuplicateCustomer(u64),
    /// A history longer than the router keeps.
    #[error("customer {customer} has {len} agents in its history, at most {max} are kept")]
    HistoryTooLong {
        /// The customer.
        customer: u64,
        /// Entries given.
        len: usize,
        /// The most the router keeps.
        max: usize,
    },
    /// One slot listed twice in a customer's history (an agent registered
    /// again has a new slot, so it may appear once per slot).
    #[error("customer {customer} has slot {slot} twice in its history")]
    DuplicateSlotInHistory {
        /// The customer.
        customer: u64,
        /// The slot.
        slot: u32,
    },
}

/// Cuts a string quoted in an error.
pub(crate) fn quote(text: &str) -> String {
    text.chars().take(64).collect()
}

/// `From` both ways between a live enum and its snapshot mirror, variant
/// by variant (a variant added to one side and not the other does not
/// compile).
macro_rules! mirror {
    ($live:ident <=> $saved:ident { $($variant:ident),+ $(,)? }) => {
        impl From<$live> for $saved {
            fn from(value: $live) -> Self {
                match value {
                    $($live::$variant => $saved::$variant,)+
                }
            }
        }

        impl From<$saved> for $live {
            fn from(value: $saved) -> Self {
                match value {
                    $($saved::$variant => $live::$variant,)+
                }
            }
        }
    };
}

pub(crate) use mirror;

mirror!(AgentKind <=> SnapshotAgentKind { Human, Bot });
mirror!(Presence <=> SnapshotPresence { Available, Away, Offline, NotResponding });
mirror!(ConversationState <=> SnapshotState { Bot, Queued, Offered, Assigned, WrapUp, Closed });
mirror!(Channel <=> SnapshotChannel { Chat, Whatsapp, Messenger, Sms, Email, Voice });
