//! This node: its NATS connection, its heartbeat, and per tenant the lease
//! (lead or follow) and the tail of the tenant's stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{ClusterConfig, NodeAddress, SnapshotShelf, StreamLink, TenantRole};
use crate::tenant::Tenant;

/// Why the node could not join the cluster, or had to leave it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No NATS server could be reached (or the options are unusable).
    #[error("cannot connect to NATS at {servers}: {message}")]
    Connect {
        /// `cluster.nats`.
        servers: String,
        /// Why.
        message: String,
    },
    /// JetStream refused to set up a stream or bucket.
    #[error("JetStream {what}: {message}")]
    JetStream {
        /// The stream or bucket.
        what: String,
        /// Why.
        message: String,
    },
    /// The node lost a tenant it led (lease or fence) or a tenant stopped:
    /// it exits, and recovers from the stream when restarted.
    #[error("left the cluster: {0}")]
    Lost(String),
}

/// This node's part in the cluster; shared by the daemon and its tasks.
#[derive(Debug)]
pub struct Node {
    config: ClusterConfig,
    me: NodeAddress,
    jetstream: jetstream::Context,
    leases: kv::Store,
    nodes: kv::Store,
    /// Tenant snapshots (`PREFIX_snapshots`).
    snapshots: ObjectBucket,
    /// Each tenant's stream, by name, for `GET /v1/cluster`.
    links: parking_lot::Mutex<Vec<StreamLink>>,
    /// The live nodes as the heartbeat task last read them (every
    /// `lease_ms / 4`) and when, for the leaders' rebalancing checks.
    live: parking_lot::Mutex<(Option<Instant>, Vec<NodeAddress>)>,
    fatal: watch::Sender<Option<String>>,
}

impl Node {
    /// Connects to NATS and sets up the lease and node buckets and the
    /// snapshot object store.
    pub async fn connect(
        config: &ClusterConfig,
        me: NodeAddress,
    ) -> Result<Arc<Node>, ClusterError> {
        let servers = config.nats.join(", ");
        let connect_error =
            |message: String| ClusterError::Connect { servers: servers.clone(), message };
        let addresses = config
            .nats
            .iter()
            .map(|url| {
                url.parse::<async_nats::ServerAddr>()
                    .map_err(|e| connect_error(format!("{url}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("loketd {}", config.node))
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &config.credentials {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| connect_error(format!("credentials {}: {e}", path.display())))?;
        }
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let client = options.connect(addresses).await.map_err(|e| connect_error(e.to_string()))?;
        let jetstream = jetstream::new(client);
        let lease = Duration::from_millis(config.lease_ms);
        let leases = bucket(
            &jetstream,
            kv::Config {
                bucket: config.lease_bucket(),
                description: "loketd: which node leads each tenant".to_owned(),
                history: 1,
                num_replicas: config.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        let nodes = bucket(
            &jetstream,
            kv::Config {
                bucket: config.node_bucket(),
                description: "loketd: live nodes (heartbeats)".to_owned(),
                history: 1,
                max_age: lease * 3,
                num_replicas: config.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        let snapshots = object_bucket(
            &jetstream,
            object_store::Config {
                bucket: config.snapshot_bucket(),
                description: Some("loketd: tenant snapshots (TENANT/LSN)".to_owned()),
                num_replicas: config.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        let (fatal, _) = watch::channel(None);
        Ok(Arc::new(Node {
            config: config.clone(),
            me,
            jetstream,
            leases,
            nodes,
            snapshots: ObjectBucket(snapshots),
            links: parking_lot::Mutex::new(Vec::new()),
            live: parking_lot::Mutex::new((None, Vec::new())),
            fatal,
        }))
    }

    /// This node.
    pub fn me(&self) -> &NodeAddress {
        &self.me
    }

    /// The tenant's journal stream, created if absent (file storage,
    /// `replicas` copies), with its shelf in the snapshot object store
    /// (whose uploader starts now).
    pub async fn stream_for(&self, tenant: &str) -> Result<StreamLink, ClusterError> {
        let name = self.config.stream_name(tenant);
        let subject = self.config.subject(tenant);
        let config = stream::Config {
            name: name.clone(),
            description: Some(format!("loketd: the journal of tenant {tenant}")),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            num_replicas: self.config.replicas,
            allow_direct: true,
            ..Default::default()
        };
        let what = format!("stream {name}");
        let started = Instant::now();
        while let Err(error) = self.jetstream.get_or_create_stream(config.clone()).await {
            retry_or_give_up(started, &what, error.to_string()).await?;
        }
        let shelf = SnapshotShelf::start(
            tenant.to_owned(),
            self.config.snapshot_bucket(),
            self.snapshots.0.clone(),
            self.jetstream.clone(),
            name.clone(),
            self.config.snapshots_kept,
        );
        let link = StreamLink::new(
            tokio::runtime::Handle::current(),
            self.me.node.clone(),
            self.jetstream.clone(),
            name,
            subject,
            shelf,
        );
        self.links.lock().push(link.clone());
        Ok(link)
    }

    /// The tenant's stream bounds (first and last sequence) and the lsns
    /// of its snapshots in the object store, oldest first, each `None`
    /// when it cannot be read within half a lease.
    pub async fn storage(&self, tenant: &str) -> (Option<(u64, u64)>, Option<Vec<u64>>) {
        let stream_name = self.config.stream_name(tenant);
        let link = self.links.lock().iter().find(|link| link.stream() == stream_name).cloned();
        let Some(link) = link else { return (None, None) };
        let (lease, _) = self.lease_period();
        let bounds = tokio::time::timeout(lease / 2, link.bounds()).await.ok().and_then(Result::ok);
        let snapshots = link.snapshots();
        let lsns =
            tokio::time::timeout(lease / 2, snapshots.lsns()).await.ok().and_then(Result::ok);
        (bounds, lsns)
    }

    /// The nodes whose heartbeat is recent, by name. Empty if the bucket
    /// cannot be read within half a lease (JetStream electing a leader).
    pub async fn live_nodes(&self) -> Vec<NodeAddress> {
        let read = async {
            let mut live = Vec::new();
            let Ok(mut keys) = self.nodes.keys().await else { return live };
            while let Some(Ok(key)) = keys.next().await {
                if let Ok(Some(value)) = self.nodes.get(&key).await
                    && let Ok(address) = serde_json::from_slice::<NodeAddress>(&value)
                {
                    live.push(address);
                }
            }
            live.sort_by(|a, b| a.node.cmp(&b.node));
            live
        };
        let (lease, _) = self.lease_period();
        tokio::time::timeout(lease / 2, read).await.unwrap_or_default()
    }

    /// Starts the heartbeat and, per tenant, the lease and the tail; the
    /// receiver turns `Some(reason)` when the node must leave.
    pub fn start(
        self: &Arc<Node>,
        tenants: Vec<(Arc<Tenant>, StreamLink)>,
    ) -> watch::Receiver<Option<String>> {
        let fatal = self.fatal.subscribe();
        tokio::spawn(self.clone().heartbeat());
        let watched: Vec<Arc<Tenant>> = tenants.iter().map(|(tenant, _)| tenant.clone()).collect();
        tokio::spawn(self.clone().watch_health(watched));
        for (tenant, stream) in tenants {
            let Some(role) = tenant.cluster().cloned() else { continue };
            tokio::spawn(self.clone().tail(tenant.clone(), role.clone(), stream.clone()));
            tokio::spawn(self.clone().lead_or_follow(tenant, role, stream));
        }
        fatal
    }

    fn leave(&self, reason: String) {
        tracing::error!(node = %self.me.node, %reason, "leaving the cluster");
        self.fatal.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }

    fn lease_period(&self) -> (Duration, Duration) {
        let lease = Duration::from_millis(self.config.lease_ms);
        (lease, lease / 4)
    }

    async fn heartbeat(self: Arc<Node>) {
        let (_, period) = self.lease_period();
        let value = Bytes::from(serde_json::to_vec(&self.me).unwrap_or_default());
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            if let Err(error) = self.nodes.put(&self.me.node, value.clone()).await {
                tracing::warn!(node = %self.me.node, %error, "heartbeat not written");
            }
            let live = self.live_nodes().await;
            // An empty answer is a read that failed: keep the last one.
            if !live.is_empty() {
                *self.live.lock() = (Some(Instant::now()), live);
            }
        }
    }

    async fn watch_health(self: Arc<Node>, tenants: Vec<Arc<Tenant>>) {
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        loop {
            ticker.tick().await;
            if let Some(stopped) = tenants.iter().find(|tenant| !tenant.is_healthy()) {
                return self.leave(format!(
                    "tenant {} stopped (its error is logged above: an append the stream \
                     refused or lost, or a gap in the stream)",
                    stopped.name()
                ));
            }
        }
    }

    /// How long to hold back before taking `tenant`'s free lease: nothing
    /// for the live node that ranks first for it (rendezvous hashing), half
    /// a lease for the others, so tenants spread over the nodes. The holder
    /// of an expired lease (`expired_holder`) does not rank: it stopped
    /// leading, and its heartbeat outlives it for a while, so waiting for it
    /// would only lengthen the failover.
    async fn hold_back(&self, tenant: &str, expired_holder: Option<&str>) -> Duration {
        let live = self.live_nodes().await;
        let first = live
            .iter()
            .filter(|node| Some(node.node.as_str()) != expired_holder)
            .max_by_key(|node| rank(tenant, &node.node));
        match first {
            Some(first) if first.node != self.me.node => self.lease_period().0 / 2,
            _ => Duration::ZERO,
        }
    }

    /// Follows the tenant until its lease is free (or expired), takes it,
    /// catches up, leads and refreshes it. Leaves the cluster if it loses
    /// a lease it led under.
    async fn lead_or_follow(
        self: Arc<Node>,
        tenant: Arc<Tenant>,
        role: Arc<TenantRole>,
        stream: StreamLink,
    ) {
        let (lease, period) = self.lease_period();
        let key = tenant.name().to_owned();
        let me = Bytes::from(serde_json::to_vec(&self.me).unwrap_or_default());
        let mut seen: Option<(u64, Instant)> = None;
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let entry = match self.leases.entry(key.clone()).await {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::warn!(tenant = %key, %error, "lease not readable");
                    continue;
                }
            };
            let (revision, holder) = match &entry {
                Some(entry) if entry.operation == kv::Operation::Put => {
                    (entry.revision, serde_json::from_slice::<NodeAddress>(&entry.value).ok())
                }
                Some(entry) => (entry.revision, None),
                None => (0, None),
            };
            role.set_holder(holder.clone());
            let now = Instant::now();
            let since = match seen {
                Some((seen_revision, at)) if seen_revision == revision => at,
                _ => {
                    seen = Some((revision, now));
                    now
                }
            };
            // A lease in someone else's name is theirs until it goes
            // unrefreshed for a whole lease; a free one, or our own from
            // before a restart, can be taken at once.
            let held_by_other = holder.as_ref().is_some_and(|h| h.node != self.me.node);
            let wait = if held_by_other { lease } else { Duration::ZERO };
            // The live nodes are read only once the lease could be taken.
            let unchanged_for = now.duration_since(since);
            let expired_holder = holder.as_ref().filter(|_| held_by_other).map(|h| h.node.as_str());
            if unchanged_for < wait
                || unchanged_for < wait + self.hold_back(&key, expired_holder).await
            {
                continue;
            }
            let taken = match entry {
                None => self.leases.create(&key, me.clone()).await.map_err(|e| e.to_string()),
                Some(_) => {
                    self.leases.update(&key, me.clone(), revision).await.map_err(|e| e.to_string())
                }
            };
            let Ok(revision) = taken else { continue };
            tracing::info!(tenant = %key, node = %self.me.node, "took the lease; catching up");
            match self.lead(&tenant, &role, &stream, revision, &me).await {
                Ok(to) => {
                    tracing::info!(tenant = %key, from = %self.me.node, to = %to.node, "handed the tenant over; following");
                    seen = None;
                    tokio::spawn(self.clone().tail(tenant.clone(), role.clone(), stream.clone()));
                }
                Err(reason) => return self.leave(format!("tenant {key}: {reason}")),
            }
        }
    }

    /// Catches up with the stream under a fresh lease (`revision`), leads,
    /// and refreshes the lease until it hands the tenant to the node that
    /// ranks first for it (see [`Node::hand_over_to`]): then it follows
    /// again and returns that node.
    async fn lead(
        &self,
        tenant: &Tenant,
        role: &TenantRole,
        stream: &StreamLink,
        mut revision: u64,
        me: &Bytes,
    ) -> Result<NodeAddress, String> {
        let (_, period) = self.lease_period();
        let key = tenant.name();
        let mut refreshed = Instant::now();
        // Apply everything the stream holds (the tail feeds the sequencer).
        loop {
            let (_, last) = stream.bounds().await.map_err(|e| e.to_string())?;
            if role.applied() >= last {
                break;
            }
            if refreshed.elapsed() >= period {
                self.refresh_lease(key, me, &mut revision, &mut refreshed).await?;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        match tenant.promote().await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(format!("could not start leading: {error}")),
            Err(_) => return Err("shutting down".to_owned()),
        }
        role.set_holder(Some(self.me.clone()));
        tracing::info!(tenant = %key, node = %self.me.node, sequence = role.applied(), "leading");
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut live_since = LiveSince::default();
        loop {
            ticker.tick().await;
            self.refresh_lease(key, me, &mut revision, &mut refreshed).await?;
            let Some(to) = self.hand_over_to(key, &mut live_since) else { continue };
            // Clients refused from here on are sent to the new leader.
            role.set_holder(Some(to.clone()));
            match tenant.demote().await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(format!("could not hand over: {error}")),
                Err(_) => return Err("shutting down".to_owned()),
            }
            let value = Bytes::from(serde_json::to_vec(&to).unwrap_or_default());
            // Only the holder can hand the lease on; if the update fails the
            // lease expires instead and the live nodes take it as after a
            // failure. Either way this node no longer leads.
            if let Err(error) = self.leases.update(key, value, revision).await {
                tracing::warn!(tenant = %key, %error, "lease not handed over; it will expire");
            }
            return Ok(to);
        }
    }

    /// The node to hand the tenant over to, if any: the live node that
    /// ranks first for it (rendezvous hashing), when that is not this node
    /// and it has been live for [`SETTLE_LEASES`] leases (so a node that
    /// flaps, or one that just started and is still catching up, gets no
    /// tenant, and leaders move only when a node has joined for good).
    fn hand_over_to(&self, tenant: &str, live_since: &mut LiveSince) -> Option<NodeAddress> {
        let (lease, _) = self.lease_period();
        let now = Instant::now();
        let live = match &*self.live.lock() {
            // Read within the last lease: a view to act on.
            (Some(read), live) if now.duration_since(*read) < lease => live.clone(),
            _ => return None,
        };
        live_since.seen(&live, now);
        let first = live.into_iter().max_by_key(|node| rank(tenant, &node.node))?;
        let settled = live_since
            .since(&first.node)
            .is_some_and(|since| now.duration_since(since) >= lease * SETTLE_LEASES);
        (first.node != self.me.node && settled).then_some(first)
    }

    /// Renews a lease this node holds at `revision`. Fails when another
    /// node took it, or when it could not be renewed for a whole lease.
    async fn refresh_lease(
        &self,
        key: &str,
        me: &Bytes,
        revision: &mut u64,
        refreshed: &mut Instant,
    ) -> Result<(), String> {
        let (lease, _) = self.lease_period();
        match self.leases.update(key, me.clone(), *revision).await {
            Ok(next) => {
                *revision = next;
                *refreshed = Instant::now();
                Ok(())
            }
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err("another node took the lease".to_owned())
            }
            Err(error) if refreshed.elapsed() >= lease => {
                Err(format!("lease not refreshed for {} ms: {error}", lease.as_millis()))
            }
            Err(error) => {
                tracing::warn!(tenant = %key, %error, "lease refresh failed; retrying");
                Ok(())
            }
        }
    }

    /// Feeds the tenant's stream to its sequencer while this node follows.
    async fn tail(self: Arc<Node>, tenant: Arc<Tenant>, role: Arc<TenantRole>, stream: StreamLink) {
        let (lease, period) = self.lease_period();
        while !role.is_leading() && tenant.is_healthy() {
            let start_sequence = role.applied() + 1;
            let mut progressed = Instant::now();
            let ordered = async {
                let handle = stream
                    .jetstream()
                    .get_stream(stream.stream())
                    .await
                    .map_err(|e| e.to_string())?;
                let consumer = handle
                    .create_consumer(consumer::pull::OrderedConfig {
                        deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                consumer.messages().await.map_err(|e| e.to_string())
            };
            let mut messages = match ordered.await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(tenant = %tenant.name(), %error, "cannot tail the stream; retrying");
                    tokio::time::sleep(period).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    () = tokio::time::sleep(period) => {
                        if role.is_leading() || !tenant.is_healthy() {
                            return;
                        }
                        // A consumer whose server went away can go quiet
                        // without an error: behind the stream with no
                        // progress for a lease, start a new one.
                        let behind = matches!(stream.bounds().await, Ok((_, last)) if last > role.applied());
                        if behind && progressed.elapsed() >= lease {
                            tracing::warn!(tenant = %tenant.name(), "stream tail stalled; resuming");
                            break;
                        }
                        continue;
                    }
                };
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        tracing::warn!(tenant = %tenant.name(), %error, "stream tail interrupted; resuming");
                        break;
                    }
                    None => break,
                };
                let Ok(info) = message.info() else { continue };
                progressed = Instant::now();
                let sequence = info.stream_sequence;
                let payload = message.message.payload.clone();
                while !tenant.offer_replicated(sequence, payload.clone()) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if role.is_leading() {
                    return;
                }
            }
        }
    }
}

/// Leases a node must have been live before a leader hands it a tenant.
const SETTLE_LEASES: u32 = 2;

/// A node's rank for a tenant (rendezvous hashing): the live node with
/// the highest rank leads it, sticky to the current leader until that
/// node has settled (see [`Node::hand_over_to`]).
fn rank(tenant: &str, node: &str) -> u64 {
    let digest = Sha256::new().chain_update(tenant).chain_update([0]).chain_update(node).finalize();
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

/// Since when each node has been seen live without a break, as a leader
/// reads the heartbeats.
#[derive(Debug, Default)]
struct LiveSince {
    nodes: Vec<(String, Instant)>,
}

impl LiveSince {
    /// Records the nodes live at `now`: new ones from now, missing ones
    /// forgotten.
    fn seen(&mut self, live: &[NodeAddress], now: Instant) {
        self.nodes.retain(|(node, _)| live.iter().any(|l| &l.node == node));
        for node in live {
            if !self.nodes.iter().any(|(known, _)| known == &node.node) {
                self.nodes.push((node.node.clone(), now));
            }
        }
    }

    fn since(&self, node: &str) -> Option<Instant> {
        self.nodes.iter().find(|(known, _)| known == node).map(|&(_, since)| since)
    }
}

/// How long start-up waits for JetStream (a cluster of servers that are
/// starting together elects its metadata leader first).
const SETUP_PATIENCE: Duration = Duration::from_secs(30);

/// Waits a little before another attempt at setting up, or gives up once
/// [`SETUP_PATIENCE`] since `started` is over.
async fn retry_or_give_up(
    started: Instant,
    what: &str,
    message: String,
) -> Result<(), ClusterError> {
    if started.elapsed() >= SETUP_PATIENCE {
        return Err(ClusterError::JetStream { what: what.to_owned(), message });
    }
    tracing::info!(%what, %message, "JetStream not ready; retrying");
    tokio::time::sleep(Duration::from_millis(250)).await;
    Ok(())
}

/// An object store (which does not say what it is in `Debug`).
struct ObjectBucket(object_store::ObjectStore);

impl std::fmt::Debug for ObjectBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectStore")
    }
}

/// The object store, created if absent (by whichever node comes first).
async fn object_bucket(
    jetstream: &jetstream::Context,
    config: object_store::Config,
) -> Result<object_store::ObjectStore, ClusterError> {
    let name = config.bucket.clone();
    let what = format!("object store {name}");
    let started = Instant::now();
    loop {
        if let Ok(store) = jetstream.get_object_store(&name).await {
            return Ok(store);
        }
        let message = match jetstream.create_object_store(config.clone()).await {
            Ok(store) => return Ok(store),
            Err(error) => error.to_string(),
        };
        retry_or_give_up(started, &what, message).await?;
    }
}

/// The bucket, created if absent (by whichever node comes first).
async fn bucket(
    jetstream: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, ClusterError> {
    let name = config.bucket.clone();
    let what = format!("bucket {name}");
    let started = Instant::now();
    loop {
        if let Ok(store) = jetstream.get_key_value(&name).await {
            return Ok(store);
        }
        let message = match jetstream.create_key_value(config.clone()).await {
            Ok(store) => return Ok(store),
            Err(error) => error.to_string(),
        };
        retry_or_give_up(started, &what, message).await?;
    }
}
