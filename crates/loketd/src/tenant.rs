//! A tenant: its state behind one sequencer thread, its journal and
//! snapshots, its event stream, rate limit and metrics.
//!
//! # How a command becomes durable
//!
//! Handlers (HTTP or binary, any thread) score messages, then send the
//! command to the tenant's sequencer over a channel. The sequencer applies
//! commands one at a time ([`TenantState::apply`]) and appends each that
//! succeeded to the journal. After a group (every command waiting, at most
//! `GROUP`, 1,024) it writes the journal buffer out and hands the group (a
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

use crate::cluster::{StreamLink, TenantRole};
use crate::command::{Command, Record};
use crate::config::{Config, FsyncPolicy, TenantConfig};
use crate::demo;
use crate::events::EventLog;
use crate::metrics::TenantMetrics;
use crate::state::{
    Applied, ApplyError, SeqEvent, TenantSnapshot, TenantState, find_conversations,
};
use crate::webhooks::WebhookStore;
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
    /// The journal cannot be written; nothing more is accepted. The
    /// failure (shared by every refusal after it) is the source.
    #[error("journal unavailable")]
    JournalUnavailable(#[source] Failure),
    /// The daemon is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// In a cluster, another node leads this tenant: send commands there.
    #[error("this node does not lead the tenant; {}", match leader {
        Some(leader) => format!("node {} does (http {}, binary {})", leader.node, leader.http, leader.binary),
        None => "no node does right now: retry shortly".to_owned(),
    })]
    NotLeader {
        /// The node that does, as last seen.
        leader: Option<crate::cluster::NodeAddress>,
    },
    /// Start-up failed.
    #[error("tenant {tenant}")]
    Startup {
        /// The tenant.
        tenant: String,
        /// What went wrong.
        #[source]
        source: StartupError,
    },
}

impl TenantError {
    /// The error and its causes on one line, as clients and logs are told:
    /// `journal unavailable: sync: No space left on device (os error 28)`.
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        if let TenantError::JournalUnavailable(failure) = self {
            text.push_str(": ");
            text.push_str(&failure.describe());
        }
        text
    }
}

/// Why a tenant's journal (or the snapshots and outbox kept with it) could
/// not be written: what was being done, and the error that stopped it.
#[derive(Debug, thiserror::Error)]
#[error("{doing}")]
pub struct StorageFailure {
    doing: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// A [`StorageFailure`], shared by every refusal after it.
pub type Failure = Arc<StorageFailure>;

impl StorageFailure {
    /// `doing` failed with `source`.
    pub fn new(
        doing: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Failure {
        Arc::new(StorageFailure { doing: doing.into(), source: Some(source.into()) })
    }

    /// `what` happened, with no error behind it.
    pub fn plain(what: impl Into<String>) -> Failure {
        Arc::new(StorageFailure { doing: what.into(), source: None })
    }

    /// What was being done and every cause, on one line.
    pub fn describe(&self) -> String {
        let mut text = self.doing.clone();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
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
    /// Events about them removed from the webhook outbox and dead letters.
    pub webhook_events_removed: usize,
    /// The snapshot that now holds the tenant's state, without the customer.
    pub snapshot_lsn: u64,
}

type Reply<T> = oneshot::Sender<Result<T, TenantError>>;

enum Request {
    Apply {
        command: Command,
        /// Integers found for its string conversation ids, by message
        /// (`state::find_conversations`).
        hints: Vec<u64>,
        ingest: Instant,
        submitted: Instant,
        reply: Reply<Ack>,
    },
    /// A record from the tenant's stream, on a follower.
    Replicated {
        sequence: u64,
        payload: bytes::Bytes,
    },
    /// This node took the tenant's lease and has applied the stream: lead.
    Promote {
        reply: Reply<Ack>,
    },
    /// Stop leading (the lease is being handed to another node): once what
    /// was appended is on the stream, refuse commands and follow it.
    Demote {
        reply: Reply<u64>,
    },
    Erase {
        customer: Id,
        reply: Reply<ErasureReport>,
    },
    Snapshot {
        reply: Reply<u64>,
    },
    Stop {
        reply: Reply<u64>,
    },
}

/// One tenant; see the module docs. Shared by handlers as `Arc<Tenant>`.
#[derive(Debug)]
pub struct Tenant {
    name: String,
    pipeline: Arc<Pipeline>,
    ids: Arc<parking_lot::RwLock<TenantIds>>,
    metering: Option<Arc<parking_lot::RwLock<loket_metering::Metering>>>,
    events: Arc<EventLog>,
    metrics: Arc<TenantMetrics>,
    limiter: Option<(DefaultDirectRateLimiter, u32)>,
    allow_new_skills: bool,
    store_text: bool,
    requests: Sender<Request>,
    healthy: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Its place in the cluster, when the daemon runs as a cluster node.
    cluster: Option<Arc<TenantRole>>,
    /// Its webhook outbox and endpoints, when it has endpoints.
    webhooks: Option<Arc<WebhookStore>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Apply { .. } => "Apply",
            Request::Replicated { .. } => "Replicated",
            Request::Promote { .. } => "Promote",
            Request::Demote { .. } => "Demote",
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
    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its webhook outbox and endpoints, when it has endpoints.
    pub fn webhooks(&self) -> Option<&Arc<WebhookStore>> {
        self.webhooks.as_ref()
    }

    /// Scoring, routing and catalog (read-only use from handlers).
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Does the journal keep what customers wrote (`store_text`)?
    pub fn stores_text(&self) -> bool {
        self.store_text
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

    /// The tenant's measuring, when it measures (written only by its
    /// sequencer; take the read lock for as long as a report takes).
    pub fn metering(&self) -> Option<&Arc<parking_lot::RwLock<loket_metering::Metering>>> {
        self.metering.as_ref()
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

    /// Its place in the cluster (`None` on a single node).
    pub fn cluster(&self) -> Option<&Arc<TenantRole>> {
        self.cluster.as_ref()
    }

    /// Hands a record read from the tenant's stream to the sequencer (on a
    /// follower). `false` when the sequencer's queue is full: retry.
    pub(crate) fn offer_replicated(&self, sequence: u64, payload: bytes::Bytes) -> bool {
        !matches!(
            self.requests.try_send(Request::Replicated { sequence, payload }),
            Err(crossbeam_channel::TrySendError::Full(_))
        )
    }

    /// Asks the sequencer to lead: it appends a fencing record (and, on a
    /// new stream, the first start's agents); the answer comes once the
    /// stream holds it.
    pub(crate) fn promote(&self) -> oneshot::Receiver<Result<Ack, TenantError>> {
        let (reply, receiver) = oneshot::channel();
        if let Err(crossbeam_channel::SendError(Request::Promote { reply })) =
            self.requests.send(Request::Promote { reply })
        {
            let _ = reply.send(Err(TenantError::ShuttingDown));
        }
        receiver
    }

    /// Asks the sequencer to stop leading: every command it acknowledged
    /// is on the stream first, later ones are refused with `not_leader`,
    /// and it follows the stream again. The answer is the last stream
    /// sequence it holds.
    pub(crate) fn demote(&self) -> oneshot::Receiver<Result<u64, TenantError>> {
        let (reply, receiver) = oneshot::channel();
        if let Err(crossbeam_channel::SendError(Request::Demote { reply })) =
            self.requests.send(Request::Demote { reply })
        {
            let _ = reply.send(Err(TenantError::ShuttingDown));
        }
        receiver
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
        let hints = match &command {
            Command::Messages(messages) => {
                self.metrics.scoring.record(submitted.duration_since(ingest).as_secs_f64());
                // Looked up here, on the receiving thread, so the
                // sequencer (one thread for the whole tenant) need not.
                find_conversations(&self.ids, messages)
            }
            _ => Vec::new(),
        };
        if let Err(crossbeam_channel::SendError(Request::Apply { reply, .. })) =
            self.requests.send(Request::Apply { command, hints, ingest, submitted, reply })
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

/// The data directory of one tenant.
pub fn tenant_dir(data_dir: &Path, tenant: &str) -> PathBuf {
    data_dir.join("tenants").join(tenant)
}

mod recovery;
mod retention;
mod sequencer;
mod snapshots;
mod startup;
mod syncer;

pub use startup::StartupError;

use retention::Retention;
use sequencer::{Sequencer, SequencerCluster, SnapshotInFlight};
use syncer::{Group, PendingAck, RECYCLED_BUFFERS, SYNC_QUEUE, Spooler, SyncJob, Syncer};

#[cfg(test)]
mod tests {
    use loket_router::{ConversationId, Event, EventKind, Timestamp};

    use super::*;

    fn closed(seq: u64) -> SeqEvent {
        SeqEvent {
            seq,
            event: crate::state::StreamEvent::Routed(Event {
                at: Timestamp(seq),
                conversation: Some(ConversationId(seq)),
                agent: None,
                kind: EventKind::Closed,
            }),
        }
    }

    /// A syncer over a fresh journal, and one group of two events and one
    /// reply appended to it.
    fn setup(
        dir: &Path,
        failure: Arc<OnceLock<Failure>>,
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
            stream: None,
            webhooks: None,
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
            records: Vec::new(),
            first_sequence: 0,
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
        failure.set(StorageFailure::new("append", "disk full")).unwrap();
        syncer.commit(&mut vec![group]);
        match answer.try_recv().unwrap() {
            Err(error @ TenantError::JournalUnavailable(_)) => {
                assert_eq!(error.describe(), "journal unavailable: append: disk full");
            }
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
        assert!(failure.get().is_some_and(|failure| failure.describe().starts_with("sync: ")));
        assert_eq!(syncer.events.latest(), 0);
    }
}
