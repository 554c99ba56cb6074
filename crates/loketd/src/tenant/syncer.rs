//! The syncer thread: makes handed-off groups durable, then publishes their
//! events and answers their handlers, in order.

use super::*;

pub(super) struct PendingAck {
    pub(super) reply: Reply<Ack>,
    pub(super) ack: Ack,
    pub(super) ingest: Instant,
}

/// Applied commands on their way to disk: synced by the [`Syncer`], then
/// published and answered.
pub(super) struct Group {
    /// Syncing it makes every record of the group durable.
    pub(super) ticket: SyncTicket,
    pub(super) events: Vec<SeqEvent>,
    pub(super) acks: Vec<PendingAck>,
    /// In a cluster, the group's records for the tenant's stream, the first
    /// at stream sequence `first_sequence`.
    pub(super) records: Vec<bytes::Bytes>,
    pub(super) first_sequence: u64,
}

pub(super) enum SyncJob {
    Group(Group),
    /// Answered once every group sent before it is durable and answered
    /// (or refused, if the journal failed).
    Barrier(crossbeam_channel::Sender<()>),
}

/// Buffers the syncer hands back for the sequencer's next groups.
pub(super) const RECYCLED_BUFFERS: usize = 8;
/// Groups (and barriers) waiting for the syncer before handing off blocks.
pub(super) const SYNC_QUEUE: usize = 256;

/// The tenant's second thread: makes handed-off groups durable, then
/// publishes their events and answers their handlers, in order.
pub(super) struct Syncer {
    pub(super) name: String,
    pub(super) events: Arc<EventLog>,
    pub(super) metrics: Arc<TenantMetrics>,
    pub(super) fsync: FsyncPolicy,
    pub(super) fsync_every: Duration,
    pub(super) last_sync: Instant,
    /// Set once, by whichever thread first finds the journal broken.
    pub(super) failure: Arc<OnceLock<Failure>>,
    pub(super) healthy: Arc<AtomicBool>,
    pub(super) recycle: Sender<(Vec<SeqEvent>, Vec<PendingAck>)>,
    /// In a cluster: the tenant's stream, which makes records durable
    /// instead of the local `fdatasync` (the local journal is rebuilt from
    /// the stream on start).
    pub(super) stream: Option<StreamLink>,
    /// With webhooks: spools the durable events endpoints want.
    pub(super) webhooks: Option<Spooler>,
}

/// What the syncer needs to spool events for webhooks: the store, and the
/// router and ids that name skills and conversations in their bodies.
pub(super) struct Spooler {
    pub(super) store: Arc<WebhookStore>,
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) ids: Arc<parking_lot::RwLock<TenantIds>>,
}

impl Syncer {
    pub(super) fn run(mut self, jobs: &Receiver<SyncJob>) {
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

    /// Appends every record of `groups` (consecutive, in order) to the
    /// stream in one pipelined run; the time it took.
    fn append_to_stream(stream: &StreamLink, groups: &[Group]) -> Result<Duration, Failure> {
        let started = Instant::now();
        let Some(first) = groups.iter().find(|group| !group.records.is_empty()) else {
            return Ok(Duration::ZERO);
        };
        let records: Vec<bytes::Bytes> =
            groups.iter().flat_map(|group| group.records.iter().cloned()).collect();
        stream
            .append_blocking(first.first_sequence, &records)
            .map(|()| started.elapsed())
            .map_err(|error| StorageFailure::new("appending to the stream", error))
    }

    /// One `fdatasync` for all `groups` (the last ticket covers the earlier
    /// ones: a rotation syncs the segment it leaves), then publication and
    /// answers; or refusals if the journal failed.
    pub(super) fn commit(&mut self, groups: &mut Vec<Group>) {
        let Some(last) = groups.last() else { return };
        let synced = match (self.failure.get(), &self.stream) {
            (Some(failure), _) => Err(failure.clone()),
            (None, None) => last.ticket.sync().map_err(|error| StorageFailure::new("sync", error)),
            (None, Some(stream)) => Self::append_to_stream(stream, groups),
        };
        match synced {
            Ok(took) => {
                if !took.is_zero() {
                    self.metrics.fsync.record(took.as_secs_f64());
                }
                self.last_sync = Instant::now();
                for Group { mut events, mut acks, .. } in groups.drain(..) {
                    self.events.publish(&events);
                    if let Some(spooler) = &self.webhooks {
                        let ids = spooler.ids.read();
                        spooler.store.spool(&events, spooler.pipeline.router(), &ids);
                    }
                    self.metrics.record_events(events.iter().filter_map(|e| e.event.routed()));
                    for pending in acks.drain(..) {
                        self.metrics.ingest_to_ack.record(pending.ingest.elapsed().as_secs_f64());
                        let _ = pending.reply.send(Ok(pending.ack));
                    }
                    events.clear();
                    let _ = self.recycle.try_send((events, acks));
                }
            }
            Err(failure) => {
                if self.failure.set(failure.clone()).is_ok() {
                    tracing::error!(tenant = %self.name, reason = %failure.describe(), "journal failed; refusing commands from now on");
                }
                self.healthy.store(false, Ordering::Relaxed);
                let failure = self.failure.get().cloned().unwrap_or(failure);
                // Undurable events are never published.
                for group in groups.drain(..) {
                    for pending in group.acks {
                        let _ = pending
                            .reply
                            .send(Err(TenantError::JournalUnavailable(failure.clone())));
                    }
                }
            }
        }
    }
}
