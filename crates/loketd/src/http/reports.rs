//! Measuring: `POST /v1/conversations/{id}/replies` and `.../orders` (the
//! platform tells what happened after routing) and `GET /v1/reports`
//! (reply times, SLAs and conversions per interval and group; the measures
//! are defined in `docs/reports.md`).

use loket_replay::At;
use loket_report::{Currency, Dimension, Interval, Money, Query as ReportQuery};

use super::*;

/// A reply to the customer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Reply)]
pub(super) struct ReplyBody {
    /// The agent (person or bot) who replied.
    #[schema(value_type = schema::Id)]
    pub(super) agent: Id,
    /// When it was sent: ms since the Unix epoch or RFC 3339; now when left
    /// out. A time before the last thing measured counts as that time.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2026-11-23T09:00:30Z")]
    pub(super) at: Option<At>,
}

/// A reply measured.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Replied {
    /// The conversation's id.
    #[schema(value_type = String)]
    pub(super) conversation: Id,
    /// The agent's id.
    #[schema(value_type = String)]
    pub(super) agent: Id,
    /// The tenant's event sequence number after it.
    pub(super) last_seq: u64,
}

/// Records that an agent (person or bot) sent the customer a message.
///
/// It stops the reply clocks: a person's first reply ends the first
/// response, a later one a next reply; a bot's reply never stops a
/// person's clock. 422 `invalid` for a closed conversation or a tenant
/// that does not measure.
#[utoipa::path(post, path = "/v1/conversations/{id}/replies", tag = "reports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation's id.", example = "c-1")),
    request_body(content = ReplyBody, example = json!({"agent": "7"})),
    responses(
        (status = 200, description = "Measured.", body = Replied,
            example = json!({"conversation": "c-1", "agent": "7", "last_seq": 23})),
        BadRequest, Unauthorized, NotFound, TooLarge, UnsupportedMediaType, Unprocessable,
        Unavailable,
    ))]
pub(super) async fn post_reply(
    Authed(tenant): Authed,
    PathId(id): PathId,
    Body(body): Body<ReplyBody>,
) -> Result<Json<Replied>, ApiError> {
    body.agent.check().map_err(|e| ApiError::invalid(format!("agent: {e}")))?;
    let at_ms = millis(body.at.as_ref())?;
    let command = Command::Reply { conversation: id.clone(), agent: body.agent.clone(), at_ms };
    let ack = tenant.apply(command).await?;
    Ok(Json(Replied { conversation: id, agent: body.agent, last_seq: ack.last_seq }))
}

/// A purchase that followed the conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Order)]
pub(super) struct OrderBody {
    /// The order's value in major units (`49.95`), 0 or more.
    #[schema(example = 49.95)]
    pub(super) value: f64,
    /// Its ISO 4217 currency code.
    #[schema(example = "EUR")]
    pub(super) currency: String,
    /// When: ms since the Unix epoch or RFC 3339; now when left out.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2026-11-23T09:20:00Z")]
    pub(super) at: Option<At>,
}

/// An order measured.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Ordered {
    /// The conversation's id.
    #[schema(value_type = String)]
    pub(super) conversation: Id,
    /// The value, rounded to cents.
    pub(super) value: f64,
    /// The currency.
    pub(super) currency: String,
    /// The tenant's event sequence number after it.
    pub(super) last_seq: u64,
}

/// Records that the conversation led to a purchase.
///
/// Counts as the conversation's conversion while it is open and up to the
/// tenant's `order_window_ms` (default 1 h) after its close. 422 `invalid`
/// for a bad value or currency or a tenant that does not measure.
#[utoipa::path(post, path = "/v1/conversations/{id}/orders", tag = "reports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation's id.", example = "c-1")),
    request_body(content = OrderBody, example = json!({"value": 49.95, "currency": "EUR"})),
    responses(
        (status = 200, description = "Measured.", body = Ordered,
            example = json!({"conversation": "c-1", "value": 49.95, "currency": "EUR", "last_seq": 24})),
        BadRequest, Unauthorized, NotFound, TooLarge, UnsupportedMediaType, Unprocessable,
        Unavailable,
    ))]
pub(super) async fn post_order(
    Authed(tenant): Authed,
    PathId(id): PathId,
    Body(body): Body<OrderBody>,
) -> Result<Json<Ordered>, ApiError> {
    let currency = Currency::parse(&body.currency).ok_or_else(|| {
        ApiError::invalid(format!("currency {:?} is not a three-letter code", body.currency))
    })?;
    let money =
        Money::from_decimal(body.value, currency).filter(|money| money.minor >= 0).ok_or_else(
            || ApiError::invalid(format!("value {} is not an amount of 0 or more", body.value)),
        )?;
    let at_ms = millis(body.at.as_ref())?;
    let command = Command::Order {
        conversation: id.clone(),
        value_minor: money.minor,
        currency: currency.as_str().to_owned(),
        at_ms,
    };
    let ack = tenant.apply(command).await?;
    Ok(Json(Ordered {
        conversation: id,
        value: money.minor as f64 / 100.0,
        currency: currency.as_str().to_owned(),
        last_seq: ack.last_seq,
    }))
}

fn millis(at: Option<&At>) -> Result<Option<u64>, ApiError> {
    at.map(|at| {
        at.millis()
            .ok_or_else(|| ApiError::invalid("at: not ms since the Unix epoch or an RFC 3339 time"))
    })
    .transpose()
}

/// What to report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ReportParams {
    /// Start (ms since the Unix epoch or RFC 3339), widened to its
    /// interval's start; default: one day before `to`.
    #[param(value_type = Option<String>, example = "2026-11-23T00:00:00Z")]
    pub(super) from: Option<At>,
    /// End, exclusive (ms or RFC 3339); default: now.
    #[param(value_type = Option<String>, example = "2026-11-24T00:00:00Z")]
    pub(super) to: Option<At>,
    /// Row length: `15m`, `1h` (default) or `1d`, aligned to UTC.
    #[param(example = "1h")]
    pub(super) interval: Option<String>,
    /// Dimensions, comma-separated, each grouped on its own: `channel`,
    /// `skill` (the queue), `team`, `agent`, `language`, `intent`,
    /// `buying_intent`, `tier`; default: totals only.
    #[param(example = "channel,team")]
    pub(super) group_by: Option<String>,
    /// `json` (default) or `csv`.
    #[param(example = "json")]
    pub(super) format: Option<String>,
}

/// Reply times, SLAs and conversions per interval and group.
///
/// JSON: `{"from", "to", "interval", "intervals": [...], "groups": [...],
/// "totals": {...}}` with the measures of `docs/reports.md`; CSV: one
/// column per measure. Measured as things happen, kept in snapshots and
/// rebuilt by journal replay. 404 `reports_off` when the tenant does not
/// measure; 400 `bad_query` for a bad parameter.
#[utoipa::path(get, path = "/v1/reports", tag = "reports",
    security(("bearer" = [])),
    params(ReportParams),
    responses(
        (status = 200, description = "The report.", content(
            (serde_json::Value = "application/json", example = json!({"from": 1795392000000_u64,
                "to": 1795478400000_u64, "interval": "1h", "intervals": [], "groups": [],
                "totals": {"offered": 0, "answered": 0, "abandoned": 0, "service_level": null}})),
            (String = "text/csv"),
        )),
        BadRequest, Unauthorized, NotFound, Unavailable,
    ))]
pub(super) async fn get_reports(
    Authed(tenant): Authed,
    QueryOf(params): QueryOf<ReportParams>,
) -> Result<Response, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", message);
    let Some(metering) = tenant.metering().cloned() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "reports_off",
            "this tenant does not measure ([tenants.reports] enabled = false)",
        ));
    };
    let time = |at: &At, name: &str| {
        at.millis()
            .ok_or_else(|| bad(format!("{name}: not ms since the Unix epoch or an RFC 3339 time")))
    };
    let to = match &params.to {
        Some(at) => time(at, "to")?,
        None => crate::tenant::wall_ms().saturating_add(1),
    };
    let from = match &params.from {
        Some(at) => time(at, "from")?,
        None => to.saturating_sub(86_400_000),
    };
    let interval: Interval = match params.interval.as_deref() {
        None => Interval::Hour,
        Some(text) => text.parse().map_err(|e: loket_report::QueryError| bad(e.to_string()))?,
    };
    let group_by = match params.group_by.as_deref() {
        None | Some("") => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|name| name.trim().parse::<Dimension>())
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?,
    };
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(bad(format!("format {other:?} is not json or csv"))),
    };
    let query = ReportQuery { from, to, interval, group_by };
    // A report merges every retained slot in range: milliseconds, off the
    // async workers. Measuring, then the ids: the sequencer's lock order.
    let report = tokio::task::spawn_blocking(move || {
        let metering = metering.read();
        let ids = tenant.ids().read();
        metering.report(&query, |agent| ids.agents.name(agent.0).map(|name| name.to_string()))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
    .map_err(|e| bad(e.to_string()))?;
    Ok(if csv {
        ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], report.to_csv()).into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], report.to_json()).into_response()
    })
}
