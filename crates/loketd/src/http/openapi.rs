//! The OpenAPI 3.1 description of the HTTP API, generated from the
//! handlers' `#[utoipa::path]` attributes and the bodies' types.
//!
//! The router and the description come from one list: [`Documented`]
//! routes each handler at the path and methods its attribute names, and
//! records the same operation in the description, so a route cannot be
//! served without being described, nor described at another path. The
//! description is generated once when the application is built and served
//! at `GET /openapi.json` (no token); `docs/openapi.json` is a checked-in
//! copy that `tests/openapi.rs` keeps equal to it.
//!
//! Types of other crates that answers carry (channels, capacities, catalog
//! hits, events, ...) are described here by mirror types in [`schema`]:
//! they have the same serde shape, and exist only for their schemas.

use std::borrow::Cow;

use axum::Extension;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use utoipa::openapi::path::{HttpMethod, Paths};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::*;

/// A router and its description, built together (see the module docs).
pub(super) struct Documented {
    router: Router<AppState>,
    paths: Paths,
}

impl std::fmt::Debug for Documented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&String> = self.paths.paths.keys().collect();
        f.debug_struct("Documented").field("paths", &paths).finish_non_exhaustive()
    }
}

impl Documented {
    /// No routes.
    pub(super) fn new() -> Documented {
        Documented { router: Router::new(), paths: Paths::new() }
    }

    /// Routes `handler` at the path and methods of `P`, the type its
    /// `#[utoipa::path]` attribute generated, and describes it with `P`'s
    /// operation.
    pub(super) fn route<P, H, T>(mut self, handler: H) -> Documented
    where
        P: utoipa::Path,
        H: Handler<T, AppState>,
        T: 'static,
    {
        let (path, methods) = (P::path(), P::methods());
        let filter = methods
            .iter()
            .map(method_filter)
            .reduce(MethodFilter::or)
            .expect("a #[utoipa::path] names one method or more");
        self.router = self.router.route(&path, MethodRouter::new().on(filter, handler));
        self.paths.add_path_operation(path, methods, P::operation());
        self
    }

    /// Applies `layer` to the routes so far (the description is unchanged).
    pub(super) fn map_router(
        mut self,
        layer: impl FnOnce(Router<AppState>) -> Router<AppState>,
    ) -> Documented {
        self.router = layer(self.router);
        self
    }

    /// Both routers' routes, both descriptions' paths.
    pub(super) fn merge(mut self, other: Documented) -> Documented {
        self.router = self.router.merge(other.router);
        self.paths.merge(other.paths);
        self
    }

    /// The router, and the complete description of its routes.
    pub(super) fn into_parts(self) -> (Router<AppState>, utoipa::openapi::OpenApi) {
        let mut description = ApiDoc::openapi();
        description.paths = self.paths;
        (self.router, description)
    }
}

fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

/// The description as served and checked in: pretty-printed JSON (fields
/// in declaration order, components by name) with a final newline.
pub(super) fn to_json(description: &utoipa::openapi::OpenApi) -> String {
    // Serializing these plain data types cannot fail: every map key is a
    // string and no value is a float that JSON cannot hold.
    let mut json = description.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// The served description, made once at start.
#[derive(Debug, Clone)]
pub(super) struct DescriptionJson(pub(super) Bytes);

/// The OpenAPI 3.1 description of this API.
///
/// It needs no token, like the health routes.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "This description, OpenAPI 3.1.", content_type = "application/json")),
)]
pub(super) async fn openapi_json(Extension(json): Extension<DescriptionJson>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json.0).into_response()
}

/// The parts of the description that are not paths: title, tags, the
/// security scheme, the shared error responses and the schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "loketd",
        description = "The HTTP/JSON API of the Loket daemon: route customer messages, \
            manage agents and conversations, look up stock, score text, follow decisions \
            on an event stream.\n\n\
            Every `/v1` route needs `Authorization: Bearer <token>`; the token names the \
            tenant, and nothing of another tenant is visible. Health, metrics, this \
            description and the operations page need none.\n\n\
            Conversation, customer and agent ids are the platform's own: strings of 1 to \
            128 bytes without control characters, or non-negative integers meaning their \
            decimal string. Answers carry them as strings.\n\n\
            Every error, on every route, is `{\"error\": {\"code\", \"message\"}}` with a \
            stable code; besides the responses each operation lists, any route can answer \
            404 `not_found` (no such route), 405 `method_not_allowed`, 408 `timeout` and \
            500 `internal`. See docs/loketd.md.",
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&Shared),
    components(schemas(
        ErrorBody,
        MessageBody,
        BatchBody,
        MessageAnswer,
        BatchAnswer,
        schema::AgentLine,
        AgentUpdate,
        AgentJson,
        AgentPage,
        Removed,
        ConversationJson,
        ConversationPage,
        Closed,
        TransferBody,
        Transferred,
        ReplyBody,
        Replied,
        OrderBody,
        Ordered,
        OfferBody,
        OfferAnswered,
        Queues,
        Erased,
        SearchAnswer,
        StockBody,
        ScoreBody,
        ScoreAnswer,
        StatsAnswer,
        ClusterAnswer,
        TenantPlace,
        crate::cluster::NodeAddress,
        Health,
        Gap,
        schema::Event,
        WebhookList,
        crate::webhooks::EndpointStatus,
        DeadLetterList,
        DeadLetterJson,
        RedeliverBody,
        Redelivery,
    )),
    tags(
        (name = "messages", description = "Score and route customer messages."),
        (name = "agents", description = "Register, list, change and remove agents."),
        (name = "conversations", description = "Read, list, close, transfer conversations; answer offers; the backlog; erase a customer."),
        (name = "reports", description = "Replies and orders in; reply times, SLAs and conversions out."),
        (name = "catalog", description = "Stock lookup and updates; scoring without routing."),
        (name = "events", description = "The tenant's decisions and state changes as Server-Sent Events."),
        (name = "webhooks", description = "The tenant's webhook endpoints, their dead letters and redelivery."),
        (name = "health", description = "Liveness, readiness, stats, Prometheus metrics and this description."),
        (name = "console", description = "The operations page and its files."),
    ),
)]
struct ApiDoc;

/// Adds the bearer scheme and the error responses, one per status.
struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant's token (`tokens` in its `[[tenants]]` table): it names the \
                         tenant. Compared by SHA-256 digest in constant time.",
                    ))
                    .build(),
            ),
        );
        for &(name, status) in ERROR_RESPONSES {
            let codes: Vec<_> = ERROR_CODES.iter().filter(|code| code.status == status).collect();
            let description = codes
                .iter()
                .map(|code| format!("`{}`: {}", code.code, code.when))
                .collect::<Vec<_>>()
                .join("; ");
            let example = codes.first().map(
                |code| serde_json::json!({"error": {"code": code.code, "message": code.example}}),
            );
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .example(example)
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build();
            components.responses.insert(name.to_owned(), RefOr::T(response));
        }
    }
}

/// An error code: its status, when it is given, and an example message.
#[derive(Debug)]
struct ErrorCode {
    code: &'static str,
    status: u16,
    when: &'static str,
    example: &'static str,
}

/// The stable error codes, as docs/loketd.md lists them.
const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode {
        code: "bad_json",
        status: 400,
        when: "the body is not JSON",
        example: "the body is not JSON: EOF while parsing an object at line 1 column 1",
    },
    ErrorCode {
        code: "bad_path",
        status: 400,
        when: "the id in the path is not a valid id",
        example: "the id in the path: an id is at most 128 bytes",
    },
    ErrorCode {
        code: "bad_query",
        status: 400,
        when: "a query parameter is missing, unknown or of the wrong type",
        example: "Failed to deserialize query string: missing field `q`",
    },
    ErrorCode {
        code: "bad_request",
        status: 400,
        when: "any other malformed request the HTTP layer refuses",
        example: "400 Bad Request",
    },
    ErrorCode {
        code: "unauthorized",
        status: 401,
        when: "no `Authorization` header, not `Bearer <token>`, or an unknown token",
        example: "unknown token",
    },
    ErrorCode {
        code: "not_found",
        status: 404,
        when: "no agent, open conversation or sku with that id",
        example: "no agent \"dirk\"",
    },
    ErrorCode {
        code: "no_catalog",
        status: 404,
        when: "the tenant has no catalog",
        example: "this tenant has no catalog",
    },
    ErrorCode {
        code: "conflict",
        status: 409,
        when: "the request does not fit the conversation's state (no pending offer for the \
               agent; a transfer to an agent who cannot take the conversation)",
        example: "conversation \"c-1\" has no pending offer for agent \"dirk\"",
    },
    ErrorCode {
        code: "body_too_large",
        status: 413,
        when: "the body is larger than `max_body_bytes`",
        example: "the body is too large",
    },
    ErrorCode {
        code: "batch_too_large",
        status: 413,
        when: "more messages than `max_batch_messages`",
        example: "10001 messages; at most 10000 per batch",
    },
    ErrorCode {
        code: "unsupported_media_type",
        status: 415,
        when: "a `Content-Type` other than JSON (none is fine)",
        example: "send JSON (Content-Type: application/json), not \"text/plain\"",
    },
    ErrorCode {
        code: "invalid",
        status: 422,
        when: "JSON that parses, but a field is missing, unknown or wrong, or a value is out \
               of range; the message names the field",
        example: "messages[1].customer_id: an id may not be a negative number at line 1 column 135",
    },
    ErrorCode {
        code: "unknown_skill",
        status: 422,
        when: "a message asks for a skill the tenant has never seen, and `allow_new_skills` \
               is off",
        example: "skills.salse: no agent has skill \"salse\" (set allow_new_skills to route to \
                  skills no agent has yet)",
    },
    ErrorCode {
        code: "rate_limited",
        status: 429,
        when: "over the tenant's `rate_limit`",
        example: "rate limit exceeded: at most 1000 messages per second",
    },
    ErrorCode {
        code: "journal_unavailable",
        status: 503,
        when: "the tenant's journal cannot be written; it accepts nothing more",
        example: "journal unavailable: No space left on device (os error 28)",
    },
    ErrorCode {
        code: "shutting_down",
        status: 503,
        when: "the daemon is shutting down",
        example: "shutting down",
    },
];

/// Every status an operation may list, with its shared response's name.
const ERROR_RESPONSES: &[(&str, u16)] = &[
    ("BadRequest", 400),
    ("Unauthorized", 401),
    ("NotFound", 404),
    ("Conflict", 409),
    ("TooLarge", 413),
    ("UnsupportedMediaType", 415),
    ("Unprocessable", 422),
    ("RateLimited", 429),
    ("Unavailable", 503),
];

/// Markers naming the shared error responses in `responses(...)`.
macro_rules! error_responses {
    ($($name:ident = $status:literal),* $(,)?) => {$(
        #[doc = concat!("The shared ", stringify!($status), " response.")]
        #[derive(Debug)]
        pub(super) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                BTreeMap::from([(
                    stringify!($status).to_owned(),
                    RefOr::Ref(Ref::from_response_name(stringify!($name))),
                )])
            }
        }
    )*};
}

error_responses! {
    BadRequest = 400,
    Unauthorized = 401,
    NotFound = 404,
    Conflict = 409,
    TooLarge = 413,
    UnsupportedMediaType = 415,
    Unprocessable = 422,
    RateLimited = 429,
    Unavailable = 503,
}

/// Mirrors of other crates' types, for their schemas only: each has the
/// serde shape of the type it names. They are never built.
#[allow(dead_code)]
pub(super) mod schema {
    use super::*;

    /// An id as a caller sends it: a string of 1 to 128 bytes without
    /// control characters, or a non-negative integer meaning its decimal
    /// string. Answers always carry ids as strings.
    #[derive(Debug)]
    pub(crate) struct Id;

    impl utoipa::PartialSchema for Id {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(loket_ids::MAX_ID_BYTES)),
                )
                .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                .description(Some(
                    "The platform's own id: a string of 1 to 128 bytes without control \
                     characters, or a non-negative integer meaning its decimal string.",
                ))
                .examples([serde_json::json!("c-1")])
                .into()
        }
    }

    impl utoipa::ToSchema for Id {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Id")
        }
    }

    /// A channel.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub(crate) enum Channel {
        Chat,
        Whatsapp,
        Messenger,
        Sms,
        Email,
        Voice,
    }

    /// A message's language: `nl` or `en`; detected when left out.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub(crate) enum MessageLanguage {
        Nl,
        En,
    }

    /// A scored text's language: `nl`, `en` or `und` (undetermined).
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub(crate) enum ScoreLanguage {
        Nl,
        En,
        Und,
    }

    /// `human` or `bot`.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub(crate) enum AgentKind {
        Human,
        Bot,
    }

    /// An agent's presence.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum Presence {
        /// Takes new and existing conversations.
        Available,
        /// Takes nothing; its conversations are re-routed.
        Away,
        /// Logged out: takes nothing; its conversations are re-routed.
        Offline,
        /// Missed too many offers: keeps its conversations, gets no new ones.
        NotResponding,
    }

    /// A conversation's state.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum ConversationState {
        Bot,
        Queued,
        Offered,
        Assigned,
        WrapUp,
        Closed,
    }

    /// What triggered an escalation from bot to human.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum EscalationTrigger {
        BuyingIntent,
        HumanRequest,
        Doubt,
        Complaint,
    }

    /// An agent's capacity: conversations at once per channel, and overall.
    #[derive(Debug, ToSchema)]
    pub(crate) struct Capacity {
        chat: u32,
        whatsapp: u32,
        messenger: u32,
        sms: u32,
        email: u32,
        voice: u32,
        /// Overall cap across channels.
        total: u32,
    }

    /// Capacity as a body gives it: per channel 0 to 255 (left out: 0);
    /// `total` 0 to 65,535 (left out: the channels' sum).
    #[derive(Debug, ToSchema)]
    pub(crate) struct CapacityLine {
        chat: Option<i64>,
        whatsapp: Option<i64>,
        messenger: Option<i64>,
        sms: Option<i64>,
        email: Option<i64>,
        voice: Option<i64>,
        total: Option<i64>,
    }

    /// Conversations an agent holds, per channel.
    #[derive(Debug, ToSchema)]
    pub(crate) struct ChannelLoad {
        chat: u32,
        email: u32,
        messenger: u32,
        sms: u32,
        voice: u32,
        whatsapp: u32,
    }

    /// An agent to register: an agents.jsonl line (docs/formats.md).
    #[derive(Debug, ToSchema)]
    #[schema(example = json!({
        "id": "dirk", "kind": "human", "skills": {"sales": 6, "service": 4},
        "languages": ["nl", "en"], "capacity": {"chat": 2, "whatsapp": 3, "total": 4},
        "presence": "available", "team": "sales"
    }))]
    pub(crate) struct AgentLine {
        /// The agent's id.
        id: Id,
        /// `human` (default) or `bot`.
        #[serde(default)]
        kind: AgentKind,
        /// Skill name to proficiency, 1 to 10.
        #[serde(default)]
        skills: BTreeMap<String, i64>,
        /// Language codes, e.g. `["nl", "en"]`.
        #[serde(default)]
        languages: Vec<String>,
        /// Capacity; left out, the router's default (chat 3, WhatsApp 5,
        /// Messenger 5, SMS 5, email 8, voice 1, total 10).
        capacity: Option<CapacityLine>,
        /// Presence; left out, `available`.
        presence: Option<Presence>,
        /// A label.
        team: Option<String>,
        /// A label of agents files; `loketd` does not use it.
        tenant: Option<String>,
    }

    /// How a catalog hit matched: the least direct way any query word did.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub(crate) enum MatchKind {
        Exact,
        Latin,
        Synonym,
        Compound,
        Fuzzy,
    }

    /// A catalog match with its stock at the time of the search.
    #[derive(Debug, ToSchema)]
    pub(crate) struct Hit {
        sku: String,
        name: String,
        /// Relevance; comparable within one query only.
        score: f64,
        stock: i64,
        /// `stock > 0`.
        in_stock: bool,
        /// Price in cents, if known.
        price_cents: Option<u64>,
        matched: MatchKind,
    }

    /// The router's counts.
    #[derive(Debug, ToSchema)]
    pub(crate) struct RouterStats {
        /// Registered agents.
        agents: usize,
        /// Conversations the router holds (open, queued or in wrap-up).
        conversations: usize,
        /// Conversations waiting in the backlog.
        queued: usize,
        /// Timers pending.
        timers: usize,
    }

    /// What an erasure removed.
    #[derive(Debug, ToSchema)]
    pub(crate) struct ErasureReport {
        /// The customer.
        customer: String,
        /// Conversations erased from memory.
        conversations: Vec<String>,
        /// Retained events about them removed from the event stream.
        events_removed: usize,
        /// Journal segment files deleted.
        journal_segments_removed: usize,
        /// Older snapshot files deleted.
        snapshots_removed: usize,
        /// Events about them removed from the webhook outbox and dead
        /// letters.
        webhook_events_removed: usize,
        /// The snapshot that now holds the tenant's state.
        snapshot_lsn: u64,
    }

    /// Why a conversation went to an agent.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum AssignReason {
        Sticky,
        Affinity,
        /// With `strategy`.
        SkillMatch,
        Reassignment,
        Escalation,
        /// With `step`.
        Overflow,
        BotFirst,
        AfterHours,
        Transfer,
    }

    /// The strategy that picked an agent (`skill_match`).
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum Strategy {
        LeastLoaded,
        LongestIdle,
        MostProficient,
        RoundRobin,
    }

    /// Why a conversation waits.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum QueueReason {
        NoEligibleAgent,
        WaitingForPreferredAgent,
        OutsideBusinessHours,
        Escalation,
        Reassignment,
        OfferNotTaken,
        AlreadyQueued,
    }

    /// What happened, by `type`, with that type's fields.
    #[derive(Debug, ToSchema)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub(crate) enum EventKind {
        /// The conversation is now held by `agent`.
        Assigned {
            reason: AssignReason,
            /// With `skill_match`.
            #[schema(nullable = false)]
            strategy: Option<Strategy>,
            /// With `overflow`: the step (0-based).
            #[schema(nullable = false)]
            step: Option<u8>,
            /// How long it waited in the queue.
            waited_ms: u64,
        },
        /// Offer mode: offered to `agent`, capacity reserved.
        Offered {
            reason: AssignReason,
            /// With `skill_match`.
            #[schema(nullable = false)]
            strategy: Option<Strategy>,
            /// With `overflow`: the step (0-based).
            #[schema(nullable = false)]
            step: Option<u8>,
            /// The offer lapses then, ms since the Unix epoch.
            expires_at: u64,
        },
        /// The agent accepted an offer.
        OfferAccepted,
        /// The agent declined an offer.
        OfferDeclined,
        /// An offer lapsed.
        OfferExpired,
        /// The conversation waits.
        Queued {
            reason: QueueReason,
            /// Conversations needing the same kind of agent ahead of it.
            position: u32,
            /// Its priority in points, before aging.
            priority: u32,
        },
        /// Requirements widened while waiting.
        OverflowStep {
            /// The step (0-based).
            step: u8,
        },
        /// A bot conversation is escalating to a human.
        Escalated { trigger: EscalationTrigger },
        /// A required skill group is closed now (`skill_name` names it).
        OutsideBusinessHours {
            /// The skill's number.
            skill: u16,
        },
        /// The conversation closed; capacity returns after wrap-up.
        Closed,
        /// Wrap-up ended; the agent's capacity is free.
        Released,
        /// The agent missed too many offers and gets no new work.
        AgentNotResponding,
        /// The conversation was erased with its customer's data.
        Erased,
        /// A reply target is near: `warning_permille` of it has passed
        /// without a person's reply (`at` is that instant).
        SlaWarning {
            /// `first_reply` or `next_reply`.
            clock: SlaClock,
            /// The target, ms.
            target_ms: u64,
        },
        /// A reply target was missed (`at`: target + 1 ms).
        SlaBreached {
            /// `first_reply` or `next_reply`.
            clock: SlaClock,
            /// The target, ms.
            target_ms: u64,
        },
    }

    /// Which reply clock an SLA event is about.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum SlaClock {
        /// A person's first reply.
        FirstReply,
        /// A next reply.
        NextReply,
    }

    /// Which requirement nobody meets.
    #[derive(Debug, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum WhyCode {
        NoAgents,
        NoSkill,
        NoLanguage,
        Unavailable,
        AtCapacity,
        Declined,
    }

    /// For a conversation that waits with `no_eligible_agent`: which
    /// requirement nobody meets.
    #[derive(Debug, ToSchema)]
    pub(crate) struct Why {
        code: WhyCode,
        /// For `no_skill`: the skill's name.
        #[schema(nullable = false)]
        skill: Option<String>,
        /// For `no_skill`: the proficiency asked for.
        #[schema(nullable = false)]
        level: Option<u8>,
        /// For `no_language`: the conversation's language.
        #[schema(nullable = false)]
        language: Option<String>,
        /// For `at_capacity`: the conversation's channel.
        #[schema(nullable = false)]
        channel: Option<Channel>,
        /// One sentence for people.
        message: String,
    }

    /// An event: a decision or a state change, as on the event stream
    /// (a decision line of docs/formats.md with `seq` for `line`).
    #[derive(Debug, ToSchema)]
    #[schema(example = json!({"seq": 2, "at": 1796610659944_u64, "conversation": "c-1",
        "agent": "dirk", "type": "assigned", "reason": "escalation", "waited_ms": 0}))]
    pub(crate) struct Event {
        /// Sequence number.
        seq: u64,
        /// When, ms since the Unix epoch (tenant clock).
        at: u64,
        /// The conversation, if the event is about one.
        #[schema(nullable = false)]
        conversation: Option<String>,
        /// The agent, if the event is about one.
        #[schema(nullable = false)]
        agent: Option<String>,
        #[serde(flatten)]
        kind: EventKind,
        /// For `outside_business_hours`: the skill group's name.
        #[schema(nullable = false)]
        skill_name: Option<String>,
        /// For `queued` with `no_eligible_agent`.
        #[schema(nullable = false)]
        why: Option<Why>,
    }
}

#[cfg(test)]
mod tests {
    use loket_router::{QueueReason, Strategy};
    use serde_json::Value;
    use utoipa::PartialSchema;

    use super::*;

    /// The names a mirror enum's schema allows.
    fn allowed<T: PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let names = match schema.get("enum") {
            Some(names) => names.as_array().unwrap().clone(),
            None => schema["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|one| one["enum"].as_array().unwrap().clone())
                .collect(),
        };
        names.iter().map(|name| name.as_str().unwrap().to_owned()).collect()
    }

    /// The serde names of `values`, which the exhaustive matches below
    /// keep complete: a new variant fails to compile until listed.
    fn names<T: Serialize>(values: &[T]) -> Vec<String> {
        values
            .iter()
            .map(|value| match serde_json::to_value(value).unwrap() {
                Value::String(name) => name,
                other => panic!("{other} is not a name"),
            })
            .collect()
    }

    #[test]
    fn mirror_enums_have_the_real_types_names() {
        let presences = [Presence::Available, Presence::Away, Presence::Offline, {
            match Presence::NotResponding {
                Presence::Available
                | Presence::Away
                | Presence::Offline
                | Presence::NotResponding => Presence::NotResponding,
            }
        }];
        let kinds = [AgentKind::Human, {
            match AgentKind::Bot {
                AgentKind::Human | AgentKind::Bot => AgentKind::Bot,
            }
        }];
        use ConversationState as S;
        let states = [S::Bot, S::Queued, S::Offered, S::Assigned, S::WrapUp, {
            match S::Closed {
                S::Bot | S::Queued | S::Offered | S::Assigned | S::WrapUp | S::Closed => S::Closed,
            }
        }];
        use EscalationTrigger as T;
        let triggers = [T::BuyingIntent, T::HumanRequest, T::Doubt, {
            match T::Complaint {
                T::BuyingIntent | T::HumanRequest | T::Doubt | T::Complaint => T::Complaint,
            }
        }];
        let strategies =
            [Strategy::LeastLoaded, Strategy::LongestIdle, Strategy::MostProficient, {
                match Strategy::RoundRobin {
                    Strategy::LeastLoaded
                    | Strategy::LongestIdle
                    | Strategy::MostProficient
                    | Strategy::RoundRobin => Strategy::RoundRobin,
                }
            }];
        use QueueReason as Q;
        let reasons = [
            Q::NoEligibleAgent,
            Q::WaitingForPreferredAgent,
            Q::OutsideBusinessHours,
            Q::Escalation,
            Q::Reassignment,
            Q::OfferNotTaken,
            {
                match Q::AlreadyQueued {
                    Q::NoEligibleAgent
                    | Q::WaitingForPreferredAgent
                    | Q::OutsideBusinessHours
                    | Q::Escalation
                    | Q::Reassignment
                    | Q::OfferNotTaken
                    | Q::AlreadyQueued => Q::AlreadyQueued,
                }
            },
        ];
        assert_eq!(allowed::<schema::Channel>(), names(&Channel::ALL));
        assert_eq!(allowed::<schema::Presence>(), names(&presences));
        assert_eq!(allowed::<schema::AgentKind>(), names(&kinds));
        assert_eq!(allowed::<schema::ConversationState>(), names(&states));
        assert_eq!(allowed::<schema::EscalationTrigger>(), names(&triggers));
        assert_eq!(allowed::<schema::Strategy>(), names(&strategies));
        assert_eq!(allowed::<schema::QueueReason>(), names(&reasons));
    }
}
