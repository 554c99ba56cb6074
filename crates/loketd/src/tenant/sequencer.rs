//! The sequencer thread: applies commands in order, journals them, hands
//! groups to the syncer, fires timers, erases customers.

use super::*;

pub(super) struct Sequencer {
    pub(super) name: String,
    pub(super) state: TenantState,
    pub(super) journal: Journal,
    pub(super) store: SnapshotStore,
    pub(super) events: Arc<EventLog>,
    pub(super) metrics: Arc<TenantMetrics>,
    pub(super) snapshot_every_records: u64,
    pub(super) snapshot_every: Duration,
    pub(super) snapshot_keep: usize,
    pub(super) snapshot_on_shutdown: bool,
    pub(super) records_since_snapshot: u64,
    pub(super) last_snapshot: Instant,
    /// The group being built: replies and events of commands applied since
    /// the last hand-off.
    pub(super) pending: Vec<PendingAck>,
    pub(super) group_events: Vec<SeqEvent>,
    /// Records appended since the last hand-off.
    pub(super) appended: bool,
    pub(super) last_gauges: Instant,
    /// Set once, by whichever thread first finds the journal broken.
    pub(super) failure: Arc<OnceLock<Failure>>,
    pub(super) jobs: Sender<SyncJob>,
    pub(super) recycled: Receiver<(Vec<SeqEvent>, Vec<PendingAck>)>,
    pub(super) syncer: Option<JoinHandle<()>>,
    /// A periodic snapshot being encoded and written on its own thread.
    pub(super) snapshot_in_flight: Option<SnapshotInFlight>,
    /// The tenant's part in a cluster, when the daemon runs as a node.
    pub(super) cluster: Option<SequencerCluster>,
    /// Seals journal records and snapshots, when the tenant encrypts.
    pub(super) keyring: Option<Arc<loket_seal::Keyring>>,
    /// With webhooks: synced before a snapshot, purged on erasure.
    pub(super) webhooks: Option<Arc<WebhookStore>>,
    /// With `retention_days`.
    pub(super) retention: Option<Retention>,
}

/// What the sequencer of a clustered tenant keeps besides its state.
pub(super) struct SequencerCluster {
    pub(super) role: Arc<TenantRole>,
    /// Records journaled since the last hand-off, for the syncer to append
    /// to the stream (leading only), and the stream sequence of the first.
    pub(super) outgoing: Vec<bytes::Bytes>,
    pub(super) first_sequence: u64,
    /// The first start's agents: journaled by whichever node first leads a
    /// tenant whose stream is empty.
    pub(super) first_agents: Vec<Command>,
    /// The tenant's snapshots in the object store: the leader offers each
    /// snapshot it writes.
    pub(super) snapshots: crate::cluster::SnapshotShelf,
}

/// A periodic snapshot on its way to disk. Its thread encodes and writes
/// it and prunes old snapshots; the sequencer, which owns the journal,
/// removes the journal segments no snapshot needs once it is done.
pub(super) struct SnapshotInFlight {
    pub(super) lsn: u64,
    /// Whether, in a cluster, the object store keeps only this snapshot.
    pub(super) only_newest: bool,
    pub(super) writer: JoinHandle<Result<StoredSnapshot, String>>,
}

/// A snapshot written to the store.
pub(super) struct StoredSnapshot {
    /// The oldest snapshot kept after pruning.
    pub(super) oldest: u64,
    /// Its size.
    pub(super) size: usize,
    /// Its stored bytes, when asked for (in a cluster, for the object
    /// store).
    pub(super) bytes: Option<bytes::Bytes>,
}

/// Most requests taken in one group before handing it to the syncer.
pub(super) const GROUP: usize = 1_024;
/// How often an idle sequencer looks at its timers.
pub(super) const IDLE_TICK: Duration = Duration::from_millis(50);
/// How often the state gauges are refreshed.
pub(super) const GAUGE_EVERY: Duration = Duration::from_millis(100);

impl Sequencer {
    pub(super) fn run(mut self, requests: &Receiver<Request>, healthy: &AtomicBool) {
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
                    Request::Apply { command, hints, ingest, submitted, reply } => {
                        self.metrics.sequencer_wait.record(submitted.elapsed().as_secs_f64());
                        self.apply(command, hints, ingest, reply);
                    }
                    Request::Replicated { sequence, payload } => {
                        self.replicate(sequence, &payload);
                    }
                    Request::Promote { reply } => self.promote(reply),
                    Request::Demote { reply } => {
                        let result = self.demote();
                        let _ = reply.send(result);
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
            if self.failure.get().is_none() && self.leads() && self.state.timer_due(now) {
                let (reply, _ignored) = oneshot::channel();
                self.apply(Command::Tick, Vec::new(), Instant::now(), reply);
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
            if self.failure.get().is_none() {
                self.enforce_retention();
            }
        }
        // Every handle is gone (or stopped): make what we have durable.
        let _ = self.barrier();
        self.finish_snapshot(true);
        self.stop_syncer();
    }

    /// On a single node always; in a cluster, once promoted.
    pub(super) fn leads(&self) -> bool {
        self.cluster.as_ref().is_none_or(|cluster| cluster.role.is_leading())
    }

    /// Applies and journals `command`; `hints` as for
    /// [`TenantState::hint_conversations`].
    pub(super) fn apply(
        &mut self,
        command: Command,
        hints: Vec<u64>,
        ingest: Instant,
        reply: Reply<Ack>,
    ) {
        if let Some(failure) = self.failure.get() {
            let _ = reply.send(Err(TenantError::JournalUnavailable(failure.clone())));
            return;
        }
        if let Some(cluster) = &self.cluster
            && !cluster.role.is_leading()
        {
            let _ = reply.send(Err(TenantError::NotLeader { leader: cluster.role.holder() }));
            return;
        }
        let record = Record { at_ms: self.state.time_for(wall_ms()), command };
        self.state.hint_conversations(hints);
        match self.state.apply(&record, &mut self.group_events) {
            Ok(applied) => {
                if let Err(error) = self.append(&record) {
                    let _ = reply.send(Err(error));
                    return;
                }
                if matches!(record.command, Command::Messages(_)) {
                    self.metrics.ingest_to_decision.record(ingest.elapsed().as_secs_f64());
                }
                self.count_applied(&record.command);
                let last_seq = self.state.next_seq() - 1;
                self.pending.push(PendingAck { reply, ack: Ack { applied, last_seq }, ingest });
            }
            Err(error) => {
                let _ = reply.send(Err(error.into()));
            }
        }
    }

    /// Appends a record that applied: counted in the metrics and towards
    /// the next snapshot. If the journal cannot take it the tenant stops:
    /// the state has moved past the journal, so nothing after this is
    /// acknowledged, and a restart recovers from disk.
    pub(super) fn append(&mut self, record: &Record) -> Result<(), TenantError> {
        let bytes = match record.encode_sealed(self.keyring.as_deref()) {
            Ok(bytes) => bytes,
            Err(error) => {
                let failure = StorageFailure::new("sealing", error);
                self.fail(failure.clone());
                return Err(TenantError::JournalUnavailable(failure));
            }
        };
        let lsn = self.journal.next_lsn();
        if let Err(error) = self.journal.append(&bytes) {
            let failure = StorageFailure::new("append", error);
            self.fail(failure.clone());
            return Err(TenantError::JournalUnavailable(failure));
        }
        self.count_journaled(bytes.len());
        if let Some(cluster) = &mut self.cluster {
            if cluster.outgoing.is_empty() {
                cluster.first_sequence = lsn + 1;
            }
            cluster.outgoing.push(bytes::Bytes::copy_from_slice(&bytes));
            cluster.role.set_applied(lsn + 1);
        }
        Ok(())
    }

    /// Counts a record the journal took: its bytes, the group's need of a
    /// hand-off, and the way to the next snapshot.
    fn count_journaled(&mut self, bytes: usize) {
        self.metrics.journal_bytes.increment(bytes as u64);
        self.appended = true;
        self.records_since_snapshot += 1;
    }

    /// Counts what an applied command did: its messages, and the reply
    /// times and SLA breaches it measured.
    fn count_applied(&mut self, command: &Command) {
        if let Command::Messages(messages) = command {
            self.metrics.messages.increment(messages.len() as u64);
        }
        let metrics = &self.metrics;
        let breaches = self.state.take_measured(|observation| metrics.observe_reply(observation));
        metrics.count_breaches(breaches);
    }

    /// Stops the tenant: the first failure is kept (and logged), and every
    /// command waiting for its group is refused with it.
    pub(super) fn fail(&mut self, failure: Failure) {
        if self.failure.set(failure.clone()).is_ok() {
            tracing::error!(tenant = %self.name, reason = %failure.describe(), "journal unavailable");
        }
        let failure = self.failure.get().cloned().unwrap_or(failure);
        for pending in self.pending.drain(..) {
            let _ = pending.reply.send(Err(TenantError::JournalUnavailable(failure.clone())));
        }
        // Undurable events are never published.
        self.group_events.clear();
        self.appended = false;
        if let Some(cluster) = &mut self.cluster {
            cluster.outgoing.clear();
        }
    }

    /// Applies and journals a record a follower read from the tenant's
    /// stream at `sequence`. Records it already has are skipped; a gap or a
    /// record that does not decode stops the tenant.
    pub(super) fn replicate(&mut self, sequence: u64, payload: &[u8]) {
        let Some(cluster) = &self.cluster else { return };
        // A leader's own records come back on the stream; a deposed
        // leader's would be fenced off before it matters.
        if cluster.role.is_leading() || self.failure.get().is_some() {
            return;
        }
        let role = cluster.role.clone();
        let lsn = self.journal.next_lsn();
        if sequence <= lsn {
            return;
        }
        if sequence > lsn + 1 {
            return self.fail(StorageFailure::plain(format!(
                "stream gap: expected sequence {}, got {sequence} (the stream was trimmed \
                 behind a snapshot this node does not have: a restart starts from the \
                 object store's)",
                lsn + 1
            )));
        }
        let record = match Record::open(lsn, payload, self.keyring.as_deref()) {
            Ok(record) => record,
            Err(error) => {
                return self.fail(StorageFailure::new(
                    format!("stream record {sequence} does not decode"),
                    error,
                ));
            }
        };
        let applied = match self.state.apply(&record, &mut self.group_events) {
            Ok(applied) => Some(applied),
            Err(error) => {
                // It applied on the leader: the states have diverged. Say so loudly.
                tracing::error!(tenant = %self.name, sequence, %error, "stream record no longer applies");
                None
            }
        };
        if let Err(error) = self.journal.append(payload) {
            return self.fail(StorageFailure::new("append", error));
        }
        self.count_applied(&record.command);
        self.count_journaled(payload.len());
        role.set_applied(sequence);
        if let (Command::EraseCustomer { .. }, Some(applied)) = (&record.command, applied) {
            self.erase_replicated(&applied);
        }
    }

    /// After a replicated erasure, forgets on this node what the leader
    /// forgot on its own: the customer's events, webhook outbox entries,
    /// and the journal segments and snapshots that still hold them.
    fn erase_replicated(&mut self, applied: &Applied) {
        let conversations = match self.purge_erased(applied) {
            Ok((_, _, conversations)) => conversations,
            Err(TenantError::JournalUnavailable(failure)) => return self.fail(failure),
            Err(_) => 0,
        };
        if let Err(error) = self.barrier().and_then(|()| self.compact().map(|_| ())) {
            tracing::error!(tenant = %self.name, %error, "compaction after a replicated erasure failed");
        }
        tracing::info!(tenant = %self.name, conversations, "customer erased (replicated)");
    }

    /// Drops what subscribers could still read about an erased customer
    /// and their earlier conversations: their events and webhook outbox
    /// entries. Returns how many of each were removed, and how many
    /// conversations were erased.
    fn purge_erased(&mut self, applied: &Applied) -> Result<(usize, usize, usize), TenantError> {
        let erased: BTreeSet<u64> =
            applied.erased.iter().chain(&applied.erased_earlier).copied().collect();
        let events_removed = self.events.purge(&erased);
        let webhook_events_removed = match &self.webhooks {
            Some(webhooks) => webhooks.purge(&erased).map_err(|e| {
                TenantError::JournalUnavailable(StorageFailure::new(
                    "purging the webhook outbox",
                    e,
                ))
            })?,
            None => 0,
        };
        Ok((events_removed, webhook_events_removed, erased.len()))
    }

    /// Starts leading: appends the fencing record (a timer tick), after the
    /// first start's agents when the stream is empty. `reply` is answered
    /// once the stream holds them.
    pub(super) fn promote(&mut self, reply: Reply<Ack>) {
        let Some(cluster) = &mut self.cluster else {
            let _ = reply.send(Ok(Ack { applied: Applied::default(), last_seq: 0 }));
            return;
        };
        cluster.role.set_leading();
        let agents = if self.journal.next_lsn() == 0 {
            std::mem::take(&mut cluster.first_agents)
        } else {
            Vec::new()
        };
        for command in agents {
            let (agent_reply, _answered_with_the_fence) = oneshot::channel();
            self.apply(command, Vec::new(), Instant::now(), agent_reply);
        }
        self.apply(Command::Tick, Vec::new(), Instant::now(), reply);
        self.hand_off();
    }

    /// Stops leading: makes everything applied durable on the stream (the
    /// commands waiting for it are acknowledged), then follows the stream
    /// from there. Returns the last sequence held. A failure to append
    /// stops the tenant, as it would while leading.
    pub(super) fn demote(&mut self) -> Result<u64, TenantError> {
        let Some(role) = self.cluster.as_ref().map(|cluster| cluster.role.clone()) else {
            return Ok(self.journal.next_lsn());
        };
        if !role.is_leading() {
            return Ok(self.journal.next_lsn());
        }
        self.barrier()?;
        role.set_following();
        tracing::info!(tenant = %self.name, sequence = self.journal.next_lsn(), "stopped leading");
        Ok(self.journal.next_lsn())
    }

    /// Writes the journal buffer out and hands the group built since the
    /// last hand-off to the syncer. Does nothing when the group is empty.
    pub(super) fn hand_off(&mut self) {
        if !self.appended && self.pending.is_empty() && self.group_events.is_empty() {
            return;
        }
        if let Some(failure) = self.failure.get().cloned() {
            self.fail(failure);
            return;
        }
        let ticket = match self.journal.prepare_sync() {
            Ok(ticket) => ticket,
            Err(error) => return self.fail(StorageFailure::new("write", error)),
        };
        let (events, acks) = self.recycled.try_recv().unwrap_or_default();
        let (records, first_sequence) = match &mut self.cluster {
            Some(cluster) => (std::mem::take(&mut cluster.outgoing), cluster.first_sequence),
            None => (Vec::new(), 0),
        };
        let group = Group {
            ticket,
            events: std::mem::replace(&mut self.group_events, events),
            acks: std::mem::replace(&mut self.pending, acks),
            records,
            first_sequence,
        };
        self.appended = false;
        if let Err(crossbeam_channel::SendError(SyncJob::Group(group))) =
            self.jobs.send(SyncJob::Group(group))
        {
            // The syncer is gone: stopped on purpose (after the sequencer's
            // last barrier), or dead, which stops the tenant.
            let died = self.syncer.is_some();
            if died {
                let _ = self.failure.set(StorageFailure::plain("the journal syncer stopped"));
            }
            for pending in group.acks {
                let error = match self.failure.get() {
                    Some(failure) if died => TenantError::JournalUnavailable(failure.clone()),
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
    pub(super) fn barrier(&mut self) -> Result<(), TenantError> {
        self.hand_off();
        let (done, wait) = crossbeam_channel::bounded(1);
        if self.jobs.send(SyncJob::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
        self.update_gauges();
        match self.failure.get() {
            Some(failure) => Err(TenantError::JournalUnavailable(failure.clone())),
            None => Ok(()),
        }
    }

    /// Ends the syncer after what it holds (call after [`Sequencer::barrier`]).
    pub(super) fn stop_syncer(&mut self) {
        let (closed, _) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
    }

    pub(super) fn update_gauges(&mut self) {
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

    pub(super) fn erase(&mut self, customer: Id) -> Result<ErasureReport, TenantError> {
        if let Some(cluster) = &self.cluster
            && !cluster.role.is_leading()
        {
            return Err(TenantError::NotLeader { leader: cluster.role.holder() });
        }
        self.barrier()?;
        let record = Record {
            at_ms: self.state.time_for(wall_ms()),
            command: Command::EraseCustomer { customer: customer.clone() },
        };
        let applied = self.state.apply(&record, &mut self.group_events)?;
        self.append(&record)?;
        // Drop what subscribers could still read about them and about their
        // earlier conversations, then publish the events that report the
        // erasure (which carry nothing but the ids).
        let (events_removed, webhook_events_removed, conversations) =
            self.purge_erased(&applied)?;
        self.barrier()?;
        let (journal_segments_removed, snapshots_removed, snapshot_lsn) = self.compact()?;
        tracing::info!(tenant = %self.name, conversations, "customer erased");
        Ok(ErasureReport {
            customer,
            conversations: applied.erased_names,
            events_removed,
            journal_segments_removed,
            snapshots_removed,
            webhook_events_removed,
            snapshot_lsn,
        })
    }
}
