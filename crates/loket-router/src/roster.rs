//! The agent roster: per-agent atomics in a dense table, and read-mostly
//! eligibility indexes swapped atomically when agents change.
//!
//! Routing reads the indexes through one `ArcSwap` load and the per-agent
//! atomics by slot number; it never takes a lock. Changes to agents are
//! serialised by the writer lock, build a new [`Indexes`] (copying only the
//! sets they touch) and publish it.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use loket_capacity::Channel;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use loket_capacity::{CapacityCell, Limits};
use parking_lot::lock_api::RawMutex as _;
use parking_lot::{Mutex, RawMutex};
use smallvec::SmallVec;

use crate::agent::{AgentKind, AgentSpec, Presence};
use crate::bitset::SlotSet;
use crate::error::RouterError;
use crate::ids::{AgentId, ConversationId, Language, SkillId};
use crate::router::AgentLoad;

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNKS: usize = 1024;
/// The most agents one router can register over its lifetime.
pub const MAX_AGENTS: u32 = (CHUNK * CHUNKS) as u32;

/// The conversations holding capacity on one agent.
pub(crate) type Held = SmallVec<[ConversationId; 2]>;

/// The hot, shared state of one agent. Lives as long as the router: slots
/// are never reused, so a slot number held by a conversation always names
/// the same agent.
///
/// Exactly one cache line (checked below), with the first two held
/// conversations inline: opening or closing a conversation touches the
/// agent's line and nothing else of it.
#[repr(align(64))]
pub(crate) struct AgentCell {
    pub(crate) capacity: CapacityCell,
    pub(crate) last_assigned_ms: AtomicU64,
    id: AtomicU64,
    presence: AtomicU8,
    kind: AtomicU8,
    pub(crate) missed_offers: AtomicU32,
    /// Guards `holding`. A leaf lock: nothing else is locked while it is
    /// held. A separate field rather than a `Mutex<Held>`, whose padding
    /// would push the cell past one cache line.
    holding_lock: RawMutex,
    /// Conversations holding capacity on this agent (assigned, offered, in
    /// wrap-up, or a bot's while escalating). Only touched through
    /// [`AgentCell::with_holding`].
    holding: HeldCell,
}

const _: () = assert!(std::mem::size_of::<AgentCell>() == 64);

/// The holding list's storage, shared between threads but only ever
/// reached under its cell's `holding_lock` (see [`AgentCell::with_holding`]).
struct HeldCell(UnsafeCell<Held>);

// SAFETY: `Held` is `Send` (conversation ids), so it may be mutated and
// dropped on any thread; and the only access, `AgentCell::with_holding`,
// hands out its one `&mut` while the cell's `holding_lock` is held, so no
// two threads ever reach it at once.
unsafe impl Sync for HeldCell {}

impl std::fmt::Debug for AgentCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCell")
            .field("id", &self.id())
            .field("capacity", &self.capacity)
            .field("presence", &self.presence())
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl AgentCell {
    fn new() -> AgentCell {
        AgentCell {
            capacity: CapacityCell::new(Limits::new()),
            last_assigned_ms: AtomicU64::new(0),
            id: AtomicU64::new(0),
            presence: AtomicU8::new(Presence::Offline.to_u8()),
            kind: AtomicU8::new(0),
            missed_offers: AtomicU32::new(0),
            holding_lock: RawMutex::INIT,
            holding: HeldCell(UnsafeCell::new(Held::new())),
        }
    }

    pub(crate) fn id(&self) -> AgentId {
        AgentId(self.id.load(Ordering::Relaxed))
    }

    #[inline]
    pub(crate) fn presence(&self) -> Presence {
        Presence::from_u8(self.presence.load(Ordering::Acquire))
    }

    pub(crate) fn kind(&self) -> AgentKind {
        if self.kind.load(Ordering::Relaxed) == 1 { AgentKind::Bot } else { AgentKind::Human }
    }

    /// Runs `f` on the held conversations under the cell's holding lock.
    /// `f` must not call back into this cell's `with_holding` (it would
    /// deadlock); it may panic, the lock is released either way.
    #[inline]
    pub(crate) fn with_holding<R>(&self, f: impl FnOnce(&mut Held) -> R) -> R {
        struct Unlock<'a>(&'a RawMutex);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                // SAFETY: created right after `lock()` below on this thread,
                // so the lock is held by this thread here.
                unsafe { self.0.unlock() }
            }
        }
        self.holding_lock.lock();
        let _unlock = Unlock(&self.holding_lock);
        // SAFETY: the lock is held until `_unlock` drops, after `f` has
        // returned (or unwound), and `holding` is reached only here, so
        // this is the only reference to it meanwhile.
        f(unsafe { &mut *self.holding.0.get() })
    }

    pub(crate) fn hold(&self, conversation: ConversationId) {
        self.with_holding(|held| held.push(conversation));
    }

    pub(crate) fn unhold(&self, conversation: ConversationId) {
        self.with_holding(|held| {
            if let Some(index) = held.iter().position(|&c| c == conversation) {
                held.swap_remove(index);
            }
        });
    }

    /// A copy of the held conversations, in order.
    pub(crate) fn held(&self) -> Vec<ConversationId> {
        self.with_holding(|held| held.to_vec())
    }
}

/// Who an agent is in the eligibility indexes of one skill.
#[derive(Debug, Clone, Default)]
pub(crate) struct SkillIndex {
    /// `at_least[k]` holds the agents with proficiency `k + 1` or more, so a
    /// minimum proficiency is one more set in the intersection, not a check
    /// per candidate.
    pub(crate) at_least: [SlotSet; 10],
    /// Proficiency by slot; 0 for slots without the skill.
    pub(crate) level: Vec<u8>,
}

impl SkillIndex {
    #[inline]
    pub(crate) fn level(&self, slot: u32) -> u8 {
        self.level.get(slot as usize).copied().unwrap_or(0)
    }

    /// The agents with at least proficiency `min` (clamped to 1..=10).
    #[inline]
    pub(crate) fn at_least(&self, min: u8) -> &SlotSet {
        &self.at_least[usize::from(min.clamp(1, 10) - 1)]
    }
}

/// The eligibility indexes. Immutable once published.
#[derive(Debug, Clone, Default)]
pub(crate) struct Indexes {
    /// Available humans and bots.
    pub(crate) available: [Arc<SlotSet>; 2],
    /// By skill id; ids past the end have no members.
    pub(crate) by_skill: Vec<Arc<SkillIndex>>,
    pub(crate) by_language: Vec<(Language, Arc<SlotSet>)>,
    /// Slots handed out so far (removed agents' included): the range ties
    /// are broken over, see [`tie_origin`].
    pub(crate) slots: u32,
}

/// Where the scan for `conversation`'s agent starts: ties between equally
/// good agents go to the first one at or after this slot, wrapping around
/// (`slots` slots in all). A fixed mix of the conversation id, so decisions
/// stay deterministic, while concurrent new conversations spread over
/// equally good agents instead of all contending for the lowest slot.
#[inline]
pub(crate) fn tie_origin(conversation: ConversationId, slots: u32) -> u32 {
    if slots == 0 {
        return 0;
    }
    (crate::ids::spread(conversation.0) % u64::from(slots)) as u32
}

impl Indexes {
    #[inline]
    pub(crate) fn available(&self, kind: AgentKind) -> &SlotSet {
        &self.available[kind as usize]
    }

    #[inline]
    pub(crate) fn language(&self, language: Language) -> Option<&SlotSet> {
        self.by_language.iter().find(|(l, _)| *l == language).map(|(_, set)| &**set)
    }

    #[inline]
    pub(crate) fn skill(&self, skill: SkillId) -> Option<&SkillIndex> {
        self.by_skill.get(skill.0 as usize).map(|s| &**s)
    }
}

/// What the writer keeps per agent to update the indexes.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) spec: AgentSpec,
    pub(crate) removed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) by_id: HashMap<AgentId, u32>,
    pub(crate) profiles: Vec<Profile>,
}

/// The roster; see the module docs.
#[derive(Debug)]
pub(crate) struct Roster {
    chunks: Box<[OnceLock<Box<[AgentCell]>>]>,
    indexes: ArcSwap<Indexes>,
    /// Agents with no load at all, one bit a slot. A hint kept up to date on
    /// every 0 <-> 1 transition of an agent's overall load: exact when one
    /// thread routes, possibly stale for an instant under races, so every
    /// reader re-checks the agent's real load. It lets least-loaded routing
    /// find an idle agent without scanning the busy ones.
    idle: Box<[AtomicU64]>,
    pub(crate) writer: Mutex<Writer>,
}

/// One slot as a snapshot sees it.
#[derive(Debug, Clone)]
pub(crate) struct SlotState {
    pub(crate) spec: AgentSpec,
    pub(crate) removed: bool,
    pub(crate) missed_offers: u32,
    pub(crate) last_assigned_ms: u64,
    pub(crate) load: [u32; loket_capacity::CHANNELS],
    pub(crate) holding: Vec<ConversationId>,
}

/// What an agent change did, for the router to follow up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    pub(crate) slot: u32,
    pub(crate) before: Option<Presence>,
    pub(crate) after: Presence,
}

impl Roster {
    pub(crate) fn new() -> Roster {
        Roster {
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            indexes: ArcSwap::from_pointee(Indexes::default()),
            idle: (0..MAX_AGENTS as usize / 64).map(|_| AtomicU64::new(0)).collect(),
            writer: Mutex::new(Writer::default()),
        }
    }

    /// The cell of a registered slot.
    ///
    /// # Panics
    /// If `slot` was never handed out by this roster (a router bug, never input).
    #[inline]
    pub(crate) fn cell(&self, slot: u32) -> &AgentCell {
        let chunk = self.chunks[(slot >> CHUNK_BITS) as usize]
            .get()
            .expect("slot numbers come only from registered agents");
        &chunk[slot as usize & (CHUNK - 1)]
    }

    /// Reserves one slot of `channel` on the agent, keeping the idle hint.
    #[inline]
    pub(crate) fn reserve(&self, slot: u32, channel: Channel) -> bool {
        match self.cell(slot).capacity.try_reserve(channel) {
            Ok(1) => {
                self.mark(slot, false);
                true
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// Returns one slot of `channel`, keeping the idle hint. False if the
    /// agent held nothing there (a bookkeeping bug in the caller).
    #[inline]
    pub(crate) fn release(&self, slot: u32, channel: Channel) -> bool {
        match self.cell(slot).capacity.release(channel) {
            Ok(0) => {
                self.mark(slot, true);
                true
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// Sets or clears the idle bit, then re-reads the load: if another
    /// thread changed it in between, the bit follows the newer value.
    fn mark(&self, slot: u32, idle: bool) {
        let word = &self.idle[slot as usize / 64];
        let bit = 1u64 << (slot % 64);
        if idle {
            word.fetch_or(bit, Ordering::AcqRel);
        } else {
            word.fetch_and(!bit, Ordering::AcqRel);
        }
        let now_idle = self.cell(slot).capacity.total_load() == 0;
        if now_idle != idle {
            if now_idle {
                word.fetch_or(bit, Ordering::AcqRel);
            } else {
                word.fetch_and(!bit, Ordering::AcqRel);
            }
        }
    }

    /// The idle hint's words.
    #[inline]
    pub(crate) fn idle_words(&self) -> &[AtomicU64] {
        &self.idle
    }

    #[inline]
    pub(crate) fn indexes(&self) -> arc_swap::Guard<Arc<Indexes>> {
        self.indexes.load()
    }

    pub(crate) fn slot_of(&self, agent: AgentId) -> Option<u32> {
        self.writer.lock().by_id.get(&agent).copied()
    }

    /// Registers or updates agents under one writer lock and one publish.
    pub(crate) fn upsert(
        &self,
        specs: Vec<(AgentSpec, Limits)>,
        changes: &mut Vec<Change>,
    ) -> Result<(), RouterError> {
        let mut writer = self.writer.lock();
        let mut indexes = Indexes::clone(&self.indexes.load());
        for (spec, limits) in specs {
            let (slot, before) = match writer.by_id.get(&spec.id) {
                Some(&slot) => {
                    let old = writer.profiles[slot as usize].spec.clone();
                    unindex(&mut indexes, slot, &old);
                    (slot, Some(old.presence))
                }
                None => {
                    let slot = u32::try_from(writer.profiles.len())
                        .ok()
                        .filter(|&s| s < MAX_AGENTS)
                        .ok_or(RouterError::TooManyAgents(MAX_AGENTS))?;
                    let chunk = self.chunks[(slot >> CHUNK_BITS) as usize]
                        .get_or_init(|| (0..CHUNK).map(|_| AgentCell::new()).collect());
                    chunk[slot as usize & (CHUNK - 1)].id.store(spec.id.0, Ordering::Relaxed);
                    writer.by_id.insert(spec.id, slot);
                    writer.profiles.push(Profile { spec: spec.clone(), removed: false });
                    self.mark(slot, true);
                    (slot, None)
                }
            };
            let cell = self.cell(slot);
            cell.capacity.set_limits(limits);
            cell.kind.store(u8::from(spec.kind == AgentKind::Bot), Ordering::Relaxed);
            cell.presence.store(spec.presence.to_u8(), Ordering::Release);
            if spec.presence == Presence::Available {
                cell.missed_offers.store(0, Ordering::Relaxed);
            }
            index(&mut indexes, slot, &spec);
            changes.push(Change { slot, before, after: spec.presence });
            writer.profiles[slot as usize] = Profile { spec, removed: false };
        }
        indexes.slots = writer.profiles.len() as u32;
        self.indexes.store(Arc::new(indexes));
        Ok(())
    }

    /// Changes one agent's spec through `edit`.
    pub(crate) fn edit(
        &self,
        agent: AgentId,
        edit: impl FnOnce(&mut AgentSpec),
    ) -> Result<(AgentSpec, Limits), RouterError> {
        let writer = self.writer.lock();
        let slot = *writer.by_id.get(&agent).ok_or(RouterError::UnknownAgent(agent))?;
        let mut spec = writer.profiles[slot as usize].spec.clone();
        drop(writer);
        edit(&mut spec);
        spec.normalise()
    }

    /// Takes an agent out of every index for good; its slot is never reused.
    pub(crate) fn remove(&self, agent: AgentId) -> Result<Change, RouterError> {
        let mut writer = self.writer.lock();
        let slot = writer.by_id.remove(&agent).ok_or(RouterError::UnknownAgent(agent))?;
        let mut indexes = Indexes::clone(&self.indexes.load());
        let profile = &mut writer.profiles[slot as usize];
        unindex(&mut indexes, slot, &profile.spec);
        profile.removed = true;
        let before = profile.spec.presence;
        profile.spec.presence = Presence::Offline;
        self.cell(slot).presence.store(Presence::Offline.to_u8(), Ordering::Release);
        self.indexes.store(Arc::new(indexes));
        Ok(Change { slot, before: Some(before), after: Presence::Offline })
    }

    /// Sets presence without other changes (used for not-responding).
    pub(crate) fn set_presence(&self, slot: u32, presence: Presence) -> Option<Change> {
        let mut writer = self.writer.lock();
        let profile = writer.profiles.get_mut(slot as usize)?;
        if profile.removed || profile.spec.presence == presence {
            return None;
        }
        let mut indexes = Indexes::clone(&self.indexes.load());
        unindex(&mut indexes, slot, &profile.spec);
        let before = profile.spec.presence;
        profile.spec.presence = presence;
        index(&mut indexes, slot, &profile.spec);
        self.cell(slot).presence.store(presence.to_u8(), Ordering::Release);
        self.indexes.store(Arc::new(indexes));
        Some(Change { slot, before: Some(before), after: presence })
    }

    /// A copy of an agent's current spec.
    pub(crate) fn spec(&self, agent: AgentId) -> Option<(u32, AgentSpec)> {
        let writer = self.writer.lock();
        let slot = *writer.by_id.get(&agent)?;
        Some((slot, writer.profiles[slot as usize].spec.clone()))
    }

    /// Slots of every agent that is available now.
    pub(crate) fn available_slots(&self) -> Vec<u32> {
        let indexes = self.indexes();
        indexes.available[0].iter().chain(indexes.available[1].iter()).collect()
    }

    /// Every slot handed out, in slot order, with its hot state: for
    /// snapshots. Call it while no other thread changes the router.
    pub(crate) fn export(&self) -> Vec<SlotState> {
        let writer = self.writer.lock();
        let mut slots = Vec::with_capacity(writer.profiles.len());
        for (slot, profile) in writer.profiles.iter().enumerate() {
            let cell = self.cell(slot as u32);
            let mut load = [0; loket_capacity::CHANNELS];
            for channel in Channel::ALL {
                load[channel.index()] = cell.capacity.load(channel);
            }
            slots.push(SlotState {
                spec: profile.spec.clone(),
                removed: profile.removed,
                missed_offers: cell.missed_offers.load(Ordering::Relaxed),
                last_assigned_ms: cell.last_assigned_ms.load(Ordering::Relaxed),
                load,
                holding: cell.held(),
            });
        }
        slots
    }

    /// Fills a fresh roster with checked slots (slot `i` is `slots[i]`):
    /// cells, loads, the idle hint and the indexes, published once.
    ///
    /// The caller has checked that ids of registered agents are unique, that
    /// there are at most [`MAX_AGENTS`] slots, that specs are normalised
    /// with these limits, and that loads fit a capacity cell.
    pub(crate) fn restore(&self, slots: Vec<(SlotState, Limits)>) {
        let mut writer = self.writer.lock();
        debug_assert!(writer.profiles.is_empty(), "restore fills a fresh roster");
        let mut indexes = Indexes::default();
        // Loads may exceed the agent's limits (lowered while it held work):
        // take them under the largest limits, then set the real ones.
        let mut widest = Limits::new().with_total(loket_capacity::MAX_TOTAL);
        for channel in Channel::ALL {
            widest = widest.with(channel, loket_capacity::MAX_PER_CHANNEL);
        }
        for (slot, (state, limits)) in slots.into_iter().enumerate() {
            let slot = slot as u32;
            let chunk = self.chunks[(slot >> CHUNK_BITS) as usize]
                .get_or_init(|| (0..CHUNK).map(|_| AgentCell::new()).collect());
            let cell = &chunk[slot as usize & (CHUNK - 1)];
            cell.id.store(state.spec.id.0, Ordering::Relaxed);
            cell.kind.store(u8::from(state.spec.kind == AgentKind::Bot), Ordering::Relaxed);
            cell.presence.store(state.spec.presence.to_u8(), Ordering::Release);
            cell.missed_offers.store(state.missed_offers, Ordering::Relaxed);
            cell.last_assigned_ms.store(state.last_assigned_ms, Ordering::Relaxed);
            cell.capacity.set_limits(widest);
            for channel in Channel::ALL {
                for _ in 0..state.load[channel.index()] {
                    let reserved = cell.capacity.try_reserve(channel);
                    debug_assert!(reserved.is_ok(), "checked loads fit a cell");
                }
            }
            cell.capacity.set_limits(limits);
            cell.with_holding(|held| *held = Held::from_vec(state.holding));
            self.mark(slot, cell.capacity.total_load() == 0);
            if !state.removed {
                index(&mut indexes, slot, &state.spec);
                writer.by_id.insert(state.spec.id, slot);
            }
            writer.profiles.push(Profile { spec: state.spec, removed: state.removed });
        }
        indexes.slots = writer.profiles.len() as u32;
        self.indexes.store(Arc::new(indexes));
    }

    /// Load over every registered agent that is not offline: O(agents),
    /// one atomic load per agent; consistent per agent, not across agents.
    pub(crate) fn load_summary(&self) -> AgentLoad {
        let writer = self.writer.lock();
        let mut summary = AgentLoad::default();
        for (slot, profile) in writer.profiles.iter().enumerate() {
            let cell = self.cell(slot as u32);
            if profile.removed || cell.presence() == Presence::Offline {
                continue;
            }
            let held = cell.capacity.total_load();
            let capacity = cell.capacity.limits().total();
            summary.agents += 1;
            summary.held += u64::from(held);
            summary.capacity += u64::from(capacity);
            if held > 0 && held >= capacity {
                summary.at_capacity += 1;
            }
        }
        summary
    }

    /// The registered (not removed) agents' ids, in slot order.
    pub(crate) fn ids(&self) -> Vec<AgentId> {
        let writer = self.writer.lock();
        let mut ids: Vec<(u32, AgentId)> =
            writer.by_id.iter().map(|(&id, &slot)| (slot, id)).collect();
        drop(writer);
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Number of registered (not removed) agents.
    pub(crate) fn len(&self) -> usize {
        self.writer.lock().by_id.len()
    }
}

fn index(indexes: &mut Indexes, slot: u32, spec: &AgentSpec) {
    if spec.presence == Presence::Available {
        Arc::make_mut(&mut indexes.available[spec.kind as usize]).insert(slot);
    }
    for skill in &spec.skills {
        let position = skill.skill.0 as usize;
        if indexes.by_skill.len() <= position {
            indexes.by_skill.resize_with(position + 1, Default::default);
        }
        let entry = Arc::make_mut(&mut indexes.by_skill[position]);
        for set in &mut entry.at_least[..usize::from(skill.level.clamp(1, 10))] {
            set.insert(slot);
        }
        if entry.level.len() <= slot as usize {
            entry.level.resize(slot as usize + 1, 0);
        }
        entry.level[slot as usize] = skill.level;
    }
    for &language in &spec.languages {
        match indexes.by_language.iter_mut().find(|(l, _)| *l == language) {
            Some((_, set)) => Arc::make_mut(set).insert(slot),
            None => {
                let mut set = SlotSet::new();
                set.insert(slot);
                indexes.by_language.push((language, Arc::new(set)));
            }
        }
    }
}

fn unindex(indexes: &mut Indexes, slot: u32, spec: &AgentSpec) {
    for set in &mut indexes.available {
        if set.contains(slot) {
            Arc::make_mut(set).remove(slot);
        }
    }
    for skill in &spec.skills {
        if let Some(entry) = indexes.by_skill.get_mut(skill.skill.0 as usize) {
            let entry = Arc::make_mut(entry);
            for set in &mut entry.at_least {
                set.remove(slot);
            }
            if let Some(level) = entry.level.get_mut(slot as usize) {
                *level = 0;
            }
        }
    }
    for language in &spec.languages {
        if let Some((_, set)) = indexes.by_language.iter_mut().find(|(l, _)| l == language) {
            Arc::make_mut(set).remove(slot);
        }
    }
}
