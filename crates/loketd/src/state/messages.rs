//! Messages: how a batch is routed, and what the receiving thread does
//! before the sequencer sees it (scoring, finding string ids).

use super::*;

/// The customer passed to the router with a later message of an open
/// conversation: the router reads a conversation's customer from its first
/// message only (see `loket_router::Message::customer`).
pub(super) const CUSTOMER_OF_AN_OPEN_CONVERSATION: u64 = u64::MAX;

impl TenantState {
    /// Integers found for the next command's string conversation ids, by
    /// message, 0 where none was found: [`find_conversations`] run by the
    /// thread that received the messages, so this one skips their hash
    /// lookups. Only the next [`TenantState::apply`] uses them, each
    /// checked ([`loket_ids::Interner::holds`]) first: a stale one costs
    /// the lookup it would have saved, never a wrong integer, and replay,
    /// which has none, finds the same integers the long way.
    pub fn hint_conversations(&mut self, hints: Vec<u64>) {
        self.conversation_hints = hints;
    }

    /// Routes a batch, all or nothing: every message is checked and its
    /// skills resolved before any is routed, so a refused batch changed
    /// nothing. Whether a message may name a skill no agent has is decided
    /// where it comes in ([`TenantState::admits_skill`]), not here: a
    /// journaled message always applies again.
    pub(super) fn route_messages(
        &mut self,
        messages: &[ScoredMessage],
        applied: &mut Applied,
    ) -> Result<(), ApplyError> {
        let router = self.pipeline.router().clone();
        let mut required: Vec<SkillLevel> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(messages.len());
        for message in messages {
            inbound(message, ConversationId(0), CustomerId(0), &[])?;
            // Ids were checked where they came in (HTTP, the binary
            // protocol), as they are journaled: not again on this thread.
            debug_assert!(message.conversation.check().is_ok() && message.customer.check().is_ok());
            let start = required.len();
            for skill in &message.skills {
                check_skill(skill)?;
                required.push(SkillLevel { skill: router.skill(&skill.name)?, level: skill.level });
            }
            spans.push((start, required.len()));
        }
        // The router integers: decimal ids are themselves; string ids take
        // the lock, once.
        let mut keys: Vec<(u64, u64, bool)> = Vec::with_capacity(messages.len());
        let mut tracked = false;
        {
            let mut ids = None;
            for (index, message) in messages.iter().enumerate() {
                let conversation = match message.conversation.as_number() {
                    Some(n) if n < loket_ids::TEXT_BASE => (n, false),
                    _ => {
                        let ids = ids.get_or_insert_with(|| self.ids.write());
                        match self.conversation_hints.get(index) {
                            Some(&hint) if ids.conversations.holds(hint) => {
                                debug_assert_eq!(
                                    ids.conversations.find(&message.conversation),
                                    Some(hint)
                                );
                                (hint, false)
                            }
                            _ => ids.conversations.intern_new(&message.conversation),
                        }
                    }
                };
                // A string-id conversation seen before is open in the
                // router (its id goes when the router forgets it), and the
                // router reads the customer from a conversation's first
                // message only: skip the lookup.
                let known = !conversation.1 && conversation.0 >= loket_ids::TEXT_BASE;
                let customer = if known {
                    CUSTOMER_OF_AN_OPEN_CONVERSATION
                } else {
                    match message.customer.as_number() {
                        Some(n) if n < loket_ids::TEXT_BASE => n,
                        _ => ids
                            .get_or_insert_with(|| self.ids.write())
                            .customers
                            .intern(&message.customer),
                    }
                };
                let track = !known
                    && (conversation.0 >= loket_ids::TEXT_BASE || customer >= loket_ids::TEXT_BASE);
                tracked |= track;
                keys.push((conversation.0, customer, track));
            }
        }
        applied.decisions.reserve(messages.len());
        for ((message, &(start, end)), &(conversation, customer, _)) in
            messages.iter().zip(&spans).zip(&keys)
        {
            let conversation = ConversationId(conversation);
            let inbound =
                inbound(message, conversation, CustomerId(customer), &required[start..end])?;
            let score = score(message);
            let prepared = self.pipeline.prepare(&inbound, &score);
            if let Some(metering) = &self.metering {
                // The message opens (or continues) the conversation before
                // its decision is measured.
                let mut metering = metering.write();
                metering.decisions(&self.scratch[self.metered..]);
                self.metered = self.scratch.len();
                let intent = self.pipeline.model().label(score.intent);
                // Never before the meter's time (a reply or order dated
                // ahead moves it): the message is measured, not refused.
                let at = self.clock_ms.max(metering.meter().now());
                let _ = metering
                    .message(at, &prepared.message, intent, |skill| router.skill_name(skill));
            }
            let before = self.scratch.len();
            let routed = self.pipeline.route_prepared(prepared, &mut self.scratch);
            let offset = self.scratch[before..]
                .iter()
                .position(|event| *event == routed.decision)
                .map_or(self.scratch.len(), |i| before + i);
            if offset == self.scratch.len() {
                // A decision the router did not also report: report it.
                self.scratch.push(routed.decision);
            }
            let escalation = self.scratch[before..].iter().find_map(|event| match event.kind {
                EventKind::Escalated { trigger } if event.conversation == Some(conversation) => {
                    Some(trigger)
                }
                _ => None,
            });
            applied.decisions.push(Decision {
                seq: self.next_seq + offset as u64,
                event: routed.decision,
                conversation_score: routed.conversation_score,
                escalation,
            });
        }
        // An opening message ties its customer to its conversation.
        if tracked {
            let mut ids = self.ids.write();
            for &(conversation, customer, track) in &keys {
                if track {
                    ids.routed(conversation, customer, |c| remembered_until(&router, c));
                }
            }
        }
        Ok(())
    }

    /// May a message that comes in now ask for `skill`? Yes if some agent
    /// has ever had it (or the configuration names it), or the tenant
    /// allows new skills. Asked where messages come in, before they are
    /// journaled.
    pub fn admits_skill(router: &Router, allow_new_skills: bool, skill: &str) -> bool {
        allow_new_skills || router.find_skill(skill).is_some()
    }
}

pub(super) fn inbound<'a>(
    message: &'a ScoredMessage,
    conversation: ConversationId,
    customer: CustomerId,
    required: &'a [SkillLevel],
) -> Result<Inbound<'a>, ApplyError> {
    let mut inbound =
        Inbound::new(conversation, customer, channel_from(message.channel)?, &message.text);
    inbound.language = language_from(message.language)?;
    inbound.tier = message.tier;
    inbound.required = required;
    Ok(inbound)
}

/// The integers `ids` holds now for `messages`' string conversation ids,
/// by message, 0 where it holds none (or the id is decimal); empty, without
/// taking the lock, when no message has a string conversation id. Run where
/// messages come in, for [`TenantState::hint_conversations`].
pub fn find_conversations(ids: &RwLock<TenantIds>, messages: &[ScoredMessage]) -> Vec<u64> {
    let is_string = |message: &ScoredMessage| {
        message.conversation.as_number().is_none_or(|n| n >= loket_ids::TEXT_BASE)
    };
    if !messages.iter().any(is_string) {
        return Vec::new();
    }
    let ids = ids.read();
    messages
        .iter()
        .map(|message| match message.conversation.as_number() {
            Some(n) if n < loket_ids::TEXT_BASE => 0,
            _ => ids.conversations.find(&message.conversation).unwrap_or(0),
        })
        .collect()
}

/// Until when (ms) the router's history of a customer steers routing.
pub(super) fn remembered_until(router: &Router, customer: u64) -> Option<u64> {
    router.remembered_until(CustomerId(customer)).map(|until| until.0)
}

/// A skill as a message or an agent names it: 1 to
/// [`loket_wire::MAX_SKILL_NAME`] bytes, proficiency 1..=10.
pub fn check_skill(skill: &SkillRecord) -> Result<(), ApplyError> {
    if skill.name.is_empty() || skill.name.len() > loket_wire::MAX_SKILL_NAME {
        return Err(ApplyError::Invalid(format!(
            "skill names are 1 to {} bytes; {:?} has {}",
            loket_wire::MAX_SKILL_NAME,
            skill.name.chars().take(80).collect::<String>(),
            skill.name.len()
        )));
    }
    if (1..=10).contains(&skill.level) {
        Ok(())
    } else {
        Err(ApplyError::Invalid(format!(
            "skill {:?}: proficiency {} is outside 1..=10",
            skill.name, skill.level
        )))
    }
}

/// The scores as journaled.
pub fn score(message: &ScoredMessage) -> Score {
    Score {
        intent: IntentId(message.intent),
        confidence: message.confidence,
        buying_intent: message.buying_intent,
        language: match message.detected_language {
            1 => loket_intent::Language::Dutch,
            2 => loket_intent::Language::English,
            _ => loket_intent::Language::Unknown,
        },
        signals: Signals(message.signals),
    }
}

/// A message as it arrives, before scoring.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// Conversation id.
    pub conversation: Id,
    /// Customer id.
    pub customer: Id,
    /// Channel code.
    pub channel: u8,
    /// Language code: 0 detect, 1 Dutch, 2 English.
    pub language: u8,
    /// Customer tier.
    pub tier: u8,
    /// The text.
    pub text: &'a str,
    /// Skills the platform requires.
    pub skills: Vec<SkillRecord>,
}

/// A message scored now, ready to journal.
///
/// The text is kept only with `store_text` (the tenant's opt-in); without
/// it the record holds everything replay needs and no customer words.
pub fn scored(
    pipeline: &Pipeline,
    scratch: &mut loket_pipeline::Scratch,
    incoming: Incoming<'_>,
    store_text: bool,
) -> ScoredMessage {
    let score = pipeline.score(incoming.text, scratch);
    ScoredMessage {
        conversation: incoming.conversation,
        customer: incoming.customer,
        channel: incoming.channel,
        language: incoming.language,
        tier: incoming.tier,
        text: if store_text { incoming.text.to_owned() } else { String::new() },
        intent: score.intent.0,
        confidence: score.confidence,
        buying_intent: score.buying_intent,
        detected_language: match score.language {
            loket_intent::Language::Dutch => 1,
            loket_intent::Language::English => 2,
            loket_intent::Language::Unknown => 0,
        },
        signals: score.signals.0,
        skills: incoming.skills,
    }
}
