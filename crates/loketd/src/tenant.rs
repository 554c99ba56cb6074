//! A tenant: its state behind one sequencer thread, its journal and
//! snapshots, its event stream, rate limit and metrics.
//!
//! # How a command becomes durable
//!
//! Handlers (HTTP or binary, any thread) score messages, then send the
//! command to the tenant's sequencer over a channel. The sequencer applies
//! commands one at a time ([`TenantState::apply`]) and appends each that
//! succeeded to the journal. After a group (every command waiting, at most
//! [`GROUP`]) it writes the journal buffer out and hands the group (a
//! [`SyncTicket`], the group's events and the handlers' replies) to the
//! tenant's syncer thread, and goes on deciding. The syncer `fdatasync`s
//! once for every group waiting (no more often than the fsync interval under
//! `fsync = "interval"`), and only then publishes the groups' events and
//! answers the handlers, in order: an acknowledged command is on disk, and
//! no subscriber ever sees a decision a crash could take back. Decisions
//! never wait for a disk flush; acknowledgements do.
//!
//! # Invariants
//!
//! - Only the sequencer thread changes a tenant's state or writes its files
//!   (the syncer only `fdatasync`s what the sequencer wrote).
//! - Groups are synced, published and answered in the order they were
//!   applied.
//! - On start, state = the latest snapshot + the journal after it, applied
//!   by the same code as live.
//! - A journal that cannot be written stops the tenant: every later command
//!   is refused (`journal_unavailable`), never acknowledged without a record.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use loket_catalog::{Catalog, Synonyms};
use loket_intent::Model;
use loket_journal::{Journal, JournalOptions, SnapshotStore, SyncTicket};
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
use loket_ids::{Id, Name, TenantIds};

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
    /// The customer, as the platform names them.
    pub customer: Id,
    /// Conversations erased from memory, as the platform names them.
    pub conversations: Vec<Name>,
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
    Apply { command: Command, ingest: Instant, submitted: Instant, reply: Reply<Ack> },
    Erase { customer: Id, reply: Reply<ErasureReport> },
    Snapshot { reply: Reply<u64> },
    Stop { reply: Reply<u64> },
}

/// One tenant; see the module docs. Shared by handlers as `Arc<Tenant>`.
#[derive(Debug)]
pub struct Tenant {
    name: String,
    pipeline: Arc<Pipeline>,
    ids: Arc<parking_lot::RwLock<TenantIds>>,
    events: Arc<EventLog>,
    metrics: Arc<TenantMetrics>,
    limiter: Option<(DefaultDirectRateLimiter, u32)>,
    allow_new_skills: bool,
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
        let mut state = TenantState::new(pipeline.clone(), clock, daemon.event_retention)
            .allow_new_skills(config.allow_new_skills);
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
        let ids = state.ids().clone();
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
        let healthy = Arc::new(AtomicBool::new(true));
        let failure = Arc::new(OnceLock::new());
        // Bounded: a disk that cannot keep up slows intake down instead of
        // letting undurable decisions pile up in memory.
        let (jobs, job_receiver) = crossbeam_channel::bounded(SYNC_QUEUE);
        let (recycle, recycled) = crossbeam_channel::bounded(RECYCLED_BUFFERS);
        let syncer = Syncer {
            name: config.name.clone(),
            events: events.clone(),
            metrics: metrics.clone(),
            fsync: daemon.journal.fsync,
            fsync_every: Duration::from_millis(daemon.journal.fsync_every_ms.max(1)),
            last_sync: Instant::now(),
            failure: failure.clone(),
            healthy: healthy.clone(),
            recycle,
        };
        let syncer = std::thread::Builder::new()
            .name(format!("loketd-sync-{}", config.name))
            .spawn(move || {
                let (failure, healthy) = (syncer.failure.clone(), syncer.healthy.clone());
                let run = std::panic::AssertUnwindSafe(|| syncer.run(&job_receiver));
                if std::panic::catch_unwind(run).is_err() {
                    // Nothing can be acknowledged any more: stop the tenant.
                    let _ = failure.set("the journal syncer stopped".to_owned());
                    healthy.store(false, Ordering::Relaxed);
                }
            })
            .map_err(|e| startup(format!("syncer thread: {e}")))?;
        let mut sequencer = Sequencer {
            name: config.name.clone(),
            state,
            journal,
            store,
            metrics: metrics.clone(),
            snapshot_every_records: daemon.snapshot.every_records,
            snapshot_every: Duration::from_secs(daemon.snapshot.every_secs),
            snapshot_keep: daemon.snapshot.keep,
            snapshot_on_shutdown: daemon.snapshot.on_shutdown,
            records_since_snapshot: replayed,
            last_snapshot: Instant::now(),
            pending: Vec::new(),
            group_events: Vec::new(),
            appended: false,
            last_gauges: Instant::now(),
            failure,
            events: events.clone(),
            jobs,
            recycled,
            syncer: Some(syncer),
            snapshot_in_flight: None,
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
        let thread_healthy = healthy.clone();
        let thread = std::thread::Builder::new()
            .name(format!("loketd-{}", config.name))
            .spawn(move || sequencer.run(&receiver, &thread_healthy))
            .map_err(|e| startup(format!("sequencer thread: {e}")))?;
        Ok(Arc::new(Tenant {
            name: config.name.clone(),
            pipeline,
            ids,
            allow_new_skills: config.allow_new_skills,
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

    /// May a message that comes in now ask for `skill`? (Some agent has
    /// had it, or the tenant allows new skills.) Asked before a message is
    /// journaled; a journaled message always applies.
    pub fn admits_skill(&self, skill: &str) -> bool {
        TenantState::admits_skill(self.pipeline.router(), self.allow_new_skills, skill)
    }

    /// The tenant's ids (written only by its sequencer; take the read lock
    /// briefly).
    pub fn ids(&self) -> &Arc<parking_lot::RwLock<TenantIds>> {
        &self.ids
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
        let submitted = Instant::now();
        if matches!(command, Command::Messages(_)) {
            self.metrics.scoring.record(submitted.duration_since(ingest).as_secs_f64());
        }
        if let Err(crossbeam_channel::SendError(Request::Apply { reply, .. })) =
            self.requests.send(Request::Apply { command, ingest, submitted, reply })
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
    pub async fn erase(&self, customer: Id) -> Result<ErasureReport, TenantError> {
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
            let jsonl = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson")
            });
            if jsonl {
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

/// Applied commands on their way to disk: synced by the [`Syncer`], then
/// published and answered.
struct Group {
    /// Syncing it makes every record of the group durable.
    ticket: SyncTicket,
    events: Vec<SeqEvent>,
    acks: Vec<PendingAck>,
}

enum SyncJob {
    Group(Group),
    /// Answered once every group sent before it is durable and answered
    /// (or refused, if the journal failed).
    Barrier(crossbeam_channel::Sender<()>),
}

/// Buffers the syncer hands back for the sequencer's next groups.
const RECYCLED_BUFFERS: usize = 8;
/// Groups (and barriers) waiting for the syncer before handing off blocks.
const SYNC_QUEUE: usize = 256;

/// The tenant's second thread: makes handed-off groups durable, then
/// publishes their events and answers their handlers, in order.
struct Syncer {
    name: String,
    events: Arc<EventLog>,
    metrics: Arc<TenantMetrics>,
    fsync: FsyncPolicy,
    fsync_every: Duration,
    last_sync: Instant,
    /// Set once, by whichever thread first finds the journal broken.
    failure: Arc<OnceLock<String>>,
    healthy: Arc<AtomicBool>,
    recycle: Sender<(Vec<SeqEvent>, Vec<PendingAck>)>,
}

impl Syncer {
    fn run(mut self, jobs: &Receiver<SyncJob>) {
        let mut groups = Vec::new();
        let mut barriers = Vec::new();
        while let Ok(job) = jobs.recv() {
            let take = |job, groups: &mut Vec<Group>, barriers: &mut Vec<_>| match job {
                SyncJob::Group(group) => groups.push(group),
                SyncJob::Barrier(done) => barriers.push(done),
            };
            take(job, &mut groups, &mut barriers);
            // Under the interval policy, gather what arrives until the
            // interval since the last sync is over (a barrier cuts it short).
            if self.fsync == FsyncPolicy::Interval {
                let deadline = self.last_sync + self.fsync_every;
                while barriers.is_empty() {
                    match jobs.recv_deadline(deadline) {
                        Ok(job) => take(job, &mut groups, &mut barriers),
                        Err(_) => break,
                    }
                }
            }
            while let Ok(job) = jobs.try_recv() {
                take(job, &mut groups, &mut barriers);
            }
            self.commit(&mut groups);
            for done in barriers.drain(..) {
                let _ = done.send(());
            }
        }
        // The sequencer is gone: whatever it handed over still gets an answer.
        self.commit(&mut groups);
    }

    /// One `fdatasync` for all `groups` (the last ticket covers the earlier
    /// ones: a rotation syncs the segment it leaves), then publication and
    /// answers; or refusals if the journal failed.
    fn commit(&mut self, groups: &mut Vec<Group>) {
        let Some(last) = groups.last() else { return };
        let synced = match self.failure.get() {
            Some(reason) => Err(reason.clone()),
            None => last.ticket.sync().map_err(|error| format!("sync: {error}")),
        };
        match synced {
            Ok(took) => {
                if !took.is_zero() {
                    self.metrics.fsync.record(took.as_secs_f64());
                }
                self.last_sync = Instant::now();
                for Group { ticket: _, mut events, mut acks } in groups.drain(..) {
                    self.events.publish(&events);
                    self.metrics.record_events(events.iter().map(|e| &e.event));
                    for pending in acks.drain(..) {
                        self.metrics.ingest_to_ack.record(pending.ingest.elapsed().as_secs_f64());
                        let _ = pending.reply.send(Ok(pending.ack));
                    }
                    events.clear();
                    let _ = self.recycle.try_send((events, acks));
                }
            }
            Err(reason) => {
                if self.failure.set(reason.clone()).is_ok() {
                    tracing::error!(tenant = %self.name, %reason, "journal failed; refusing commands from now on");
                }
                self.healthy.store(false, Ordering::Relaxed);
                let reason = self.failure.get().cloned().unwrap_or(reason);
                // Undurable events are never published.
                for group in groups.drain(..) {
                    for pending in group.acks {
                        let _ = pending
                            .reply
                            .send(Err(TenantError::JournalUnavailable(reason.clone())));
                    }
                }
            }
        }
    }
}

struct Sequencer {
    name: String,
    state: TenantState,
    journal: Journal,
    store: SnapshotStore,
    events: Arc<EventLog>,
    metrics: Arc<TenantMetrics>,
    snapshot_every_records: u64,
    snapshot_every: Duration,
    snapshot_keep: usize,
    snapshot_on_shutdown: bool,
    records_since_snapshot: u64,
    last_snapshot: Instant,
    /// The group being built: replies and events of commands applied since
    /// the last hand-off.
    pending: Vec<PendingAck>,
    group_events: Vec<SeqEvent>,
    /// Records appended since the last hand-off.
    appended: bool,
    last_gauges: Instant,
    /// Set once, by whichever thread first finds the journal broken.
    failure: Arc<OnceLock<String>>,
    jobs: Sender<SyncJob>,
    recycled: Receiver<(Vec<SeqEvent>, Vec<PendingAck>)>,
    syncer: Option<JoinHandle<()>>,
    /// A periodic snapshot being encoded and written on its own thread.
    snapshot_in_flight: Option<SnapshotInFlight>,
}

/// A periodic snapshot on its way to disk. Its thread encodes and writes
/// it and prunes old snapshots; the sequencer, which owns the journal,
/// removes the journal segments no snapshot needs once it is done.
struct SnapshotInFlight {
    lsn: u64,
    /// The oldest snapshot kept after pruning, and the snapshot's size.
    writer: JoinHandle<Result<(u64, usize), String>>,
}

/// Most requests taken in one group before handing it to the syncer.
const GROUP: usize = 1_024;
/// How often an idle sequencer looks at its timers.
const IDLE_TICK: Duration = Duration::from_millis(50);
/// How often the state gauges are refreshed.
const GAUGE_EVERY: Duration = Duration::from_millis(100);

impl Sequencer {
    fn run(mut self, requests: &Receiver<Request>, healthy: &AtomicBool) {
        'serve: loop {
            let first = match requests.recv_timeout(IDLE_TICK) {
                Ok(request) => Some(request),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut next = first;
            let mut taken = 0;
            while let Some(request) = next.take() {
                taken += 1;
                match request {
                    Request::Apply { command, ingest, submitted, reply } => {
                        self.metrics.sequencer_wait.record(submitted.elapsed().as_secs_f64());
                        self.apply(command, ingest, reply);
                    }
                    Request::Erase { customer, reply } => {
                        let result = self.erase(customer);
                        let _ = reply.send(result);
                    }
                    Request::Snapshot { reply } => {
                        let result = self.barrier().and_then(|()| self.take_snapshot());
                        let _ = reply.send(result);
                    }
                    Request::Stop { reply } => {
                        let result = if self.snapshot_on_shutdown {
                            self.barrier().and_then(|()| self.take_snapshot())
                        } else {
                            self.barrier().map(|()| self.journal.next_lsn())
                        };
                        if let Err(error) = &result {
                            tracing::error!(tenant = %self.name, %error, "final snapshot failed");
                        }
                        self.stop_syncer();
                        let _ = reply.send(result);
                        healthy.store(false, Ordering::Relaxed);
                        break 'serve;
                    }
                }
                if taken < GROUP {
                    next = requests.try_recv().ok();
                }
            }
            let now = self.state.time_for(wall_ms());
            if self.failure.get().is_none() && self.state.timer_due(now) {
                let (reply, _ignored) = oneshot::channel();
                self.apply(Command::Tick, Instant::now(), reply);
            }
            self.hand_off();
            self.finish_snapshot(false);
            if self.failure.get().is_some() {
                healthy.store(false, Ordering::Relaxed);
            } else if self.snapshot_in_flight.is_none()
                && self.snapshot_due()
                && let Err(error) = self.barrier().and_then(|()| self.start_snapshot())
            {
                tracing::error!(tenant = %self.name, %error, "snapshot failed");
            }
        }
        // Every handle is gone (or stopped): make what we have durable.
        let _ = self.barrier();
        self.finish_snapshot(true);
        self.stop_syncer();
    }

    fn apply(&mut self, command: Command, ingest: Instant, reply: Reply<Ack>) {
        if let Some(reason) = self.failure.get() {
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
                self.appended = true;
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
        if self.failure.set(reason).is_ok() {
            tracing::error!(tenant = %self.name, reason = %self.failure.get().map_or("", |r| r.as_str()), "journal unavailable");
        }
        let reason = self.failure.get().cloned().unwrap_or_default();
        for pending in self.pending.drain(..) {
            let _ = pending.reply.send(Err(TenantError::JournalUnavailable(reason.clone())));
        }
        // Undurable events are never published.
        self.group_events.clear();
        self.appended = false;
    }

    /// Writes the journal buffer out and hands the group built since the
    /// last hand-off to the syncer. Does nothing when the group is empty.
    fn hand_off(&mut self) {
        if !self.appended && self.pending.is_empty() && self.group_events.is_empty() {
            return;
        }
        if let Some(reason) = self.failure.get().cloned() {
            self.fail(reason);
            return;
        }
        let ticket = match self.journal.prepare_sync() {
            Ok(ticket) => ticket,
            Err(error) => return self.fail(format!("write: {error}")),
        };
        let (events, acks) = self.recycled.try_recv().unwrap_or_default();
        let group = Group {
            ticket,
            events: std::mem::replace(&mut self.group_events, events),
            acks: std::mem::replace(&mut self.pending, acks),
        };
        self.appended = false;
        if let Err(crossbeam_channel::SendError(SyncJob::Group(group))) =
            self.jobs.send(SyncJob::Group(group))
        {
            // The syncer is gone: stopped on purpose (after the sequencer's
            // last barrier), or dead, which stops the tenant.
            let died = self.syncer.is_some();
            if died {
                let _ = self.failure.set("the journal syncer stopped".to_owned());
            }
            for pending in group.acks {
                let error = match self.failure.get() {
                    Some(reason) if died => TenantError::JournalUnavailable(reason.clone()),
                    _ => TenantError::ShuttingDown,
                };
                let _ = pending.reply.send(Err(error));
            }
        }
        if self.last_gauges.elapsed() >= GAUGE_EVERY {
            self.update_gauges();
        }
    }

    /// Hands off the current group and waits until the syncer has made
    /// every group durable and answered it. Fails if the journal did.
    fn barrier(&mut self) -> Result<(), TenantError> {
        self.hand_off();
        let (done, wait) = crossbeam_channel::bounded(1);
        if self.jobs.send(SyncJob::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
        self.update_gauges();
        match self.failure.get() {
            Some(reason) => Err(TenantError::JournalUnavailable(reason.clone())),
            None => Ok(()),
        }
    }

    /// Ends the syncer after what it holds (call after [`Sequencer::barrier`]).
    fn stop_syncer(&mut self) {
        let (closed, _) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
    }

    fn update_gauges(&mut self) {
        let stats = self.state.router().stats();
        self.metrics.queue_depth.set(stats.queued as f64);
        self.metrics.conversations.set(stats.conversations as f64);
        self.metrics.agents.set(stats.agents as f64);
        let load = self.state.router().agent_load();
        self.metrics.agent_load.set(load.ratio());
        self.metrics.agent_held.set(load.held as f64);
        self.metrics.agent_capacity.set(load.capacity as f64);
        self.metrics.agents_at_capacity.set(load.at_capacity as f64);
        self.last_gauges = Instant::now();
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

    /// Writes a snapshot of the current state (call after a barrier),
    /// prunes old snapshots and the journal before the oldest one kept.
    /// Returns the snapshot's lsn and the journal segments removed.
    fn take_snapshot(&mut self) -> Result<u64, TenantError> {
        self.write_snapshot().map(|(lsn, _)| lsn)
    }

    /// Starts a periodic snapshot (call after a barrier): rotates the
    /// journal and copies the state here, then encodes, writes and prunes on
    /// a thread of its own, so deciding pauses only for the copy. See
    /// [`Sequencer::finish_snapshot`].
    fn start_snapshot(&mut self) -> Result<(), TenantError> {
        let (lsn, snapshot) = self.capture_snapshot()?;
        let (store, keep) = (self.store.clone(), self.snapshot_keep);
        let writer = std::thread::Builder::new()
            .name(format!("loketd-snap-{}", self.name))
            .spawn(move || store_snapshot(&store, lsn, &snapshot, keep))
            .map_err(|e| TenantError::JournalUnavailable(format!("snapshot thread: {e}")))?;
        self.snapshot_in_flight = Some(SnapshotInFlight { lsn, writer });
        self.records_since_snapshot = 0;
        self.last_snapshot = Instant::now();
        Ok(())
    }

    /// Rotates the journal and copies the state as of the new segment's
    /// first lsn. A failed rotation (which poisons the journal) stops the
    /// tenant.
    fn capture_snapshot(&mut self) -> Result<(u64, TenantSnapshot), TenantError> {
        if let Err(error) = self.journal.rotate() {
            let reason = format!("rotate: {error}");
            self.fail(reason.clone());
            return Err(TenantError::JournalUnavailable(reason));
        }
        let lsn = self.journal.next_lsn();
        Ok((lsn, self.state.snapshot(lsn)))
    }

    /// Completes the periodic snapshot in flight, if its thread is done (or
    /// after waiting for it, with `wait`): removes the journal segments
    /// older than the oldest snapshot kept. A failed snapshot is logged and
    /// changes nothing (the journal still holds everything).
    fn finish_snapshot(&mut self, wait: bool) {
        if !wait && !self.snapshot_in_flight.as_ref().is_some_and(|f| f.writer.is_finished()) {
            return;
        }
        let Some(SnapshotInFlight { lsn, writer }) = self.snapshot_in_flight.take() else {
            return;
        };
        match writer.join() {
            Ok(Ok((oldest, bytes))) => {
                if let Err(error) = self.journal.remove_before(oldest) {
                    tracing::error!(tenant = %self.name, %error, "removing old journal segments");
                }
                self.metrics.snapshots.increment(1);
                tracing::info!(tenant = %self.name, lsn, bytes, "snapshot written");
            }
            Ok(Err(error)) => tracing::error!(tenant = %self.name, lsn, %error, "snapshot failed"),
            Err(_) => tracing::error!(tenant = %self.name, lsn, "snapshot thread panicked"),
        }
    }

    /// Writes a snapshot here and now (shutdown, on request, compaction),
    /// after the periodic one in flight, if any, so snapshots land in lsn
    /// order and none older can appear after this one.
    fn write_snapshot(&mut self) -> Result<(u64, usize), TenantError> {
        self.finish_snapshot(true);
        let (lsn, snapshot) = self.capture_snapshot()?;
        let (oldest, bytes) = store_snapshot(&self.store, lsn, &snapshot, self.snapshot_keep)
            .map_err(TenantError::JournalUnavailable)?;
        let removed = self
            .journal
            .remove_before(oldest)
            .map_err(|e| TenantError::JournalUnavailable(e.to_string()))?;
        self.metrics.snapshots.increment(1);
        self.records_since_snapshot = 0;
        self.last_snapshot = Instant::now();
        tracing::info!(tenant = %self.name, lsn, bytes, "snapshot written");
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

    fn erase(&mut self, customer: Id) -> Result<ErasureReport, TenantError> {
        self.barrier()?;
        let record = Record {
            at_ms: self.state.time_for(wall_ms()),
            command: Command::EraseCustomer { customer: customer.clone() },
        };
        let applied = self.state.apply(&record, &mut self.group_events)?;
        if let Err(error) = self.journal.append(&record.encode()) {
            self.fail(format!("append: {error}"));
            return Err(TenantError::JournalUnavailable(error.to_string()));
        }
        self.appended = true;
        self.records_since_snapshot += 1;
        // Drop what subscribers could still read about them, then publish
        // the erasure events (which carry nothing but the ids).
        // Their earlier conversations' events go too; the erased ones'
        // older events go, while the events that report the erasure follow.
        let erased: BTreeSet<u64> =
            applied.erased.iter().chain(&applied.erased_earlier).copied().collect();
        let events_removed = self.events.purge(&erased);
        self.barrier()?;
        let (journal_segments_removed, snapshots_removed, snapshot_lsn) = self.compact()?;
        tracing::info!(tenant = %self.name, conversations = erased.len(), "customer erased");
        Ok(ErasureReport {
            customer,
            conversations: applied.erased_names,
            events_removed,
            journal_segments_removed,
            snapshots_removed,
            snapshot_lsn,
        })
    }
}

/// Encodes `snapshot`, stores it as the snapshot at `lsn` and prunes the
/// store to the newest `keep`. Returns the oldest snapshot kept (the journal
/// before it is no longer needed) and the encoded size.
fn store_snapshot(
    store: &SnapshotStore,
    lsn: u64,
    snapshot: &TenantSnapshot,
    keep: usize,
) -> Result<(u64, usize), String> {
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(snapshot)
        .map_err(|e| format!("snapshot encoding: {e}"))?;
    let io = |e: loket_journal::Error| e.to_string();
    store.write(lsn, &bytes).map_err(io)?;
    store.prune(keep).map_err(io)?;
    let oldest = store.list().map_err(io)?.first().map_or(lsn, |(oldest, _)| *oldest);
    Ok((oldest, bytes.len()))
}

/// The data directory of one tenant.
pub fn tenant_dir(data_dir: &Path, tenant: &str) -> PathBuf {
    data_dir.join("tenants").join(tenant)
}

#[cfg(test)]
mod tests {
    use loket_router::{ConversationId, Event, EventKind, Timestamp};

    use super::*;

    fn closed(seq: u64) -> SeqEvent {
        SeqEvent {
            seq,
            event: Event {
                at: Timestamp(seq),
                conversation: Some(ConversationId(seq)),
                agent: None,
                kind: EventKind::Closed,
            },
        }
    }

    /// A syncer over a fresh journal, and one group of two events and one
    /// reply appended to it.
    fn setup(
        dir: &Path,
        failure: Arc<OnceLock<String>>,
    ) -> (Syncer, Journal, Group, oneshot::Receiver<Result<Ack, TenantError>>) {
        let (mut journal, _) = Journal::open(dir, JournalOptions::default()).unwrap();
        let (recycle, _recycled) = crossbeam_channel::bounded(RECYCLED_BUFFERS);
        let syncer = Syncer {
            name: "t".into(),
            events: Arc::new(EventLog::new(16, 1)),
            metrics: Arc::new(TenantMetrics::new("syncer-test")),
            fsync: FsyncPolicy::Always,
            fsync_every: Duration::from_millis(1),
            last_sync: Instant::now(),
            failure,
            healthy: Arc::new(AtomicBool::new(true)),
            recycle,
        };
        journal.append(b"record").unwrap();
        let (reply, answer) = oneshot::channel();
        let group = Group {
            ticket: journal.prepare_sync().unwrap(),
            events: vec![closed(1), closed(2)],
            acks: vec![PendingAck {
                reply,
                ack: Ack { applied: Applied::default(), last_seq: 2 },
                ingest: Instant::now(),
            }],
        };
        (syncer, journal, group, answer)
    }

    #[test]
    fn a_group_is_answered_and_published_only_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (mut syncer, journal, group, mut answer) = setup(dir.path(), Arc::default());
        assert_eq!(journal.durable_lsn(), 0);
        assert!(answer.try_recv().is_err(), "nothing answered before the sync");
        syncer.commit(&mut vec![group]);
        assert_eq!(journal.durable_lsn(), 1);
        assert_eq!(answer.try_recv().unwrap().unwrap().last_seq, 2);
        assert_eq!(syncer.events.latest(), 2);
        assert!(syncer.healthy.load(Ordering::Relaxed));
    }

    #[test]
    fn after_a_journal_failure_groups_are_refused_and_never_published() {
        let dir = tempfile::tempdir().unwrap();
        let failure = Arc::new(OnceLock::new());
        let (mut syncer, journal, group, mut answer) = setup(dir.path(), failure.clone());
        failure.set("append: disk full".to_owned()).unwrap();
        syncer.commit(&mut vec![group]);
        match answer.try_recv().unwrap() {
            Err(TenantError::JournalUnavailable(reason)) => assert!(reason.contains("disk full")),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(syncer.events.latest(), 0, "undurable events are never published");
        assert_eq!(journal.durable_lsn(), 0, "no sync after a failure");
        assert!(!syncer.healthy.load(Ordering::Relaxed));
    }

    #[test]
    fn a_poisoned_journal_fails_the_sync_and_stops_the_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let failure = Arc::new(OnceLock::new());
        let (mut syncer, mut journal, group, mut answer) = setup(dir.path(), failure.clone());
        // A segment that cannot be created poisons the journal (as a failed
        // write or fdatasync would): its tickets then refuse to sync.
        std::fs::write(dir.path().join(loket_journal::segment_file_name(1)), b"in the way")
            .unwrap();
        assert!(journal.rotate().is_err());
        syncer.commit(&mut vec![group]);
        assert!(matches!(answer.try_recv().unwrap(), Err(TenantError::JournalUnavailable(_))));
        assert!(failure.get().is_some_and(|reason| reason.starts_with("sync:")));
        assert_eq!(syncer.events.latest(), 0);
    }
}
