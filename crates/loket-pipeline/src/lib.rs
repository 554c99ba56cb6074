//! From a customer's text to a routing decision.
//!
//! [`Pipeline::handle`] takes one inbound message and
//!
//! 1. scores it with a [`loket_intent::Model`]: intent, buying intent,
//!    language, signals and the hand-off judgement;
//! 2. folds the buying intent into the conversation's recency-weighted
//!    [`ConversationScore`];
//! 3. maps the intent to required skills ([`PipelineConfig::intent_skills`]),
//!    the conversation score to priority and the escalation threshold, and
//!    the hand-off judgement (a person, doubt, a complaint) to escalation
//!    ([`Escalation`]);
//! 4. routes it with the [`Router`];
//! 5. for a product or stock question, attaches the catalog's top matches,
//!    with stock, so the agent sees them at once.
//!
//! ```
//! use loket_pipeline::{Inbound, Pipeline, PipelineConfig};
//! use loket_router::{AgentId, AgentSpec, Channel, ConversationId, CustomerId, Language, Router};
//!
//! let router = Router::new();
//! let pipeline = Pipeline::new(router.clone(), loket_intent::Model::builtin(), None, PipelineConfig::default()).unwrap();
//! let mut events = Vec::new();
//! let mut anna = AgentSpec::new(AgentId(1));
//! anna.languages = vec![Language::NL];
//! anna.skills = vec![loket_router::SkillLevel { skill: router.skill("sales").unwrap(), level: 5 }];
//! router.upsert_agent(anna, &mut events).unwrap();
//!
//! let mut scratch = pipeline.scratch();
//! let inbound = Inbound::new(ConversationId(1), CustomerId(9), Channel::Chat, "kan ik met ideal betalen?");
//! let outcome = pipeline.handle(&inbound, &mut scratch, &mut events);
//! assert_eq!(outcome.decision.agent, Some(AgentId(1)));
//! assert!(outcome.score.buying_intent > 0.5);
//! ```
//!
//! # Architecture invariants
//!
//! - No I/O: like the router, the pipeline is a data structure; the caller
//!   owns threads and time.
//! - A message is scored once; the router sees only numbers and skill ids,
//!   never text.
//!
//! # Hand-off
//!
//! A model with a hand-off head ([`loket_intent::handoff`]) judges every
//! message: doubt, a complaint, a request for a person, or none, at the
//! threshold calibrated when it was trained. The pipeline escalates on that
//! judgement alone ([`EscalationSource::Model`]). Only for a score no
//! hand-off head judged (a model without one, or a score stored before
//! there was one) it falls back to the lexicon's signals
//! ([`EscalationSource::Lexicon`]: `human_request`, `complaint`, `doubt` or
//! `size_doubt`). Adding the lexicon to the built-in model's judgement cost
//! more than it gained on its training corpus (each of five domain files
//! held out in turn): the model alone hands off 2.8% of plain messages at
//! hand-off F1 0.942; with the lexicon's person requests added 5.0% at
//! 0.935, with all its hand-off signals 12.5% at 0.912; the lexicon alone
//! 10.6% at 0.453.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use dashmap::DashMap;
use loket_catalog::{Catalog, Hit};
use loket_intent::{
    ConversationDecay, ConversationScore, Handoff, HandoffKind, IntentId, Model, Score, Signals,
};
use loket_router::{
    Channel, ConversationId, CustomerId, Event, Language, Message, Requirements, Router,
    RouterError, SkillLevel,
};
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Serialize};

/// How scores become routing inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Intent label to required skills (skill name to minimum proficiency).
    /// A label may also name a prefix ending in `.` (`"buy."`): the longest
    /// matching entry wins.
    pub intent_skills: BTreeMap<String, BTreeMap<String, u8>>,
    /// Skills for intents no entry covers (including out of scope).
    pub default_skills: BTreeMap<String, u8>,
    /// Language for messages whose language cannot be told (very short ones).
    pub default_language: String,
    /// Catalog matches to attach to a product or stock question.
    pub product_matches: usize,
    /// Intent labels that are product or stock questions.
    pub product_intents: Vec<String>,
    /// How fast a conversation's buying intent rises and cools.
    pub half_life_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let skills = |pairs: &[(&str, u8)]| -> BTreeMap<String, u8> {
            pairs.iter().map(|(name, level)| ((*name).to_owned(), *level)).collect()
        };
        let mut intent_skills = BTreeMap::new();
        intent_skills.insert("buy.".to_owned(), skills(&[("sales", 1)]));
        intent_skills.insert("service.".to_owned(), skills(&[("service", 1)]));
        intent_skills.insert("service.return".to_owned(), skills(&[("returns", 1)]));
        intent_skills.insert("service.refund".to_owned(), skills(&[("returns", 1)]));
        intent_skills.insert("service.complaint".to_owned(), skills(&[("service", 3)]));
        PipelineConfig {
            intent_skills,
            default_skills: BTreeMap::new(),
            default_language: "nl".to_owned(),
            product_matches: 3,
            product_intents: [
                "buy.stock",
                "buy.product",
                "buy.price",
                "buy.size",
                "buy.compare",
                "buy.reserve",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            half_life_ms: ConversationDecay::DEFAULT.half_life_ms,
        }
    }
}

/// A configuration that does not fit the router or the model.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A skill name the router cannot intern, or a bad language code.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// A proficiency outside 1..=10.
    #[error("intent {intent:?}: proficiency {level} for skill {skill:?} is outside 1..=10")]
    Proficiency {
        /// The intent entry.
        intent: String,
        /// The skill.
        skill: String,
        /// The level given.
        level: u8,
    },
}

/// One inbound customer message.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound<'a> {
    /// The conversation.
    pub conversation: ConversationId,
    /// The customer.
    pub customer: CustomerId,
    /// The channel.
    pub channel: Channel,
    /// What the customer wrote.
    pub text: &'a str,
    /// The language, when the platform knows it; otherwise detected.
    pub language: Option<Language>,
    /// Customer tier (0 = default).
    pub tier: u8,
    /// Skills the platform requires, on top of those the intent maps to
    /// (a listed skill counts at its higher minimum).
    pub required: &'a [SkillLevel],
}

impl<'a> Inbound<'a> {
    /// A message with detected language and tier 0.
    pub fn new(
        conversation: ConversationId,
        customer: CustomerId,
        channel: Channel,
        text: &'a str,
    ) -> Self {
        Inbound { conversation, customer, channel, text, language: None, tier: 0, required: &[] }
    }
}

/// Everything decided for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The routing decision.
    pub decision: Event,
    /// The message's scores.
    pub score: Score,
    /// The model's hand-off judgement, with its probability and the words
    /// that weighed most for it (empty without a hand-off head).
    pub handoff: Handoff,
    /// The escalation signals the message gave the router, and why.
    pub escalation: Escalation,
    /// The conversation's buying intent after this message, in `[0, 1]`.
    pub conversation_score: f32,
    /// The language used for routing.
    pub language: Language,
    /// Top catalog matches, for a product or stock question.
    pub products: Vec<Hit>,
}

/// What [`Pipeline::route_scored`] decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Routed {
    /// The routing decision.
    pub decision: Event,
    /// The conversation's buying intent after this message, in `[0, 1]`.
    pub conversation_score: f32,
    /// The language used for routing.
    pub language: Language,
    /// The escalation signals the message gave the router, and why.
    pub escalation: Escalation,
}

/// A message ready to route: see [`Pipeline::prepare`].
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// What the router is given.
    pub message: Message,
    /// The conversation's buying intent after this message, in `[0, 1]`.
    pub conversation_score: f32,
    /// The language used for routing.
    pub language: Language,
    /// The escalation signals the message gives the router, and why.
    pub escalation: Escalation,
}

/// The escalation signals a message gives the router, and where they come
/// from (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Escalation {
    /// A person, doubt, a complaint (at most one of them when the model
    /// judged).
    pub signals: loket_router::Signals,
    /// Who decided.
    pub source: EscalationSource,
}

/// Who decided a message's escalation signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EscalationSource {
    /// The model's hand-off head ([`HandoffKind::from_signals`]).
    #[default]
    Model,
    /// The lexicon's signals, for a score no hand-off head judged.
    Lexicon,
}

impl EscalationSource {
    /// `model` or `lexicon`.
    pub fn name(self) -> &'static str {
        match self {
            EscalationSource::Model => "model",
            EscalationSource::Lexicon => "lexicon",
        }
    }
}

impl Escalation {
    /// The escalation signals of a score: the hand-off head's judgement
    /// when one judged the message, otherwise the lexicon's signals.
    pub fn of(score: &Score) -> Escalation {
        let s = score.signals;
        match HandoffKind::from_signals(s) {
            Some(kind) => Escalation {
                signals: loket_router::Signals {
                    human_request: kind == HandoffKind::Human,
                    doubt: kind == HandoffKind::Doubt,
                    complaint: kind == HandoffKind::Complaint,
                },
                source: EscalationSource::Model,
            },
            None => Escalation {
                signals: loket_router::Signals {
                    human_request: s.contains(Signals::HUMAN_REQUEST),
                    doubt: s.contains(Signals::DOUBT) || s.contains(Signals::SIZE_DOUBT),
                    complaint: s.contains(Signals::COMPLAINT),
                },
                source: EscalationSource::Lexicon,
            },
        }
    }

    /// Whether any escalation signal is set.
    pub fn any(&self) -> bool {
        let s = self.signals;
        s.human_request || s.doubt || s.complaint
    }
}

/// Per-thread working memory for [`Pipeline::handle`].
#[derive(Debug, Default)]
pub struct Scratch {
    intent: loket_intent::Scratch,
}

/// Scoring, stock lookup and routing; see the crate docs. `Send + Sync`.
#[derive(Debug)]
pub struct Pipeline {
    router: Router,
    model: SharedModel,
    catalog: Option<Arc<Catalog>>,
    skills_by_intent: FxHashMap<IntentId, Requirements>,
    product_intents: Vec<IntentId>,
    default_language: Language,
    decay: ConversationDecay,
    product_matches: usize,
    conversations: DashMap<ConversationId, ConversationScore, FxBuildHasher>,
}

/// The scoring model: the built-in one, or one loaded from a file and shared.
#[derive(Debug, Clone)]
pub enum SharedModel {
    /// A model that lives for the whole program, such as [`Model::builtin`].
    Static(&'static Model),
    /// A loaded model.
    Loaded(Arc<Model>),
}

impl std::ops::Deref for SharedModel {
    type Target = Model;

    fn deref(&self) -> &Model {
        match self {
            SharedModel::Static(model) => model,
            SharedModel::Loaded(model) => model,
        }
    }
}

impl From<&'static Model> for SharedModel {
    fn from(model: &'static Model) -> Self {
        SharedModel::Static(model)
    }
}

impl From<Model> for SharedModel {
    fn from(model: Model) -> Self {
        SharedModel::Loaded(Arc::new(model))
    }
}

impl From<Arc<Model>> for SharedModel {
    fn from(model: Arc<Model>) -> Self {
        SharedModel::Loaded(model)
    }
}

impl Pipeline {
    /// A pipeline over `router`, scoring with `model`, looking up stock in
    /// `catalog` if given. Interns the configured skills in the router.
    pub fn new(
        router: Router,
        model: impl Into<SharedModel>,
        catalog: Option<Arc<Catalog>>,
        config: PipelineConfig,
    ) -> Result<Pipeline, PipelineError> {
        let model: SharedModel = model.into();
        let requirements =
            |intent: &str, skills: &BTreeMap<String, u8>| -> Result<Requirements, PipelineError> {
                let mut required = Requirements::new();
                for (name, &level) in skills {
                    if !(1..=10).contains(&level) {
                        return Err(PipelineError::Proficiency {
                            intent: intent.to_owned(),
                            skill: name.clone(),
                            level,
                        });
                    }
                    required.push(SkillLevel { skill: router.skill(name)?, level });
                }
                Ok(required)
            };
        let default = requirements("(default)", &config.default_skills)?;
        let mut skills_by_intent = FxHashMap::default();
        for label in model.labels() {
            // The longest entry that is the label or a prefix of it ending in '.'.
            let entry = config
                .intent_skills
                .iter()
                .filter(|(key, _)| {
                    *key == label || (key.ends_with('.') && label.starts_with(key.as_str()))
                })
                .max_by_key(|(key, _)| key.len());
            let required = match entry {
                Some((key, skills)) => requirements(key, skills)?,
                None => default.clone(),
            };
            if let Some(id) = model.intent_id(label) {
                skills_by_intent.insert(id, required);
            }
        }
        let product_intents =
            config.product_intents.iter().filter_map(|label| model.intent_id(label)).collect();
        let default_language = config.default_language.parse::<Language>()?;
        Ok(Pipeline {
            router,
            model,
            catalog,
            skills_by_intent,
            product_intents,
            default_language,
            decay: ConversationDecay {
                half_life_ms: config.half_life_ms,
                ..ConversationDecay::DEFAULT
            },
            product_matches: config.product_matches,
            conversations: DashMap::with_hasher_and_shard_amount(FxBuildHasher, 64),
        })
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The scoring model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The catalog, if any.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_deref()
    }

    /// Fresh working memory: keep one per thread and reuse it (scoring
    /// allocates nothing once it is warm, and its token cache stays useful).
    pub fn scratch(&self) -> Scratch {
        Scratch::default()
    }

    /// Scores, routes and (for product questions) looks up one message.
    /// Every routing event is appended to `out`.
    ///
    /// The same as [`Pipeline::score_explained`], then
    /// [`Pipeline::route_scored`], then [`Pipeline::products`]: a caller that
    /// wants scoring on many threads and routing on one (as `loketd` does, to
    /// keep its journal replayable) calls the three steps itself.
    pub fn handle(
        &self,
        inbound: &Inbound<'_>,
        scratch: &mut Scratch,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let (score, handoff) = self.score_explained(inbound.text, scratch);
        let routed = self.route_scored(inbound, &score, out);
        let products = self.products(inbound.text, &score);
        Outcome {
            decision: routed.decision,
            score,
            handoff,
            escalation: routed.escalation,
            conversation_score: routed.conversation_score,
            language: routed.language,
            products,
        }
    }

    /// Scores one message's text. Pure: no state changes, any thread. The
    /// score's signals carry the hand-off judgement, which is all
    /// [`Pipeline::route_scored`] needs.
    pub fn score(&self, text: &str, scratch: &mut Scratch) -> Score {
        self.model.score(text, &mut scratch.intent)
    }

    /// [`Pipeline::score`], and the hand-off judgement with its probability
    /// and the words that weighed most for it, to show why a conversation
    /// escalates. Pure, any thread.
    pub fn score_explained(&self, text: &str, scratch: &mut Scratch) -> (Score, Handoff) {
        self.model.score_explained(text, &mut scratch.intent)
    }

    /// Routes one message that [`Pipeline::score`] has scored: folds its
    /// buying intent into the conversation's score (at the router's clock),
    /// maps intent, score and hand-off judgement ([`Escalation::of`]) to
    /// routing inputs and routes. The same inputs in the same order, at the
    /// same clock readings, give the same decisions.
    pub fn route_scored(
        &self,
        inbound: &Inbound<'_>,
        score: &Score,
        out: &mut Vec<Event>,
    ) -> Routed {
        let prepared = self.prepare(inbound, score);
        self.route_prepared(prepared, out)
    }

    /// The first half of [`Pipeline::route_scored`]: folds the message's
    /// buying intent into its conversation's score and builds the router's
    /// [`Message`], without routing it. A caller that must see the message
    /// before its decision (measuring does) routes it with
    /// [`Pipeline::route_prepared`].
    pub fn prepare(&self, inbound: &Inbound<'_>, score: &Score) -> Prepared {
        let language = inbound.language.unwrap_or(match score.language {
            loket_intent::Language::Dutch => Language::NL,
            loket_intent::Language::English => Language::EN,
            loket_intent::Language::Unknown => self.default_language,
        });
        let now = self.router.now().0;
        let conversation_score = {
            let mut entry = self.conversations.entry(inbound.conversation).or_default();
            entry.update_with(score.buying_intent, now, &self.decay);
            entry.value_at_with(now, &self.decay)
        };
        let mut message =
            Message::new(inbound.conversation, inbound.customer, inbound.channel, language);
        if let Some(required) = self.skills_by_intent.get(&score.intent) {
            message.required.extend(required.iter().copied());
        }
        message.required.extend(inbound.required.iter().copied());
        message.tier = inbound.tier;
        // Priority and escalation follow the conversation, not one message:
        // a conversation turning towards buying rises, one going cold decays.
        message.buying_intent = conversation_score;
        let escalation = Escalation::of(score);
        message.signals = escalation.signals;
        Prepared { message, conversation_score, language, escalation }
    }

    /// Routes a message made by [`Pipeline::prepare`].
    pub fn route_prepared(&self, prepared: Prepared, out: &mut Vec<Event>) -> Routed {
        let Prepared { message, conversation_score, language, escalation } = prepared;
        let decision = self.router.route(&message, out);
        Routed { decision, conversation_score, language, escalation }
    }

    /// The catalog's top matches for a product or stock question (empty for
    /// other messages, or without a catalog). Read-only, any thread.
    pub fn products(&self, text: &str, score: &Score) -> Vec<Hit> {
        match &self.catalog {
            Some(catalog) if self.product_matches > 0 && self.is_product_question(score) => {
                // A query the catalog cannot run finds nothing; routing stands.
                catalog.search(text, self.product_matches).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// Every conversation's buying-intent state, sorted by conversation, for
    /// saving durable state. Take it while no other thread routes.
    pub fn conversation_scores(&self) -> Vec<(ConversationId, ConversationScore)> {
        let mut scores: Vec<_> =
            self.conversations.iter().map(|entry| (*entry.key(), *entry.value())).collect();
        scores.sort_unstable_by_key(|(id, _)| *id);
        scores
    }

    /// Replaces every conversation's buying-intent state with `scores`, as
    /// saved by [`Pipeline::conversation_scores`].
    pub fn restore_conversation_scores(
        &self,
        scores: impl IntoIterator<Item = (ConversationId, ConversationScore)>,
    ) {
        self.conversations.clear();
        for (id, score) in scores {
            self.conversations.insert(id, score);
        }
    }

    /// Forgets a conversation's buying-intent state (after erasure).
    pub fn forget(&self, conversation: ConversationId) {
        self.conversations.remove(&conversation);
    }

    /// Is this message a product or stock question?
    pub fn is_product_question(&self, score: &Score) -> bool {
        self.product_intents.contains(&score.intent) || score.signals.contains(Signals::STOCK)
    }

    /// Closes a conversation in the router and forgets its score.
    pub fn close(
        &self,
        conversation: ConversationId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        self.conversations.remove(&conversation);
        self.router.close(conversation, out)
    }

    /// A conversation's buying intent now, if it has had a message.
    pub fn conversation_score(&self, conversation: ConversationId) -> Option<f32> {
        let now = self.router.now().0;
        self.conversations.get(&conversation).map(|score| score.value_at_with(now, &self.decay))
    }
}
