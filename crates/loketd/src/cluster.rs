//! Running as one node of a cluster on NATS JetStream (`[cluster]`).
//!
//! Every node holds every tenant. Each tenant's journal is a JetStream
//! stream; one node at a time leads the tenant, through a lease in a
//! JetStream key-value bucket, and the others follow: they tail the stream
//! and apply each record through the same [`crate::state::TenantState::apply`]
//! as the leader did (hot standbys).
//!
//! # How a command becomes durable in a cluster
//!
//! The leader's sequencer applies and journals as on a single node; its
//! syncer then publishes the group's records to the tenant's stream, each
//! with `Nats-Expected-Last-Sequence` set to the record before it,
//! and only after JetStream acknowledged every one of them are the group's
//! events published and its commands acknowledged. The local journal is a
//! write-ahead copy that is rebuilt from the stream on start; the stream is
//! the journal.
//!
//! # Invariants
//!
//! - Stream sequence `n` holds the record the tenant journaled at
//!   position `n - 1`; a node's state after applying sequences `1..=n` is
//!   the leader's state after them.
//! - A record is appended only on top of the record its leader applied
//!   before it (the expected-sequence header), so a deposed leader's append
//!   fails: it can never acknowledge what the stream does not hold.
//! - A node that takes a lease first applies the whole stream, then appends
//!   a fencing record (a timer tick) before it accepts any command.
//! - A node that loses a tenant's lease while leading it, or whose append
//!   is refused, exits: its memory may hold decisions the stream does not,
//!   and it recovers by the rule above when its service manager restarts it.
//! - The stream is trimmed only behind a snapshot the object store holds
//!   (see [`snapshots`]): a node always finds a snapshot the stream
//!   follows on from, locally or in the object store.
//! - A leader hands a tenant on (to the live node that ranks first for it,
//!   once that node has been live for two leases) only after its sequencer
//!   stopped leading with everything it appended on the stream; it rewrites
//!   the lease in the new node's name on its own revision and follows the
//!   stream again. The new node takes the lease by the rules above.

pub mod config;
mod node;
pub mod snapshots;
mod stream;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};

pub use config::ClusterConfig;
pub use node::{ClusterError, Node};
pub use snapshots::{ShelfError, SnapshotShelf};
pub use stream::{StreamError, StreamLink};

/// A node as other nodes and clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeAddress {
    /// The node's name (`cluster.node`).
    pub node: String,
    /// Its HTTP address (`host:port`).
    pub http: String,
    /// Its binary-protocol address (`host:port`).
    pub binary: String,
}

/// One tenant's place in the cluster on this node, shared by its handlers,
/// its sequencer and syncer, and the node's lease and tail tasks.
#[derive(Debug)]
pub struct TenantRole {
    leading: AtomicBool,
    /// The stream sequence this node has applied (its journal's next lsn).
    applied: AtomicU64,
    /// The lease holder as last read from the bucket.
    holder: ArcSwapOption<NodeAddress>,
    /// The snapshot this node started the tenant from.
    started_from: StartedFrom,
}

/// The snapshot a node started a tenant from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StartedFrom {
    /// Its lsn: the stream was followed from sequence `snapshot_lsn + 1`
    /// (0: no snapshot, from the start of the stream).
    pub snapshot_lsn: u64,
    /// Where it came from.
    pub source: SnapshotSource,
}

/// Where the snapshot a node started from came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotSource {
    /// No snapshot: the whole stream was applied.
    None,
    /// The node's own data directory.
    Local,
    /// Downloaded from the object store at start.
    ObjectStore,
}

impl TenantRole {
    /// A follower that has applied the stream up to `applied`, starting
    /// from `started_from`.
    pub fn follower(applied: u64, started_from: StartedFrom) -> TenantRole {
        TenantRole {
            leading: AtomicBool::new(false),
            applied: AtomicU64::new(applied),
            holder: ArcSwapOption::empty(),
            started_from,
        }
    }

    /// The snapshot this node started the tenant from.
    pub fn started_from(&self) -> StartedFrom {
        self.started_from
    }

    /// Does this node lead the tenant (accept commands)?
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Set by the sequencer only, when it starts leading.
    pub(crate) fn set_leading(&self) {
        self.leading.store(true, Ordering::Release);
    }

    /// Set by the sequencer only, when it hands the tenant over and
    /// follows again (everything it appended is on the stream).
    pub(crate) fn set_following(&self) {
        self.leading.store(false, Ordering::Release);
    }

    /// The last stream sequence applied here.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    pub(crate) fn set_applied(&self, sequence: u64) {
        self.applied.store(sequence, Ordering::Release);
    }

    /// The node that holds the tenant's lease, as last seen.
    pub fn holder(&self) -> Option<NodeAddress> {
        self.holder.load_full().map(|holder| (*holder).clone())
    }

    pub(crate) fn set_holder(&self, holder: Option<NodeAddress>) {
        self.holder.store(holder.map(std::sync::Arc::new));
    }
}
