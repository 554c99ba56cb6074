//! A tenant: its state behind one sequencer thread, its journal and
//! snapshots, its event stream, rate limit and metrics.
//!
//! # How a command becomes durable
//!
//! Handlers (HTTP or binary, any thread) score messages, then send the
//! command to the tenant's sequencer over a channel. The sequencer applies
//! commands one at a time ([`TenantState::apply`]), appends each that
//! succeeded to the journal, and after a group (every command waiting, or
//! the fsync interval) syncs the journal once. Only then does it publish the
//! group's events and answer the handlers: an acknowledged command is on
//! disk, and no subscriber ever sees a decision a crash could take back.
//!
//! # Invariants
//!
//! - Only the sequencer thread changes a tenant's state or writes its files.
//! - On start, state = the latest snapshot + the journal after it, applied
//!   by the same code as live.
//! - A journal that cannot be written stops the tenant: every later command
//!   is refused (`journal_unavailable`), never acknowledged without a record.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use loket_catalog::{Catalog, Synonyms};
use loket_intent::Model;
use loket_journal::{Journal, JournalOptions, SnapshotStore};
use loket_pipeline::{Pipeline, SharedModel};
use loket_router::{ManualClock, Router, Timestamp};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::command::{Command, Record};
use crate::config::{Config, FsyncPolicy, TenantConfig};
use crate::demo;
use crate::events::EventLog;
use crate::metrics::TenantMetrics;
use crate::state::{Applied, ApplyError, SeqEvent, TenantSnapshot, TenantState};

/// Why a tenant refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The command does not apply (unknown agent, bad value, ...).
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Over the tenant's rate limit.
    #[error("rate limit exceeded: at most {0} messages per second")]
    RateLimited(u32),
    /// The journal cannot be written; nothing more is accepted.
    #[error("journal unavailable: {0}")]
    JournalUnavailable(String),
    /// The daemon is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// Start-up failed.
    #[error("tenant {tenant}: {message}")]
    Startup {
        /// The tenant.
        tenant: String,
        /// What went wrong.
        message: String,
    },
}

/// An acknowledged command.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// What it produced.
    pub applied: Applied,
    /// The tenant's event sequence number after it.
    pub last_seq: u64,
}

/// A confirmed erasure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ErasureReport {
    /// The customer.
    pub customer: u64,
    /// Conversations erased from memory.
    pub conversations: Vec<u64>,
    /// Retained events about them removed from the event stream.
    pub events_removed: usize,
    /// Journal segment files deleted (they held the customer's messages).
    pub journal_segments_removed: usize,
    /// Older snapshot files deleted.
    pub snapshots_removed: usize,
    /// The snapshot that now holds the tenant's state, without the customer.
    pub snapshot_lsn: u64,
}

type Reply<T> = oneshot::Sender<Result<T, TenantError>>;

enum Request {
    Apply { command: Command, ingest: Instant, reply: Reply<Ack> },
    Erase { customer: u64, reply: Reply<ErasureReport> },
    Snapshot { reply: Reply<u64> },
    Stop { reply: Reply<u64> },
}

/// One tenant; see the module docs. Shared by handlers as `Arc<Tenant>`.
#[derive(Debug)]
pub struct Tenant {
    name: String,
    pipeline: Arc<Pipeline>,
    events: Arc<EventLog>,
    metrics: Arc<TenantMetrics>,
    limiter: Option<(DefaultDirectRateLimiter, u32)>,
    requests: Sender<Request>,
    healthy: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Apply { .. } => "Apply",
            Request::Erase { .. } => "Erase",
            Request::Snapshot { .. } => "Snapshot",
            Request::Stop { .. } => "Stop",
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Tenant {
    /// Opens (recovering from its data directory) and starts one tenant.
    pub fn open(config: &TenantConfig, daemon: &Config) -> Result<Arc<Tenant>, TenantError> {
        let startup =
            |message: String| TenantError::Startup { tenant: config.name.clone(), message };
        let dir = tenant_dir(&daemon.data_dir, &config.name);
        let catalog = load_catalog(config).map_err(startup)?;
        let model: SharedModel = match &config.model {
            Some(path) => Model::open(path)
                .map_err(|e| startup(format!("model {}: {e}", path.display())))?
                .into(),
            None => Model::builtin().into(),
        };
        let store = SnapshotStore::open(dir.join("snapshots"))
            .map_err(|e| startup(format!("snapshots: {e}")))?;
        let snapshot = match store.latest().map_err(|e| startup(format!("snapshots: {e}")))? {
            Some(found) => {
                let decoded = rkyv::from_bytes::<TenantSnapshot, rkyv::rancor::Error>(&found.bytes)
                    .map_err(|e| {
                        startup(format!("{}: does not decode: {e}", found.path.display()))
                    })?;
                if decoded.lsn != found.lsn {
                    return Err(startup(format!(
                        "{}: holds lsn {}, its name says {}",
                        found.path.display(),
                        decoded.lsn,
                        found.lsn
                    )));
                }
                Some(decoded)
            }
            None => None,
        };
        let start_lsn = snapshot.as_ref().map_or(0, |s| s.lsn);
        let options = JournalOptions {
            segment_bytes: daemon.journal.segment_bytes,
            start_lsn,
            ..JournalOptions::default()
        };
        let (mut journal, report) = Journal::open(dir.join("journal"), options)
            .map_err(|e| startup(format!("journal: {e}")))?;
        // Replay must see the clock as it was: a restored tenant starts at its
        // snapshot's time, a fresh one at its first record's (so timers set
        // up when the router is built come out the same), a new one now.
        let clock_start = match &snapshot {
            Some(snapshot) => snapshot.clock_ms,
            None => {
                let mut reader = journal
                    .records_from(journal.first_lsn())
                    .map_err(|e| startup(format!("journal: {e}")))?;
                match reader.next_record().map_err(|e| startup(format!("journal: {e}")))? {
                    Some(found) => {
                        Record::decode(found.lsn, found.payload)
                            .map_err(|e| startup(e.to_string()))?
                            .at_ms
                    }
                    None => wall_ms(),
                }
            }
        };
        let clock = Arc::new(ManualClock::new(Timestamp(clock_start)));
        let builder = Router::builder().config(config.router.clone()).clock(clock.clone());
        let router = match &snapshot {
            Some(snapshot) => builder.restore(snapshot.router.clone()),
            None => builder.build(),
        }
        .map_err(|e| startup(format!("router: {e}")))?;
        let pipeline = Arc::new(
            Pipeline::new(router, model, catalog, config.pipeline.clone())
                .map_err(|e| startup(format!("pipeline: {e}")))?,
        );
        let mut state = TenantState::new(pipeline.clone(), clock);
        if let Some(snapshot) = &snapshot {
            state.restore(snapshot).map_err(|e| startup(format!("snapshot: {e}")))?;
        }
        if report.dropped_bytes() > 0 {
            tracing::warn!(tenant = %config.name, dropped_bytes = report.dropped_bytes(), "journal tail was torn or corrupt and has been truncated");
        }
        if journal.first_lsn() > start_lsn {
            return Err(startup(format!(
                "the journal starts at record {} but the snapshot needs it from {start_lsn}",
                journal.first_lsn()
            )));
        }
        let events = Arc::new(EventLog::new(daemon.event_retention, state.next_seq()));
        let metrics = Arc::new(TenantMetrics::new(&config.name));

        // Replay the journal after the snapshot.
        let started = Instant::now();
        let mut replayed = 0u64;
        let mut erasures = 0u64;
        let mut buffer = Vec::new();
        {
            let mut reader =
                journal.records_from(start_lsn).map_err(|e| startup(format!("journal: {e}")))?;
            while let Some(found) =
                reader.next_record().map_err(|e| startup(format!("journal: {e}")))?
            {
                let record =
                    Record::decode(found.lsn, found.payload).map_err(|e| startup(e.to_string()))?;
                if matches!(record.command, Command::EraseCustomer { .. }) {
                    erasures += 1;
                }
                if let Err(error) = state.apply(&record, &mut buffer) {
                    // Only commands that applied are journaled: this one
                    // applied live, so the state has diverged. Say so loudly.
                    tracing::error!(tenant = %config.name, lsn = found.lsn, %error, "journal record no longer applies");
                }
                replayed += 1;
                if buffer.len() >= 65_536 {
                    events.publish(&buffer);
                    buffer.clear();
                }
            }
        }
        events.publish(&buffer);
        buffer.clear();
        tracing::info!(tenant = %config.name, snapshot_lsn = start_lsn, replayed, ms = started.elapsed().as_millis() as u64, "state recovered");

        let first_start = snapshot.is_none() && journal.next_lsn() == 0;
        let mut sequencer = Sequencer {
            name: config.name.clone(),
            state,
            journal,
            store,
            events: events.clone(),
            metrics: metrics.clone(),
            fsync: daemon.journal.fsync,
            fsync_every: Duration::from_millis(daemon.journal.fsync_every_ms.max(1)),
            snapshot_every_records: daemon.snapshot.every_records,
            snapshot_every: Duration::from_secs(daemon.snapshot.every_secs),
            snapshot_keep: daemon.snapshot.keep,
            snapshot_on_shutdown: daemon.snapshot.on_shutdown,
            records_since_snapshot: replayed,
            last_snapshot: Instant::now(),
            pending: Vec::new(),
            group_events: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
            failed: None,
        };
        // Initial agents are commands like any other: journaled, replayable.
        if first_start {
            let mut agents = Vec::new();
            if config.demo_agents {
                agents.extend(demo::agents());
            }
            if let Some(path) = &config.agents {
                agents.extend(demo::agents_from_file(path).map_err(startup)?);
            }
            for agent in agents {
                let record = Record {
                    at_ms: sequencer.state.time_for(wall_ms()),
                    command: Command::UpsertAgent(agent),
                };
                sequencer
                    .state
                    .apply(&record, &mut sequencer.group_events)
                    .map_err(|e| startup(e.to_string()))?;
                sequencer
                    .journal
                    .append(&record.encode())
                    .map_err(|e| startup(format!("journal: {e}")))?;
            }
            sequencer.journal.sync().map_err(|e| startup(format!("journal: {e}")))?;
            events.publish(&sequencer.group_events);
            sequencer.group_events.clear();
        }
        if erasures > 0 {
            // An erasure was journaled but its compaction may not have run.
            sequencer.compact().map_err(|e| startup(format!("compaction after erasure: {e}")))?;
        }
        sequencer.update_gauges();

        let limiter = match NonZeroU32::new(config.rate_limit) {
            Some(rate) => {
                let burst = NonZeroU32::new(config.rate_burst).unwrap_or(rate);
                Some((
                    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
                    config.rate_limit,
                ))
            }
            None => None,
        };
        let (requests, receiver) = crossbeam_channel::bounded(4_096);
        let healthy = Arc::new(AtomicBool::new(true));
        let thread_healthy = healthy.clone();
        let thread = std::thread::Builder::new()
            .name(format!("loketd-{}", config.name))
            .spawn(move || sequencer.run(&receiver, &thread_healthy))
            .map_err(|e| startup(format!("sequencer thread: {e}")))?;
        Ok(Arc::new(Tenant {
            name: config.name.clone(),
            pipeline,
            events,
            metrics,
            limiter,
            requests,
            healthy,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Scoring, routing and catalog (read-only use from handlers).
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The event stream.
    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    /// Metric handles.
    pub fn metrics(&self) -> &TenantMetrics {
        &self.metrics
    }

    /// Can it take commands (journal writable, sequencer running)?
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Takes `messages` from the rate limit, or refuses them all.
    pub fn check_rate(&self, messages: usize) -> Result<(), TenantError> {
        let Some((limiter, rate)) = &self.limiter else { return Ok(()) };
        let n = NonZeroU32::new(u32::try_from(messages).unwrap_or(u32::MAX).max(1))
            .unwrap_or(NonZeroU32::MIN);
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.metrics.rate_limited.increment(messages as u64);
                Err(TenantError::RateLimited(*rate))
            }
        }
    }

    /// Sends a command to the sequencer; the receiver yields once it is
    /// durable (or refused). Waits (blocking) if the sequencer's queue is full.
    pub fn submit(
        &self,
        command: Command,
        ingest: Instant,
    ) -> oneshot::Receiver<Result<Ack, TenantError>> {
        let (reply, receiver) = oneshot::channel();
        if let Err(crossbeam_channel::SendError(Request::Apply { reply, .. })) =
            self.requests.send(Request::Apply { command, ingest, reply })
        {
            let _ = reply.send(Err(TenantError::ShuttingDown));
        }
        receiver
    }

    /// Applies a command and waits until it is durable.
    pub async fn apply(&self, command: Command) -> Result<Ack, TenantError> {
        let receiver = self.submit(command, Instant::now());
        receiver.await.unwrap_or(Err(TenantError::ShuttingDown))
    }

    /// Erases a customer from memory, journal and snapshots (GDPR).
    pub async fn erase(&self, customer: u64) -> Result<ErasureReport, TenantError> {
        let (reply, receiver) = oneshot::channel();
        self.send(Request::Erase { customer, reply })?;
        receiver.await.unwrap_or(Err(TenantError::ShuttingDown))
    }

    /// Writes a snapshot now; returns its lsn.
    pub async fn snapshot(&self) -> Result<u64, TenantError> {
        let (reply, receiver) = oneshot::channel();
        self.send(Request::Snapshot { reply })?;
        receiver.await.unwrap_or(Err(TenantError::ShuttingDown))
    }

    /// Stops the sequencer after the commands already sent: syncs, writes a
    /// final snapshot (unless `snapshot.on_shutdown` is off) and joins the
    /// thread. Returns the journal position the state is saved at.
    pub fn stop(&self) -> Result<u64, TenantError> {
        let (reply, receiver) = oneshot::channel();
        self.send(Request::Stop { reply })?;
        let result = receiver.blocking_recv().unwrap_or(Err(TenantError::ShuttingDown));
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
        result
    }

    fn send(&self, request: Request) -> Result<(), TenantError> {
        self.requests.send(request).map_err(|_| TenantError::ShuttingDown)
    }
}

fn load_catalog(config: &TenantConfig) -> Result<Option<Arc<Catalog>>, String> {
    let mut builder = Catalog::builder();
    if let Some(path) = &config.synonyms {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("synonyms {}: {e}", path.display()))?;
        let synonyms =
            Synonyms::parse(&text).map_err(|e| format!("synonyms {}: {e}", path.display()))?;
        builder = builder.synonyms(synonyms);
    }
    let (catalog, report) = match &config.catalog {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("catalog {}: {e}", path.display()))?;
            if path.extension().is_some_and(|ext| ext == "jsonl") {
                builder.from_jsonl_reader(std::io::BufReader::new(file))
            } else {
                builder.from_csv_reader(file)
            }
            .map_err(|e| format!("catalog {}: {e}", path.display()))?
        }
        None if config.demo_catalog => builder
            .from_csv_reader(demo::CATALOG.as_bytes())
            .map_err(|e| format!("demo catalog: {e}"))?,
        None => return Ok(None),
    };
    if report.rejected > 0 {
        tracing::warn!(tenant = %config.name, rejected = report.rejected, "catalog rows rejected");
    }
    Ok(Some(Arc::new(catalog)))
}

struct PendingAck {
    reply: Reply<Ack>,
    ack: Ack,
    ingest: Instant,
}

struct Sequencer {
    name: String,
    state: TenantState,
    journal: Journal,
    store: SnapshotStore,
    events: Arc<EventLog>,
    metrics: Arc<TenantMetrics>,
    fsync: FsyncPolicy,
    fsync_every: Duration,
    snapshot_every_records: u64,
    snapshot_every: Duration,
    snapshot_keep: usize,
    snapshot_on_shutdown: bool,
    records_since_snapshot: u64,
    last_snapshot: Instant,
    pending: Vec<PendingAck>,
    group_events: Vec<SeqEvent>,
    unsynced: bool,
    last_sync: Instant,
    failed: Option<String>,
}

/// Most requests taken in one group before syncing.
const GROUP: usize = 1_024;
/// How often an idle sequencer looks at its timers.
const IDLE_TICK: Duration = Duration::from_millis(50);

impl Sequencer {
    fn run(mut self, requests: &Receiver<Request>, healthy: &AtomicBool) {
        loop {
            let timeout = if self.unsynced {
                self.fsync_every.saturating_sub(self.last_sync.elapsed())
            } else {
                IDLE_TICK
            };
            let first = match requests.recv_timeout(timeout) {
                Ok(request) => Some(request),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut next = first;
            let mut taken = 0;
            while let Some(request) = next.take() {
                taken += 1;
                match request {
                    Request::Apply { command, ingest, reply } => self.apply(command, ingest, reply),
                    Request::Erase { customer, reply } => {
                        let result = self.erase(customer);
                        let _ = reply.send(result);
                    }
                    Request::Snapshot { reply } => {
                        let result = self.flush().and_then(|()| self.take_snapshot());
                        let _ = reply.send(result);
                    }
                    Request::Stop { reply } => {
                        let result = if self.snapshot_on_shutdown {
                            self.flush().and_then(|()| self.take_snapshot())
                        } else {
                            self.flush().map(|()| self.journal.next_lsn())
                        };
                        if let Err(error) = &result {
                            tracing::error!(tenant = %self.name, %error, "final snapshot failed");
                        }
                        let _ = reply.send(result);
                        healthy.store(false, Ordering::Relaxed);
                        return;
                    }
                }
                if taken < GROUP {
                    next = requests.try_recv().ok();
                }
            }
            let now = self.state.time_for(wall_ms());
            if self.failed.is_none() && self.state.timer_due(now) {
                let (reply, _ignored) = oneshot::channel();
                self.apply(Command::Tick, Instant::now(), reply);
            }
            let due = match self.fsync {
                FsyncPolicy::Always => true,
                FsyncPolicy::Interval => self.last_sync.elapsed() >= self.fsync_every,
            };
            if self.unsynced
                && due
                && let Err(error) = self.flush()
            {
                tracing::error!(tenant = %self.name, %error, "journal failed; refusing commands from now on");
                healthy.store(false, Ordering::Relaxed);
            }
            if self.failed.is_none()
                && !self.unsynced
                && self.snapshot_due()
                && let Err(error) = self.take_snapshot()
            {
                tracing::error!(tenant = %self.name, %error, "snapshot failed");
            }
        }
        // Every handle is gone: stop quietly after making what we have durable.
        let _ = self.flush();
    }

    fn apply(&mut self, command: Command, ingest: Instant, reply: Reply<Ack>) {
        if let Some(reason) = &self.failed {
            let _ = reply.send(Err(TenantError::JournalUnavailable(reason.clone())));
            return;
        }
        let record = Record { at_ms: self.state.time_for(wall_ms()), command };
        match self.state.apply(&record, &mut self.group_events) {
            Ok(applied) => {
                let bytes = record.encode();
                if let Err(error) = self.journal.append(&bytes) {
                    self.fail(format!("append: {error}"));
                    // The state has moved past the journal: nothing after
                    // this is acknowledged, and a restart recovers from disk.
                    let _ = reply.send(Err(TenantError::JournalUnavailable(error.to_string())));
                    return;
                }
                self.metrics.journal_bytes.increment(bytes.len() as u64);
                self.unsynced = true;
                self.records_since_snapshot += 1;
                if let Command::Messages(messages) = &record.command {
                    self.metrics.messages.increment(messages.len() as u64);
                    self.metrics.ingest_to_decision.record(ingest.elapsed().as_secs_f64());
                }
                let last_seq = self.state.next_seq() - 1;
                self.pending.push(PendingAck { reply, ack: Ack { applied, last_seq }, ingest });
            }
            Err(error) => {
                let _ = reply.send(Err(error.into()));
            }
        }
    }

    fn fail(&mut self, reason: String) {
        tracing::error!(tenant = %self.name, %reason, "journal unavailable");
        self.failed = Some(reason.clone());
        for pending in self.pending.drain(..) {
            let _ = pending.reply.send(Err(TenantError::JournalUnavailable(reason.clone())));
        }
        // Undurable events are never published.
        self.group_events.clear();
    }

    /// Syncs the journal, then publishes the group's events and answers.
    fn flush(&mut self) -> Result<(), TenantError> {
        if let Some(reason) = &self.failed {
            return Err(TenantError::JournalUnavailable(reason.clone()));
        }
        if self.unsynced {
            if let Err(error) = self.journal.sync() {
                let reason = format!("sync: {error}");
                self.fail(reason.clone());
                return Err(TenantError::JournalUnavailable(reason));
            }
            if let Some(took) = self.journal.last_sync_duration() {
                self.metrics.fsync.record(took.as_secs_f64());
            }
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        self.events.publish(&self.group_events);
        self.metrics.record_events(self.group_events.iter().map(|e| &e.event));
        self.group_events.clear();
        for pending in self.pending.drain(..) {
            self.metrics.ingest_to_ack.record(pending.ingest.elapsed().as_secs_f64());
            let _ = pending.reply.send(Ok(pending.ack));
        }
        self.update_gauges();
        Ok(())
    }

    fn update_gauges(&self) {
        let stats = self.state.router().stats();
        self.metrics.queue_depth.set(stats.queued as f64);
        self.metrics.conversations.set(stats.conversations as f64);
        self.metrics.agents.set(stats.agents as f64);
    }

    fn snapshot_due(&self) -> bool {
        if self.records_since_snapshot == 0 {
            return false;
        }
        (self.snapshot_every_records > 0
            && self.records_since_snapshot >= self.snapshot_every_records)
            || (!self.snapshot_every.is_zero()
                && self.last_snapshot.elapsed() >= self.snapshot_every)
    }

    /// Writes a snapshot of the current state (call with nothing unsynced),
    /// prunes old snapshots and the journal before the oldest one kept.
    /// Returns the snapshot's lsn and the journal segments removed.
    fn take_snapshot(&mut self) -> Result<u64, TenantError> {
        self.write_snapshot().map(|(lsn, _)| lsn)
    }

    fn write_snapshot(&mut self) -> Result<(u64, usize), TenantError> {
        let io = |e: loket_journal::Error| TenantError::JournalUnavailable(e.to_string());
        self.journal.rotate().map_err(io)?;
        let lsn = self.journal.next_lsn();
        let snapshot = self.state.snapshot(lsn);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&snapshot)
            .map_err(|e| TenantError::JournalUnavailable(format!("snapshot encoding: {e}")))?;
        self.store.write(lsn, &bytes).map_err(io)?;
        self.store.prune(self.snapshot_keep).map_err(io)?;
        let oldest = self.store.list().map_err(io)?.first().map_or(lsn, |(oldest, _)| *oldest);
        let removed = self.journal.remove_before(oldest).map_err(io)?;
        self.metrics.snapshots.increment(1);
        self.records_since_snapshot = 0;
        self.last_snapshot = Instant::now();
        tracing::info!(tenant = %self.name, lsn, bytes = bytes.len(), "snapshot written");
        Ok((lsn, removed))
    }

    /// After an erasure: one snapshot without the customer, and no older
    /// snapshot or journal segment left that could hold them. Returns the
    /// journal segments and snapshots removed and the snapshot's lsn.
    fn compact(&mut self) -> Result<(usize, usize, u64), TenantError> {
        let io = |e: loket_journal::Error| TenantError::JournalUnavailable(e.to_string());
        let (lsn, mut segments_removed) = self.write_snapshot()?;
        let snapshots_removed = self.store.prune(1).map_err(io)?;
        segments_removed += self.journal.remove_before(lsn).map_err(io)?;
        Ok((segments_removed, snapshots_removed, lsn))
    }

    fn erase(&mut self, customer: u64) -> Result<ErasureReport, TenantError> {
        self.flush()?;
        let record = Record {
            at_ms: self.state.time_for(wall_ms()),
            command: Command::EraseCustomer { customer },
        };
        let applied = self.state.apply(&record, &mut self.group_events)?;
        if let Err(error) = self.journal.append(&record.encode()) {
            self.fail(format!("append: {error}"));
            return Err(TenantError::JournalUnavailable(error.to_string()));
        }
        self.unsynced = true;
        self.records_since_snapshot += 1;
        // Drop what subscribers could still read about them, then publish
        // the erasure events (which carry nothing but the ids).
        let erased: BTreeSet<u64> = applied.erased.iter().copied().collect();
        let events_removed = self.events.purge(&erased);
        self.flush()?;
        let (journal_segments_removed, snapshots_removed, snapshot_lsn) = self.compact()?;
        tracing::info!(tenant = %self.name, customer, conversations = erased.len(), "customer erased");
        Ok(ErasureReport {
            customer,
            conversations: applied.erased,
            events_removed,
            journal_segments_removed,
            snapshots_removed,
            snapshot_lsn,
        })
    }
}

/// The data directory of one tenant.
pub fn tenant_dir(data_dir: &Path, tenant: &str) -> PathBuf {
    data_dir.join("tenants").join(tenant)
}
