//! `GET /v1/events`: the tenant's event stream as Server-Sent Events.

use super::*;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// The first sequence number to send. Without it, the stream resumes
    /// after `Last-Event-ID` if sent, else starts with the next event.
    #[serde(default)]
    #[param(example = 1)]
    pub(super) from: Option<u64>,
}

/// The data of a `gap` event: events from `from` up to `oldest` are no
/// longer kept.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Gap {
    /// The sequence number asked for.
    pub(super) from: u64,
    /// The oldest still kept: the next event sent.
    pub(super) oldest: u64,
}

/// The tenant's event stream, as Server-Sent Events.
///
/// Every decision and state change, published once durable, each with
/// `id:` its sequence number and as data an `Event` in JSON. Without
/// `from`, the stream resumes after `Last-Event-ID` if sent, else starts
/// with the next event. A `from` older than what is kept gives one `gap`
/// event (data: a `Gap`) first. The stream ends when the daemon shuts
/// down; the request timeout does not apply to it.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    security(("bearer" = [])),
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence number (when `from` is left out)."),
    ),
    responses(
        (status = 200, description = "A stream of `text/event-stream` events; each `data:` line is an `Event` (a `gap` event's is a `Gap`).",
            content_type = "text/event-stream", body = schema::Event,
            example = "id: 1\ndata: {\"seq\":1,\"at\":1796610659944,\"conversation\":\"c-1\",\"type\":\"escalated\",\"trigger\":\"human_request\"}\n\n"),
        BadRequest, Unauthorized,
    ))]
pub(super) async fn events(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryOf(query): QueryOf<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let from = match (query.from, last_event_id) {
        (Some(from), _) => from,
        (None, Some(last)) => last.saturating_add(1),
        (None, None) => tenant.events().latest() + 1,
    };
    let log = tenant.events().clone();
    let updates = log.subscribe();
    let shutdown = state.shutdown.clone();
    struct Cursor {
        tenant: Arc<Tenant>,
        log: Arc<crate::events::EventLog>,
        updates: watch::Receiver<u64>,
        shutdown: watch::Receiver<bool>,
        next: u64,
        buffer: std::collections::VecDeque<SseEvent>,
        scratch: Vec<SeqEvent>,
    }
    let cursor = Cursor {
        tenant,
        log,
        updates,
        shutdown,
        next: from,
        buffer: std::collections::VecDeque::new(),
        scratch: Vec::new(),
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.buffer.pop_front() {
                return Some((Ok(event), cursor));
            }
            if *cursor.shutdown.borrow() {
                return None;
            }
            cursor.scratch.clear();
            let read = cursor.log.read_from(cursor.next, 512, &mut cursor.scratch);
            if read.oldest > cursor.next && cursor.next <= cursor.log.latest() {
                let gap = Gap { from: cursor.next, oldest: read.oldest };
                let data = serde_json::to_string(&gap).unwrap_or_default();
                cursor.buffer.push_back(SseEvent::default().event("gap").data(data));
            }
            {
                let router = cursor.tenant.pipeline().router();
                let ids = cursor.tenant.ids().read();
                for event in &cursor.scratch {
                    let json = EventJson::new(event, router, &ids);
                    let data = serde_json::to_string(&json).unwrap_or_default();
                    cursor
                        .buffer
                        .push_back(SseEvent::default().id(event.seq.to_string()).data(data));
                }
            }
            cursor.next = read.next;
            if !cursor.buffer.is_empty() {
                continue;
            }
            tokio::select! {
                changed = cursor.updates.changed() => if changed.is_err() { return None },
                _ = cursor.shutdown.changed() => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
