//! Which agents could take a conversation, and which one does: requirements after overflow,
//! eligibility, the strategies' scan over the roster's sets, and why nobody could.

use super::*;
use crate::roster::{AgentCell, SkillIndex};

impl Inner {
    pub(super) fn view(&self, id: ConversationId, conv: &Conversation) -> ConversationView {
        ConversationView {
            id,
            customer: conv.customer,
            channel: conv.channel,
            language: conv.language,
            state: conv.state,
            agent: conv.holder.map(|h| h.agent),
            required: self.need_of(conv).required,
            overflow_step: conv.overflow_step,
            escalated: conv.escalated,
            buying_intent: conv.buying_intent,
            created_at: conv.created_at,
            last_message_at: conv.last_message_at,
            messages: conv.messages,
        }
    }

    /// What a conversation needs now, overflow steps applied.
    pub(super) fn need_of(&self, conv: &Conversation) -> Need {
        let mut required = conv.required.clone();
        let mut pool = Pool::Humans;
        for &(_, widening) in self.overflow.iter().take(conv.overflow_step as usize) {
            match widening {
                Widening::Lower(by) => {
                    for skill in &mut required {
                        skill.level = skill.level.saturating_sub(by).max(1);
                    }
                }
                Widening::Group(skill) => {
                    required.clear();
                    required.push(SkillLevel { skill, level: 1 });
                }
                Widening::Bot => pool = Pool::HumansOrBots,
            }
        }
        Need { channel: conv.channel, language: conv.language, required, pool }
    }

    /// The first required skill whose group is closed now.
    pub(super) fn closed_group(&self, required: &[SkillLevel], now: Timestamp) -> Option<SkillId> {
        if self.hours.is_empty() {
            return None;
        }
        required.iter().map(|r| r.skill).find(|skill| {
            self.hours.iter().any(|(group, gate)| group == skill && !gate.is_open(now))
        })
    }

    /// Could `slot` take a conversation with this need (capacity aside)?
    ///
    /// Reads only the published indexes, as [`Inner::select`] does: an
    /// agent's kind is the availability set it is in, so the check does not
    /// touch the agent's cell (a cache miss per history entry on the
    /// affinity path, where most entries are not eligible).
    pub(super) fn eligible(
        &self,
        indexes: &Indexes,
        slot: u32,
        need: &Need,
        now: Timestamp,
    ) -> bool {
        let available_as = |kind: AgentKind| indexes.available(kind).contains(slot);
        let kind = match need.pool {
            Pool::Humans if available_as(AgentKind::Human) => AgentKind::Human,
            Pool::Bots if available_as(AgentKind::Bot) => AgentKind::Bot,
            Pool::HumansOrBots if available_as(AgentKind::Human) => AgentKind::Human,
            Pool::HumansOrBots if available_as(AgentKind::Bot) => AgentKind::Bot,
            _ => return false,
        };
        if !indexes.language(need.language).is_some_and(|set| set.contains(slot)) {
            return false;
        }
        if kind == AgentKind::Bot {
            // Bots answer in any skill area once the pool lets them in.
            return true;
        }
        need.required
            .iter()
            .all(|r| indexes.skill(r.skill).is_some_and(|s| s.at_least(r.level).contains(slot)))
            && self.closed_group(&need.required, now).is_none()
    }

    /// Picks an agent for a conversation's `need` by the strategy and
    /// reserves its capacity. Ties go to the first agent in slot order from
    /// `origin`, the conversation's [`tie_origin`], wrapping around.
    ///
    /// `indexes` is the caller's snapshot of the roster's indexes (one load
    /// per placement: each load costs two atomic read-modify-writes), and
    /// `origin` was computed from it.
    pub(super) fn select(
        &self,
        indexes: &Indexes,
        origin: u32,
        need: &Need,
        excluded: Option<u32>,
        now: Timestamp,
    ) -> Option<u32> {
        let kinds: &[AgentKind] = match need.pool {
            Pool::Humans => &[AgentKind::Human],
            Pool::Bots => &[AgentKind::Bot],
            Pool::HumansOrBots => &[AgentKind::Human, AgentKind::Bot],
        };
        for &kind in kinds {
            // Bots take conversations by language and channel; humans by skill too.
            let required: &[SkillLevel] = if kind == AgentKind::Bot { &[] } else { &need.required };
            if kind == AgentKind::Human && self.closed_group(required, now).is_some() {
                continue;
            }
            for _attempt in 0..4 {
                let Some(slot) =
                    self.best_candidate(indexes, kind, need, required, excluded, origin)
                else {
                    break;
                };
                if self.roster.reserve(slot, need.channel) {
                    return Some(slot);
                }
                // Another thread took the last slot in between: look again.
            }
        }
        None
    }

    /// Why nobody in `need`'s pool can take a conversation: the first
    /// requirement, in [`Why`]'s order, that no agent meets. For a pool of
    /// humans or bots it explains the humans. Slow (it scans the roster's
    /// sets), so only called for a conversation that queues.
    pub(super) fn why(&self, indexes: &Indexes, need: &Need, excluded: Option<u32>) -> Why {
        /// Does the intersection of `sets` hold a slot that `accept`s?
        fn any(sets: &[&SlotSet], mut accept: impl FnMut(u32) -> bool) -> bool {
            let mut found = false;
            for_each_in_intersection_from(sets, None, 0, |slot| {
                found = accept(slot);
                !found
            });
            found
        }
        let kind = match need.pool {
            Pool::Humans | Pool::HumansOrBots => AgentKind::Human,
            Pool::Bots => AgentKind::Bot,
        };
        let of_kind = |slot: u32| self.roster.cell(slot).kind() == kind;
        if !indexes.by_language.iter().any(|(_, set)| any(&[&**set], of_kind)) {
            return Why::NoAgents;
        }
        let mut sets: SmallVec<[&SlotSet; 8]> = SmallVec::new();
        if kind == AgentKind::Human {
            for requirement in &need.required {
                let no_skill = Why::NoSkill { skill: requirement.skill, level: requirement.level };
                let Some(index) = indexes.skill(requirement.skill) else { return no_skill };
                sets.push(index.at_least(requirement.level));
                if !any(&sets, of_kind) {
                    return no_skill;
                }
            }
        }
        let no_language = Why::NoLanguage { language: need.language };
        let Some(language) = indexes.language(need.language) else { return no_language };
        sets.push(language);
        if !any(&sets, of_kind) {
            return no_language;
        }
        sets.push(indexes.available(kind));
        if !any(&sets, |_| true) {
            return Why::Unavailable;
        }
        if let Some(slot) = excluded
            && sets.iter().all(|set| set.contains(slot))
            && self.roster.cell(slot).capacity.has_room(need.channel)
        {
            return Why::Declined;
        }
        Why::AtCapacity { channel: need.channel }
    }

    /// Starts loading each required skill's eligibility-set word for slot
    /// `at`: where [`Inner::select`] starts its scan (`at` = the origin),
    /// or what [`Inner::eligible`] reads for an agent (`at` = its slot).
    /// They miss the cache (there are thousands of such sets), and the
    /// loads overlap with each other and with the work that comes first.
    pub(super) fn prefetch_skill_words(&self, indexes: &Indexes, at: u32, required: &[SkillLevel]) {
        for requirement in required {
            if let Some(index) = indexes.skill(requirement.skill) {
                index.at_least(requirement.level).prefetch(at);
            }
        }
    }

    /// The best agent of `kind` for `need` by the strategy (see [`Scan`]),
    /// among those in every eligibility set with room on the channel, or
    /// `None`. Reserves nothing: [`Inner::select`] does.
    pub(super) fn best_candidate(
        &self,
        indexes: &Indexes,
        kind: AgentKind,
        need: &Need,
        required: &[SkillLevel],
        excluded: Option<u32>,
        origin: u32,
    ) -> Option<u32> {
        let language = indexes.language(need.language)?;
        let mut sets: SmallVec<[&SlotSet; 8]> = SmallVec::new();
        sets.push(indexes.available(kind));
        sets.push(language);
        let mut skills: SmallVec<[&SkillIndex; 4]> = SmallVec::new();
        for requirement in required {
            let index = indexes.skill(requirement.skill)?;
            sets.push(index.at_least(requirement.level));
            skills.push(index);
        }
        // Sparsest first: most words of the scan then cost one load.
        sets.sort_unstable_by_key(|set| set.len());
        let scan = self.scan(need.channel, &skills);
        let start = scan.start(origin);
        let channel = need.channel;
        // `u32::MAX` is nobody's slot (slots are below `MAX_AGENTS`): one
        // comparison per agent visited, instead of a test of the option that
        // the compiler hoists into every word of the scan.
        let excluded = excluded.unwrap_or(u32::MAX);
        // A 0 among the likely ones settles the choice: nobody scores lower,
        // and it is the first 0 in scan order while the hint is exact (it
        // lags only while another thread reserves or releases).
        if let Some(likely) = scan.likely_zero(&self.roster) {
            let mut zero = None;
            for_each_in_intersection_from(&sets, Some(likely), start, |slot| {
                let found = self
                    .with_room(slot, channel, excluded)
                    .is_some_and(|cell| scan.score(slot, cell) == 0);
                if found {
                    zero = Some(slot);
                }
                !found
            });
            if let Some(slot) = zero {
                scan.chose(slot);
                return Some(slot);
            }
        }
        // The lowest score; the first in scan order wins ties, so a 0 ends
        // the scan.
        let mut best: Option<(u64, u32)> = None;
        for_each_in_intersection_from(&sets, None, start, |slot| {
            let Some(cell) = self.with_room(slot, channel, excluded) else { return true };
            let score = scan.score(slot, cell);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, slot));
            }
            score != 0
        });
        let (_, chosen) = best?;
        scan.chose(chosen);
        Some(chosen)
    }

    /// The agent in `slot`, if it has room on `channel` and is not
    /// `excluded`.
    #[inline(always)]
    fn with_room(&self, slot: u32, channel: Channel, excluded: u32) -> Option<&AgentCell> {
        if slot == excluded {
            return None;
        }
        let cell = self.roster.cell(slot);
        cell.capacity.has_room(channel).then_some(cell)
    }

    /// The configured strategy's part in [`Inner::best_candidate`], for a
    /// conversation on `channel` requiring `skills`.
    fn scan<'a>(&'a self, channel: Channel, skills: &'a [&'a SkillIndex]) -> Scan<'a> {
        match self.config.strategy {
            Strategy::LeastLoaded => Scan::LeastLoaded { channel },
            Strategy::LongestIdle => Scan::LongestIdle,
            Strategy::MostProficient => Scan::MostProficient { skills },
            Strategy::RoundRobin => Scan::RoundRobin { cursor: &self.round_robin },
        }
    }

    pub(super) fn priority(&self, conv: &Conversation) -> u32 {
        let policy = &self.config.priority;
        let mut points = policy.channel_urgency[conv.channel.index()];
        points += (conv.buying_intent * policy.buying_intent_weight as f32).round() as u32;
        points += u32::from(conv.tier) * policy.tier_weight;
        if conv.boosted || conv.escalated {
            points += policy.escalation_boost;
        }
        points
    }
}

/// What a strategy decides in [`Inner::best_candidate`]'s scan over the
/// eligible agents with room: where the scan starts, each agent's score
/// (lower is better; the first in scan order wins ties, so a 0 ends the
/// scan), which agents to look at first, and what a choice changes.
#[derive(Debug, Clone, Copy)]
enum Scan<'a> {
    /// Fewest conversations overall, then on the channel; ties from the
    /// conversation's origin. Idle agents score 0 and are looked at first.
    LeastLoaded { channel: Channel },
    /// Assigned longest ago; ties from the origin.
    LongestIdle,
    /// Highest sum of the required skills' levels, then fewest
    /// conversations; ties from the origin.
    MostProficient { skills: &'a [&'a SkillIndex] },
    /// The first agent at or after the cursor in slot order, wrapping
    /// around: everyone scores 0, the scan starts at the cursor, and a
    /// choice moves the cursor past the chosen agent.
    RoundRobin { cursor: &'a AtomicU32 },
}

impl Scan<'_> {
    /// Where the scan starts, given the conversation's tie origin.
    fn start(self, origin: u32) -> u32 {
        match self {
            Scan::RoundRobin { cursor } => cursor.load(Ordering::Relaxed),
            _ => origin,
        }
    }

    /// The agent in `slot` (`cell`), which has room: lower is better.
    #[inline]
    fn score(self, slot: u32, cell: &AgentCell) -> u64 {
        match self {
            Scan::LeastLoaded { channel } => {
                let total = u64::from(cell.capacity.total_load());
                (total << 8) | u64::from(cell.capacity.load(channel))
            }
            Scan::LongestIdle => cell.last_assigned_ms.load(Ordering::Relaxed),
            Scan::MostProficient { skills } => {
                let sum: u64 = skills.iter().map(|index| u64::from(index.level(slot))).sum();
                ((1000 - sum) << 32) | u64::from(cell.capacity.total_load())
            }
            Scan::RoundRobin { .. } => 0,
        }
    }

    /// A set (the roster's idle agents) to scan first because its members
    /// likely score 0, which settles the choice without scanning the rest.
    fn likely_zero(self, roster: &Roster) -> Option<&[AtomicU64]> {
        match self {
            Scan::LeastLoaded { .. } => Some(roster.idle_words()),
            _ => None,
        }
    }

    /// Records that the agent in `slot` was chosen.
    fn chose(self, slot: u32) {
        if let Scan::RoundRobin { cursor } = self {
            cursor.store(slot + 1, Ordering::Relaxed);
        }
    }
}
