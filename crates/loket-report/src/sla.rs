//! SLA policies: reply targets per channel, tier and intent prefix, and the
//! events that say a target is near or missed.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::fact::Channel;

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// The two reply targets of a conversation, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTargets {
    /// First response (a person's first reply) within this.
    pub first_reply_ms: u64,
    /// Every next reply within this of the oldest unanswered message.
    pub next_reply_ms: u64,
}

/// Default targets per channel: seconds for chat and voice, minutes for
/// WhatsApp, Messenger and SMS, hours for e-mail.
///
/// In a configuration, a channel left out keeps its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelTargets {
    /// Chat: 60 s first reply, 60 s next reply.
    pub chat: SlaTargets,
    /// Voice: 20 s to answer, 20 s next reply (the 80/20 call-centre norm).
    pub voice: SlaTargets,
    /// WhatsApp: 5 min first reply, 10 min next reply.
    pub whatsapp: SlaTargets,
    /// Messenger: 5 min first reply, 10 min next reply.
    pub messenger: SlaTargets,
    /// SMS: 5 min first reply, 10 min next reply.
    pub sms: SlaTargets,
    /// E-mail: 4 h first reply, 8 h next reply.
    pub email: SlaTargets,
}

impl Default for ChannelTargets {
    fn default() -> ChannelTargets {
        let targets = |first_reply_ms, next_reply_ms| SlaTargets { first_reply_ms, next_reply_ms };
        ChannelTargets {
            chat: targets(60 * SECOND, 60 * SECOND),
            voice: targets(20 * SECOND, 20 * SECOND),
            whatsapp: targets(5 * MINUTE, 10 * MINUTE),
            messenger: targets(5 * MINUTE, 10 * MINUTE),
            sms: targets(5 * MINUTE, 10 * MINUTE),
            email: targets(4 * HOUR, 8 * HOUR),
        }
    }
}

impl ChannelTargets {
    /// The targets of `channel`.
    pub fn get(&self, channel: Channel) -> SlaTargets {
        match channel {
            Channel::Chat => self.chat,
            Channel::Voice => self.voice,
            Channel::Whatsapp => self.whatsapp,
            Channel::Messenger => self.messenger,
            Channel::Sms => self.sms,
            Channel::Email => self.email,
        }
    }
}

/// A target that applies to the conversations it matches; fields left out
/// match everything, targets left out keep what a less specific rule or the
/// channel default says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaRule {
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Only this customer tier.
    pub tier: Option<u8>,
    /// Only intents whose name starts with this (non-empty).
    pub intent_prefix: Option<String>,
    /// The first-reply target.
    pub first_reply_ms: Option<u64>,
    /// The next-reply target.
    pub next_reply_ms: Option<u64>,
}

impl SlaRule {
    fn matches(&self, channel: Channel, tier: u8, intent: &str) -> bool {
        self.channel.is_none_or(|c| c == channel)
            && self.tier.is_none_or(|t| t == tier)
            && self.intent_prefix.as_deref().is_none_or(|p| intent.starts_with(p))
    }

    /// Higher is more specific: the prefix's length first, then a tier,
    /// then a channel.
    fn specificity(&self) -> (usize, bool, bool) {
        (
            self.intent_prefix.as_deref().map_or(0, str::len),
            self.tier.is_some(),
            self.channel.is_some(),
        )
    }
}

/// The SLA policy of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaPolicy {
    /// `sla_warning` fires when this many thousandths of a target have
    /// passed (default 800: at 80 %); 0 or 1000 send no warnings.
    pub warning_permille: u16,
    /// Targets by channel.
    pub defaults: ChannelTargets,
    /// Overrides by channel, tier and intent prefix.
    pub rules: Vec<SlaRule>,
}

impl Default for SlaPolicy {
    fn default() -> SlaPolicy {
        SlaPolicy { warning_permille: 800, defaults: ChannelTargets::default(), rules: Vec::new() }
    }
}

impl SlaPolicy {
    /// Checks that every target is positive, the warning fraction at most
    /// 1000 and no prefix empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.warning_permille > 1000 {
            return Err(ConfigError::WarningFraction(self.warning_permille));
        }
        for channel in Channel::ALL {
            let targets = self.defaults.get(channel);
            if targets.first_reply_ms == 0 || targets.next_reply_ms == 0 {
                return Err(ConfigError::ZeroTarget(channel.as_str()));
            }
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.first_reply_ms == Some(0) || rule.next_reply_ms == Some(0) {
                return Err(ConfigError::ZeroTarget("rule"));
            }
            if rule.intent_prefix.as_deref() == Some("") {
                return Err(ConfigError::EmptyPrefix(index));
            }
        }
        Ok(())
    }

    /// The targets of a conversation: for each target, the most specific
    /// matching rule that sets it (longest intent prefix, then one with a
    /// tier, then one with a channel; the first listed among equals), else
    /// the channel's default.
    pub fn targets(&self, channel: Channel, tier: u8, intent: &str) -> SlaTargets {
        let mut targets = self.defaults.get(channel);
        let mut first_best = None;
        let mut next_best = None;
        for rule in self.rules.iter().filter(|rule| rule.matches(channel, tier, intent)) {
            let specificity = rule.specificity();
            if let Some(ms) = rule.first_reply_ms
                && first_best.is_none_or(|best| specificity > best)
            {
                targets.first_reply_ms = ms;
                first_best = Some(specificity);
            }
            if let Some(ms) = rule.next_reply_ms
                && next_best.is_none_or(|best| specificity > best)
            {
                targets.next_reply_ms = ms;
                next_best = Some(specificity);
            }
        }
        targets
    }
}

/// Which reply clock an SLA event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaClock {
    /// The first response.
    FirstReply,
    /// A next reply.
    NextReply,
}

/// Whether the target is near or missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SlaEventKind {
    /// `sla_warning`: the warning fraction of the target has passed.
    #[serde(rename = "sla_warning")]
    Warning,
    /// `sla_breached`: the target has passed without a reply.
    #[serde(rename = "sla_breached")]
    Breached,
}

/// An SLA event, as [`crate::Meter::ingest`] and [`crate::Meter::advance`]
/// emit them: in order of `at`, then conversation, then clock and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaEvent {
    /// `sla_warning` or `sla_breached`.
    #[serde(rename = "type")]
    pub kind: SlaEventKind,
    /// The instant it became true: start + target × fraction for a
    /// warning, start + target + 1 ms for a breach.
    pub at: u64,
    /// The conversation.
    pub conversation: u64,
    /// Which clock.
    pub clock: SlaClock,
    /// The target in milliseconds.
    pub target_ms: u64,
}
