//! The tasks that deliver: per endpoint, its lanes and a redelivery task;
//! per tenant, a flusher that writes the endpoints' states and trims the
//! outbox.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Entry;
use super::endpoint::{DeadLetter, Endpoint};
use super::sender::{Outcome, Sender};
use super::store::{Next, WebhookStore};

/// How often endpoint states are written and the outbox trimmed.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// The running delivery tasks of every tenant with webhooks.
#[derive(Debug, Default)]
pub struct Deliveries {
    tasks: Vec<JoinHandle<()>>,
    flushers: Vec<JoinHandle<()>>,
}

impl Deliveries {
    /// Waits for the tasks to end (after shutdown was signalled): attempts
    /// in flight are abandoned (they are made again after a restart), then
    /// every endpoint's state is written.
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
        for flusher in self.flushers {
            let _ = flusher.await;
        }
    }
}

/// Per-endpoint metric handles.
struct EndpointMetrics {
    delivered: Counter,
    failed: Counter,
    dead_lettered: Counter,
    gone: Counter,
    attempt: Histogram,
    pending: Gauge,
    oldest_pending: Gauge,
    dead_letters: Gauge,
    enabled: Gauge,
}

impl EndpointMetrics {
    fn new(tenant: &str, endpoint: &str) -> EndpointMetrics {
        let labels = [("tenant", tenant.to_owned()), ("endpoint", endpoint.to_owned())];
        let outcome = |outcome: &'static str| {
            let mut labels = labels.to_vec();
            labels.push(("outcome", outcome.to_owned()));
            metrics::counter!("loketd_webhook_attempts_total", &labels)
        };
        EndpointMetrics {
            delivered: outcome("delivered"),
            failed: outcome("failed"),
            gone: outcome("gone"),
            dead_lettered: metrics::counter!("loketd_webhook_dead_lettered_total", &labels),
            attempt: metrics::histogram!("loketd_webhook_attempt_seconds", &labels),
            pending: metrics::gauge!("loketd_webhook_pending_events", &labels),
            oldest_pending: metrics::gauge!("loketd_webhook_oldest_pending_seconds", &labels),
            dead_letters: metrics::gauge!("loketd_webhook_dead_letters", &labels),
            enabled: metrics::gauge!("loketd_webhook_enabled", &labels),
        }
    }
}

/// Starts delivering the events of every store, until `shutdown` turns
/// true.
pub fn start(stores: &[Arc<WebhookStore>], shutdown: &watch::Receiver<bool>) -> Deliveries {
    crate::metrics::prometheus();
    let mut deliveries = Deliveries::default();
    for store in stores {
        let mut metrics = Vec::new();
        for endpoint in store.endpoints() {
            let handles = Arc::new(EndpointMetrics::new(store.tenant(), &endpoint.name));
            for lane in 0..endpoint.config.lanes.max(1) as usize {
                let lane = Lane {
                    store: store.clone(),
                    endpoint: endpoint.clone(),
                    lane,
                    metrics: handles.clone(),
                    shutdown: shutdown.clone(),
                };
                deliveries.tasks.push(tokio::spawn(lane.run()));
            }
            let redelivery = Lane {
                store: store.clone(),
                endpoint: endpoint.clone(),
                lane: usize::MAX,
                metrics: handles.clone(),
                shutdown: shutdown.clone(),
            };
            deliveries.tasks.push(tokio::spawn(redelivery.redeliver()));
            metrics.push((endpoint.clone(), handles));
        }
        deliveries.flushers.push(tokio::spawn(flusher(store.clone(), metrics, shutdown.clone())));
    }
    deliveries
}

async fn flusher(
    store: Arc<WebhookStore>,
    metrics: Vec<(Arc<Endpoint>, Arc<EndpointMetrics>)>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stopping = *shutdown.borrow();
        if let Err(error) = store.flush() {
            tracing::error!(tenant = store.tenant(), %error, "writing webhook state");
        }
        let now_ms = crate::tenant::wall_ms();
        for (endpoint, handles) in &metrics {
            let (pending, oldest) = store.pending(endpoint);
            handles.pending.set(pending as f64);
            handles
                .oldest_pending
                .set(oldest.map_or(0.0, |at| now_ms.saturating_sub(at) as f64 / 1e3));
            handles.dead_letters.set(endpoint.dead_letter_count() as f64);
            handles.enabled.set(if endpoint.disabled().is_none() { 1.0 } else { 0.0 });
        }
        if stopping {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(FLUSH_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

struct Lane {
    store: Arc<WebhookStore>,
    endpoint: Arc<Endpoint>,
    lane: usize,
    metrics: Arc<EndpointMetrics>,
    shutdown: watch::Receiver<bool>,
}

/// How delivering one event ended.
enum Ended {
    Delivered,
    Dead { attempts: u32, error: String },
    Disabled,
    Shutdown,
}

impl Lane {
    fn sender(&self) -> Option<Sender> {
        let config = &self.endpoint.config;
        match Sender::new(&config.url, &config.secret, Duration::from_millis(config.timeout_ms)) {
            Ok(sender) => Some(sender),
            Err(error) => {
                tracing::error!(endpoint = %self.endpoint.name, %error, "webhook endpoint unusable");
                None
            }
        }
    }

    /// Waits until `wait` passes, the endpoint is woken, or shutdown; false
    /// on shutdown.
    async fn pause(
        &mut self,
        wait: Option<Duration>,
        updates: Option<&mut watch::Receiver<u64>>,
    ) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        let sleep = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        let spooled = async {
            match updates {
                Some(updates) => {
                    let _ = updates.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = spooled => {}
            () = self.endpoint.wake.notified() => {}
            _ = self.shutdown.changed() => return !*self.shutdown.borrow(),
        }
        true
    }

    async fn run(mut self) {
        let Some(mut sender) = self.sender() else { return };
        let mut updates = self.store.subscribe();
        let mut cursor = self.endpoint.cursor(self.lane);
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            if self.endpoint.disabled().is_some() {
                if !self.pause(Some(Duration::from_secs(1)), None).await {
                    return;
                }
                continue;
            }
            updates.borrow_and_update();
            match self.store.next_for(&self.endpoint, self.lane, cursor) {
                Next::Entry(entry) => match self.deliver(&mut sender, &entry).await {
                    Ended::Delivered => {
                        cursor = entry.seq + 1;
                        self.endpoint.advance(self.lane, cursor);
                    }
                    Ended::Dead { attempts, error } => {
                        cursor = entry.seq + 1;
                        self.metrics.dead_lettered.increment(1);
                        tracing::warn!(tenant = self.store.tenant(), endpoint = %self.endpoint.name, seq = entry.seq, attempts, %error, "webhook event dead-lettered");
                        self.endpoint
                            .bury(Some(self.lane), letter(&self.store, &entry, attempts, error));
                    }
                    Ended::Disabled => {}
                    Ended::Shutdown => return,
                },
                Next::Skip(to) => {
                    cursor = to;
                    self.endpoint.advance(self.lane, to);
                }
                Next::Wait(to) => {
                    cursor = to;
                    self.endpoint.advance(self.lane, to);
                    if !self.pause(None, Some(&mut updates)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Attempts `entry` on the retry schedule.
    async fn deliver(&mut self, sender: &mut Sender, entry: &Entry) -> Ended {
        let id = entry.message_id(self.store.tenant());
        let mut retry_after = None;
        let mut last_error = String::new();
        let schedule = self.endpoint.config.retry_schedule_ms.clone();
        for (attempt, delay_ms) in schedule.iter().enumerate() {
            let wait = retry_after.take().unwrap_or(Duration::from_millis(*delay_ms));
            if !wait.is_zero() && !self.sleep(wait).await {
                return Ended::Shutdown;
            }
            if self.endpoint.disabled().is_some() {
                return Ended::Disabled;
            }
            let started = std::time::Instant::now();
            let outcome = tokio::select! {
                outcome = sender.send(&id, &entry.body) => outcome,
                _ = self.shutdown.changed() => return Ended::Shutdown,
            };
            self.metrics.attempt.record(started.elapsed().as_secs_f64());
            match outcome {
                Outcome::Delivered => {
                    self.metrics.delivered.increment(1);
                    return Ended::Delivered;
                }
                Outcome::Gone => {
                    self.metrics.gone.increment(1);
                    self.endpoint.disable(format!(
                        "answered 410 Gone to {id} on {}",
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ));
                    return Ended::Disabled;
                }
                Outcome::Failed { error, after } => {
                    self.metrics.failed.increment(1);
                    tracing::debug!(endpoint = %self.endpoint.name, %id, attempt, %error, "webhook attempt failed");
                    self.endpoint.failed(&error);
                    last_error = error;
                    // The endpoint's wish, but never sooner than the schedule.
                    let next = schedule.get(attempt + 1).map(|ms| Duration::from_millis(*ms));
                    retry_after = after.map(|after| after.max(next.unwrap_or_default()));
                }
            }
        }
        Ended::Dead { attempts: schedule.len() as u32, error: last_error }
    }

    /// Sleeps for `wait` unless shutdown comes first; false on shutdown.
    async fn sleep(&mut self, wait: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            _ = self.shutdown.changed() => !*self.shutdown.borrow(),
        }
    }

    /// Redelivers the dead letters queued through the API: one attempt
    /// each; one that fails again goes back to the list.
    async fn redeliver(mut self) {
        let Some(mut sender) = self.sender() else { return };
        loop {
            while let Some(mut dead) = self.endpoint.next_redelivery() {
                let body = bytes::Bytes::from(dead.body.clone().into_bytes());
                let outcome = tokio::select! {
                    outcome = sender.send(&dead.id, &body) => outcome,
                    _ = self.shutdown.changed() => {
                        self.endpoint.bury(None, dead);
                        return;
                    }
                };
                match outcome {
                    Outcome::Delivered => self.metrics.delivered.increment(1),
                    Outcome::Gone | Outcome::Failed { .. } => {
                        dead.attempts += 1;
                        dead.failed_at_ms = crate::tenant::wall_ms();
                        dead.error = match outcome {
                            Outcome::Failed { error, .. } => error,
                            _ => "HTTP 410".to_owned(),
                        };
                        self.metrics.failed.increment(1);
                        self.endpoint.bury(None, dead);
                    }
                }
            }
            if !self.pause(Some(Duration::from_secs(1)), None).await {
                return;
            }
        }
    }
}

fn letter(store: &WebhookStore, entry: &Entry, attempts: u32, error: String) -> DeadLetter {
    DeadLetter {
        id: entry.message_id(store.tenant()),
        seq: entry.seq,
        kind: entry.type_name().to_owned(),
        conversation: entry.conversation,
        attempts,
        error,
        failed_at_ms: crate::tenant::wall_ms(),
        body: String::from_utf8_lossy(&entry.body).into_owned(),
    }
}
