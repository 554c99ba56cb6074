//! Opening a tenant: its snapshot and journal read back, the state rebuilt
//! by the same code as live, the first start's agents registered, its
//! threads started.

use super::*;
use crate::cluster::snapshots::{Start, choose_start};
use crate::cluster::{SnapshotSource, StartedFrom};

impl Tenant {
    /// Opens (recovering from its data directory) and starts one tenant.
    pub fn open(config: &TenantConfig, daemon: &Config) -> Result<Arc<Tenant>, TenantError> {
        Tenant::open_on(config, daemon, None)
    }

    /// Opens one tenant; with `stream`, as a follower in a cluster: from
    /// its newest local snapshot and the stream after it (the local journal
    /// is rebuilt from the stream, which holds only what was acknowledged).
    pub fn open_on(
        config: &TenantConfig,
        daemon: &Config,
        stream: Option<StreamLink>,
    ) -> Result<Arc<Tenant>, TenantError> {
        let startup =
            |source: StartupError| TenantError::Startup { tenant: config.name.clone(), source };
        let dir = tenant_dir(&daemon.data_dir, &config.name);
        let catalog = load_catalog(config).map_err(startup)?;
        let model: SharedModel = match &config.model {
            Some(path) => Model::open(path)
                .map_err(|source| startup(StartupError::Model { path: path.clone(), source }))?
                .into(),
            None => Model::builtin().into(),
        };
        let keyring = match &config.encryption {
            Some(encryption) => {
                Some(Arc::new(encryption.keyring().map_err(|e| startup(StartupError::Key(e)))?))
            }
            None => None,
        };
        let webhooks = WebhookStore::open(
            &config.name,
            &dir.join("webhooks"),
            &config.webhooks,
            keyring.clone(),
        )
        .map_err(|e| startup(StartupError::Webhooks(e)))?;
        let store = SnapshotStore::open(dir.join("snapshots"))
            .map_err(|e| startup(StartupError::Snapshots(e)))?;
        // In a cluster the newest snapshot may be in the object store only
        // (a new node, or one the stream's trim left behind).
        let (downloaded, first_sequence) = match &stream {
            Some(stream) => {
                let (downloaded, first) =
                    fetch_newer_snapshot(&config.name, &store, stream).map_err(startup)?;
                (downloaded, Some(first))
            }
            None => (None, None),
        };
        let snapshot = match store.latest().map_err(|e| startup(StartupError::Snapshots(e)))? {
            Some(found) => {
                let opened = loket_seal::open(
                    keyring.as_deref(),
                    loket_seal::Purpose::Snapshot,
                    &found.bytes,
                )
                .map_err(|source| {
                    startup(StartupError::SnapshotSealed { path: found.path.clone(), source })
                })?;
                let decoded = match opened {
                    loket_seal::Opened::Plain(_) => {
                        rkyv::from_bytes::<TenantSnapshot, rkyv::rancor::Error>(&found.bytes)
                    }
                    loket_seal::Opened::Sealed(plain) => {
                        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(plain.len());
                        aligned.extend_from_slice(&plain);
                        rkyv::from_bytes::<TenantSnapshot, rkyv::rancor::Error>(&aligned)
                    }
                }
                .map_err(|source| {
                    startup(StartupError::SnapshotDecode { path: found.path.clone(), source })
                })?;
                if decoded.lsn != found.lsn {
                    return Err(startup(StartupError::SnapshotMisnamed {
                        path: found.path.clone(),
                        held: decoded.lsn,
                        named: found.lsn,
                    }));
                }
                Some(decoded)
            }
            None => None,
        };
        let start_lsn = snapshot.as_ref().map_or(0, |s| s.lsn);
        if let Some(first_sequence) = first_sequence
            && start_lsn + 1 < first_sequence
        {
            // A damaged newer snapshot was passed over for an older one.
            return Err(startup(StartupError::StreamTrimmed {
                first_sequence,
                newest_snapshot: Some(start_lsn).filter(|_| snapshot.is_some()),
            }));
        }
        let started_from = StartedFrom {
            snapshot_lsn: start_lsn,
            source: match &snapshot {
                None => SnapshotSource::None,
                Some(_) if downloaded == Some(start_lsn) => SnapshotSource::ObjectStore,
                Some(_) => SnapshotSource::Local,
            },
        };
        if stream.is_some() {
            remove_local_journal(&dir.join("journal")).map_err(|source| {
                startup(StartupError::Durability {
                    what: "clearing the local journal copy",
                    source: source.into(),
                })
            })?;
        }
        let options = JournalOptions {
            segment_bytes: daemon.journal.segment_bytes,
            start_lsn,
            ..JournalOptions::default()
        };
        let (mut journal, report) = Journal::open(dir.join("journal"), options)
            .map_err(|e| startup(StartupError::Journal(e)))?;
        // Replay must see the clock as it was: a restored tenant starts at its
        // snapshot's time, a fresh one at its first record's (so timers set
        // up when the router is built come out the same), a new one now.
        let clock_start = match (&snapshot, &stream) {
            (Some(snapshot), _) => snapshot.clock_ms,
            (None, Some(stream)) => {
                match stream.record_blocking(1).map_err(|e| startup(StartupError::Stream(e)))? {
                    Some(payload) => {
                        Record::open(0, &payload, keyring.as_deref())
                            .map_err(|e| startup(StartupError::Record(e)))?
                            .at_ms
                    }
                    None => wall_ms(),
                }
            }
            (None, None) => {
                let mut reader = journal
                    .records_from(journal.first_lsn())
                    .map_err(|e| startup(StartupError::Journal(e)))?;
                match reader.next_record().map_err(|e| startup(StartupError::Journal(e)))? {
                    Some(found) => {
                        Record::open(found.lsn, found.payload, keyring.as_deref())
                            .map_err(|e| startup(StartupError::Record(e)))?
                            .at_ms
                    }
                    None => wall_ms(),
                }
            }
        };
        let clock = Arc::new(ManualClock::new(Timestamp(clock_start)));
        let builder = Router::builder().config(config.router_config()).clock(clock.clone());
        let router = match &snapshot {
            Some(snapshot) => builder.restore(snapshot.router.clone()),
            None => builder.build(),
        }
        .map_err(|e| startup(StartupError::Router(e)))?;
        let pipeline = Arc::new(
            Pipeline::new(router, model, catalog, config.pipeline.clone())
                .map_err(|e| startup(StartupError::Pipeline(e)))?,
        );
        let mut state = TenantState::new(pipeline.clone(), clock, daemon.event_retention)
            .allow_new_skills(config.allow_new_skills);
        if let Some(retention) = config.retention_ms() {
            state = state.sweep_ids_every(retention / 4);
        }
        if config.reports.enabled {
            state = state
                .measure(config.meter_config())
                .map_err(|e| startup(StartupError::Reports(e)))?;
        }
        if let Some(snapshot) = &snapshot {
            state.restore(snapshot).map_err(|e| startup(StartupError::Restore(e)))?;
        }
        if report.dropped_bytes() > 0 {
            tracing::warn!(tenant = %config.name, dropped_bytes = report.dropped_bytes(), "journal tail was torn or corrupt and has been truncated");
        }
        if journal.first_lsn() > start_lsn {
            return Err(startup(StartupError::JournalGap {
                first: journal.first_lsn(),
                needed: start_lsn,
            }));
        }
        let ids = state.ids().clone();
        let metering = state.metering().cloned();
        let events = Arc::new(EventLog::new(daemon.event_retention, state.next_seq()));
        let metrics = Arc::new(TenantMetrics::new(&config.name));

        // Replay the journal after the snapshot.
        let started = Instant::now();
        let mut replayed = 0u64;
        let mut erasures = 0u64;
        let mut buffer = Vec::new();
        {
            let mut reader =
                journal.records_from(start_lsn).map_err(|e| startup(StartupError::Journal(e)))?;
            while let Some(found) =
                reader.next_record().map_err(|e| startup(StartupError::Journal(e)))?
            {
                let record = Record::open(found.lsn, found.payload, keyring.as_deref())
                    .map_err(|e| startup(StartupError::Record(e)))?;
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
                    if let Some(webhooks) = &webhooks {
                        webhooks.spool(&buffer, pipeline.router(), &ids.read());
                    }
                    buffer.clear();
                }
            }
        }
        events.publish(&buffer);
        if let Some(webhooks) = &webhooks {
            webhooks.spool(&buffer, pipeline.router(), &ids.read());
            webhooks.begin(state.next_seq());
        }
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
            stream: stream.clone(),
            webhooks: webhooks.clone().map(|store| Spooler {
                store,
                pipeline: pipeline.clone(),
                ids: ids.clone(),
            }),
        };
        let syncer = std::thread::Builder::new()
            .name(format!("loketd-sync-{}", config.name))
            .spawn(move || {
                let (failure, healthy) = (syncer.failure.clone(), syncer.healthy.clone());
                let run = std::panic::AssertUnwindSafe(|| syncer.run(&job_receiver));
                if std::panic::catch_unwind(run).is_err() {
                    // Nothing can be acknowledged any more: stop the tenant.
                    let _ = failure.set(StorageFailure::plain("the journal syncer stopped"));
                    healthy.store(false, Ordering::Relaxed);
                }
            })
            .map_err(|e| startup(StartupError::Thread("syncer", e)))?;
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
            cluster: None,
            keyring,
            webhooks: webhooks.clone(),
            retention: config.retention_ms().map(Retention::new),
        };
        // The first start's agents are commands like any other: journaled,
        // replayable. A single node journals them now; in a cluster the
        // first node to lead the empty stream does.
        let mut agents = Vec::new();
        if first_start {
            if config.demo_agents {
                agents.extend(demo::agents());
            }
            if let Some(path) = &config.agents {
                agents.extend(
                    demo::agents_from_file(path).map_err(|e| startup(StartupError::Agents(e)))?,
                );
            }
        }
        let role = stream
            .as_ref()
            .map(|_| Arc::new(TenantRole::follower(sequencer.journal.next_lsn(), started_from)));
        if let (Some(role), Some(stream)) = (&role, &stream) {
            sequencer.cluster = Some(SequencerCluster {
                role: role.clone(),
                snapshots: stream.snapshots().clone(),
                outgoing: Vec::new(),
                first_sequence: 0,
                first_agents: agents.into_iter().map(Command::UpsertAgent).collect(),
            });
        } else if first_start {
            for agent in agents {
                let record = Record {
                    at_ms: sequencer.state.time_for(wall_ms()),
                    command: Command::UpsertAgent(agent),
                };
                sequencer
                    .state
                    .apply(&record, &mut sequencer.group_events)
                    .map_err(|e| startup(StartupError::Agent(e)))?;
                sequencer.append(&record).map_err(|e| {
                    startup(StartupError::Durability {
                        what: "journaling the agents",
                        source: e.into(),
                    })
                })?;
            }
            sequencer.journal.sync().map_err(|e| startup(StartupError::Journal(e)))?;
            events.publish(&sequencer.group_events);
            if let Some(webhooks) = &webhooks {
                webhooks.spool(&sequencer.group_events, pipeline.router(), &ids.read());
            }
            sequencer.group_events.clear();
        }
        if erasures > 0 {
            // An erasure was journaled but its compaction may not have run.
            sequencer.compact().map_err(|e| {
                startup(StartupError::Durability {
                    what: "compacting after an erasure",
                    source: e.into(),
                })
            })?;
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
            .map_err(|e| startup(StartupError::Thread("sequencer", e)))?;
        Ok(Arc::new(Tenant {
            name: config.name.clone(),
            pipeline,
            ids,
            metering,
            allow_new_skills: config.allow_new_skills,
            store_text: config.store_text,
            events,
            metrics,
            limiter,
            requests,
            healthy,
            thread: Mutex::new(Some(thread)),
            cluster: role,
            webhooks,
        }))
    }
}

/// In a cluster: makes the newest snapshot the stream follows on from the
/// newest in `store`, downloading it when the object store's newest is
/// newer than the local one (see [`choose_start`]). Returns the
/// lsn downloaded, if any, and the stream's first sequence. Fails when the
/// stream was trimmed past every snapshot within reach.
fn fetch_newer_snapshot(
    tenant: &str,
    store: &SnapshotStore,
    stream: &StreamLink,
) -> Result<(Option<u64>, u64), StartupError> {
    let shelf = stream.snapshots();
    let mut attempts = 0;
    loop {
        let local = store.list().map_err(StartupError::Snapshots)?.last().map(|(lsn, _)| *lsn);
        let (first_sequence, _) = stream.bounds_blocking().map_err(StartupError::Stream)?;
        let objects = shelf.lsns_blocking().map_err(StartupError::SnapshotObjects)?;
        let lsn = match choose_start(local, &objects, first_sequence) {
            Ok(Start::Local(_)) => return Ok((None, first_sequence)),
            Ok(Start::Download(lsn)) => lsn,
            Err(trimmed) => {
                return Err(StartupError::StreamTrimmed {
                    first_sequence: trimmed.first_sequence,
                    newest_snapshot: trimmed.newest_snapshot,
                });
            }
        };
        match shelf.download_blocking(lsn) {
            Ok(bytes) => {
                store.write(lsn, &bytes).map_err(StartupError::Snapshots)?;
                let reason = match local {
                    None => "no local snapshot",
                    Some(local) if local + 1 < first_sequence => {
                        "the stream was trimmed past the local snapshot"
                    }
                    Some(_) => "newer than the local snapshot",
                };
                tracing::info!(
                    tenant,
                    lsn,
                    bytes = bytes.len(),
                    local_snapshot = local,
                    stream_first_sequence = first_sequence,
                    reason,
                    "snapshot downloaded from the object store"
                );
                return Ok((Some(lsn), first_sequence));
            }
            // Deleted between the listing and the download (newer ones
            // came): list again.
            Err(error) if attempts < 3 => {
                attempts += 1;
                tracing::warn!(tenant, lsn, %error, "snapshot download failed; listing again");
            }
            Err(error) => return Err(StartupError::SnapshotObjects(error)),
        }
    }
}

/// Deletes the segment files of a clustered tenant's local journal copy.
fn remove_local_journal(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

pub(super) fn load_catalog(config: &TenantConfig) -> Result<Option<Arc<Catalog>>, StartupError> {
    let mut builder = Catalog::builder();
    if let Some(path) = &config.synonyms {
        let text = std::fs::read_to_string(path)
            .map_err(|source| StartupError::SynonymsFile { path: path.clone(), source })?;
        let synonyms = Synonyms::parse(&text)
            .map_err(|source| StartupError::Synonyms { path: path.clone(), source })?;
        builder = builder.synonyms(synonyms);
    }
    let (catalog, report) = match &config.catalog {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|source| StartupError::CatalogFile { path: path.clone(), source })?;
            let jsonl = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson")
            });
            if jsonl {
                builder.from_jsonl_reader(std::io::BufReader::new(file))
            } else {
                builder.from_csv_reader(file)
            }
            .map_err(|source| StartupError::Catalog { path: path.clone(), source })?
        }
        None if config.demo_catalog => builder
            .from_csv_reader(demo::CATALOG.as_bytes())
            .map_err(|source| StartupError::Catalog { path: "demo".into(), source })?,
        None => return Ok(None),
    };
    if report.rejected > 0 {
        tracing::warn!(tenant = %config.name, rejected = report.rejected, "catalog rows rejected");
    }
    Ok(Some(Arc::new(catalog)))
}
