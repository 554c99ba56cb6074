//! What webhooks keep on disk: the tenant's outbox of events waiting for
//! delivery, and each endpoint's state (cursors, dead letters, disabled).

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use loket_ids::TenantIds;
use loket_journal::{Journal, JournalOptions};
use loket_router::Router;
use loket_seal::{Keyring, Opened, Purpose};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::endpoint::{DeadLetter, Durable, Endpoint, EndpointState, EndpointStatus};
use super::{Entry, EntryError, event_type_index, type_mask};
use crate::config::WebhookConfig;
use crate::events::EventJson;
use crate::state::SeqEvent;

/// Outbox segments are small, so delivered events leave the disk soon.
const OUTBOX_SEGMENT_BYTES: u64 = 4 << 20;
/// Entries a lane looks through, under the outbox lock, per call.
const SCAN_LIMIT: usize = 4_096;

/// Why the webhook files cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum WebhookStoreError {
    /// The outbox journal.
    #[error("webhook outbox: {0}")]
    Outbox(#[from] loket_journal::Error),
    /// An outbox record that does not open with the tenant's keys.
    #[error("webhook outbox record {lsn}: {source}")]
    Sealed {
        /// Its lsn.
        lsn: u64,
        /// Why.
        source: loket_seal::SealError,
    },
    /// An outbox record that is not one.
    #[error("webhook outbox record {lsn}: {source}")]
    Record {
        /// Its lsn.
        lsn: u64,
        /// Why.
        source: EntryError,
    },
    /// An endpoint's state file.
    #[error("webhook state file {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file.
    #[error("webhook files in {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

struct Outbox {
    journal: Journal,
    /// Spooled events not yet behind every enabled endpoint's cursors.
    entries: VecDeque<(u64, Arc<Entry>)>,
    /// The highest sequence number spooled (or known to be delivered).
    last_seq: u64,
    scratch: Vec<u8>,
    /// The journal failed: nothing more is spooled (the events are still
    /// spooled again by replay after a restart).
    broken: bool,
}

/// What a lane finds next.
#[derive(Debug)]
pub enum Next {
    /// An event for it.
    Entry(Arc<Entry>),
    /// Nothing for it below this sequence number; more to look through.
    Skip(u64),
    /// Nothing for it below this sequence number; wait for more.
    Wait(u64),
}

/// A tenant's webhook outbox and endpoints (module docs).
pub struct WebhookStore {
    tenant: String,
    dir: PathBuf,
    keyring: Option<Arc<Keyring>>,
    /// The event types any endpoint wants.
    wanted: u32,
    outbox: Mutex<Outbox>,
    latest: watch::Sender<u64>,
    endpoints: Vec<Arc<Endpoint>>,
}

impl std::fmt::Debug for WebhookStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookStore")
            .field("tenant", &self.tenant)
            .field("endpoints", &self.endpoints.len())
            .finish_non_exhaustive()
    }
}

impl WebhookStore {
    /// Opens the webhook files of `tenant` in `dir` (created if missing)
    /// for the endpoints of `configs`; `None` without endpoints.
    ///
    /// # Errors
    /// An outbox or state file that cannot be read, opened or decoded,
    /// named.
    pub fn open(
        tenant: &str,
        dir: &Path,
        configs: &[WebhookConfig],
        keyring: Option<Arc<Keyring>>,
    ) -> Result<Option<Arc<WebhookStore>>, WebhookStoreError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| WebhookStoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let options = JournalOptions { segment_bytes: OUTBOX_SEGMENT_BYTES, ..Default::default() };
        let (mut journal, _) = Journal::open(dir.join("outbox"), options)?;
        let mut entries = VecDeque::new();
        let mut last_seq = 0;
        {
            let mut reader = journal.records_from(journal.first_lsn())?;
            while let Some(found) = reader.next_record()? {
                let lsn = found.lsn;
                let plain = loket_seal::open(keyring.as_deref(), Purpose::Webhook, found.payload)
                    .map_err(|source| WebhookStoreError::Sealed { lsn, source })?;
                let entry = match &plain {
                    Opened::Plain(bytes) => Entry::decode(bytes),
                    Opened::Sealed(bytes) => Entry::decode(bytes),
                }
                .map_err(|source| WebhookStoreError::Record { lsn, source })?;
                last_seq = last_seq.max(entry.seq);
                entries.push_back((lsn, Arc::new(entry)));
            }
        }
        let mut endpoints = Vec::with_capacity(configs.len());
        for config in configs {
            let name = config.endpoint_name();
            let path = dir.join(format!("{name}.state"));
            let lanes = config.lanes.max(1) as usize;
            let mut fresh = false;
            let durable = match std::fs::read(&path) {
                Ok(bytes) => {
                    let mut durable =
                        decode_state(keyring.as_deref(), &bytes).map_err(|reason| {
                            WebhookStoreError::State { path: path.clone(), reason }
                        })?;
                    if durable.cursors.len() != lanes {
                        // Lanes changed: every lane starts at the oldest
                        // cursor (at least once: some events come again).
                        let oldest = durable.cursors.iter().copied().min().unwrap_or(0);
                        durable.cursors = vec![oldest; lanes];
                    }
                    durable
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    // Placed by `begin`, once the tenant has recovered.
                    fresh = true;
                    Durable { cursors: vec![0; lanes], disabled: None, dead: Vec::new() }
                }
                Err(error) => return Err(io(&path)(error)),
            };
            endpoints.push(Arc::new(Endpoint {
                mask: type_mask(&config.events),
                config: config.clone(),
                name,
                state: Mutex::new(EndpointState {
                    durable,
                    dirty: true,
                    redeliver: VecDeque::new(),
                    last_error: None,
                    fresh,
                }),
                wake: Notify::new(),
            }));
        }
        let store = Arc::new(WebhookStore {
            tenant: tenant.to_owned(),
            dir: dir.to_owned(),
            keyring,
            wanted: endpoints.iter().fold(0, |mask, e| mask | e.mask),
            outbox: Mutex::new(Outbox {
                journal,
                entries,
                last_seq,
                scratch: Vec::new(),
                broken: false,
            }),
            latest: watch::channel(last_seq).0,
            endpoints,
        });
        store.trim()?;
        Ok(Some(store))
    }

    /// Once the tenant has recovered, with the sequence number its next
    /// event gets: an endpoint configured since the last start receives
    /// the events from here on (on a tenant's first start, all of them).
    pub fn begin(&self, next_seq: u64) {
        for endpoint in &self.endpoints {
            let mut state = endpoint.state.lock();
            if std::mem::take(&mut state.fresh) {
                state.durable.cursors.iter_mut().for_each(|cursor| *cursor = next_seq);
                state.dirty = true;
            }
        }
    }

    /// Enables `endpoint` again (after a 410): it receives the events
    /// spooled from now on. Whether it was disabled.
    pub fn enable(&self, endpoint: &Endpoint) -> bool {
        let from = self.outbox.lock().last_seq + 1;
        endpoint.enable(from)
    }

    /// The tenant's name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The endpoints, in configuration order.
    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// The endpoint named `name`.
    pub fn endpoint(&self, name: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|endpoint| endpoint.name == name)
    }

    /// Wakes when something is spooled.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Spools the events (in sequence order) that an endpoint wants and that
    /// are not spooled yet, each rendered once as its request body. Called
    /// with events once durable (the syncer) and by replay.
    pub fn spool(&self, events: &[SeqEvent], router: &Router, ids: &TenantIds) {
        let mut outbox = self.outbox.lock();
        if outbox.broken {
            return;
        }
        let before = outbox.last_seq;
        for event in events {
            if event.seq <= outbox.last_seq {
                continue;
            }
            outbox.last_seq = event.seq;
            let type_index = event_type_index(&event.event);
            if self.wanted & (1 << type_index) == 0 {
                continue;
            }
            let json = EventJson::new(event, router, ids);
            let body = Body {
                kind: super::EVENT_TYPES[type_index],
                timestamp: rfc3339(json.at),
                tenant: &self.tenant,
                data: &json,
            };
            let body = match serde_json::to_vec(&body) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(tenant = %self.tenant, seq = event.seq, %error, "rendering a webhook event");
                    continue;
                }
            };
            let entry = Entry {
                seq: event.seq,
                at_ms: json.at,
                type_index: type_index as u8,
                conversation: event.event.conversation().map(|c| c.0),
                body: Bytes::from(body),
            };
            if let Err(error) = self.append(&mut outbox, Arc::new(entry)) {
                tracing::error!(tenant = %self.tenant, %error, "webhook outbox failed; events after it are delivered after a restart");
                outbox.broken = true;
                break;
            }
        }
        if outbox.last_seq != before {
            let last = outbox.last_seq;
            drop(outbox);
            self.latest.send_replace(last);
        }
    }

    fn append(&self, outbox: &mut Outbox, entry: Arc<Entry>) -> Result<(), WebhookStoreError> {
        outbox.scratch.clear();
        entry.encode(&mut outbox.scratch);
        let lsn = match &self.keyring {
            Some(keyring) => {
                let sealed =
                    keyring.sealed(Purpose::Webhook, &outbox.scratch).map_err(|source| {
                        WebhookStoreError::Sealed { lsn: outbox.journal.next_lsn(), source }
                    })?;
                outbox.journal.append(&sealed)?
            }
            None => {
                let Outbox { journal, scratch, .. } = outbox;
                journal.append(scratch)?
            }
        };
        outbox.entries.push_back((lsn, entry));
        Ok(())
    }

    /// Makes every spooled event durable (before a snapshot lets the
    /// journal behind it go).
    ///
    /// # Errors
    /// The outbox's journal failed.
    pub fn sync(&self) -> Result<(), WebhookStoreError> {
        let mut outbox = self.outbox.lock();
        if outbox.broken {
            return Err(WebhookStoreError::Io {
                path: self.dir.join("outbox"),
                source: std::io::Error::other("the outbox failed earlier"),
            });
        }
        outbox.journal.sync()?;
        Ok(())
    }

    /// What lane `lane` of `endpoint` delivers next at or after `from`.
    pub fn next_for(&self, endpoint: &Endpoint, lane: usize, from: u64) -> Next {
        let outbox = self.outbox.lock();
        let start = outbox.entries.partition_point(|(_, entry)| entry.seq < from);
        for (_, entry) in outbox.entries.range(start..).take(SCAN_LIMIT) {
            if endpoint.wants(entry, lane) {
                return Next::Entry(entry.clone());
            }
        }
        match outbox.entries.get(start + SCAN_LIMIT) {
            Some((_, entry)) => Next::Skip(entry.seq),
            None => Next::Wait(from.max(outbox.last_seq + 1)),
        }
    }

    /// Events waiting for `endpoint`, and the time of the oldest.
    pub fn pending(&self, endpoint: &Endpoint) -> (usize, Option<u64>) {
        let cursors = endpoint.state.lock().durable.cursors.clone();
        let outbox = self.outbox.lock();
        let oldest = cursors.iter().copied().min().unwrap_or(0);
        let start = outbox.entries.partition_point(|(_, entry)| entry.seq < oldest);
        let mut count = 0;
        let mut first = None;
        for (_, entry) in outbox.entries.range(start..) {
            let lane = endpoint.lane_of(entry);
            if endpoint.mask & (1 << entry.type_index) != 0 && entry.seq >= cursors[lane] {
                count += 1;
                first.get_or_insert(entry.at_ms);
            }
        }
        (count, first)
    }

    /// What the API shows of `endpoint`.
    pub fn status(&self, endpoint: &Endpoint) -> EndpointStatus {
        let (pending, _) = self.pending(endpoint);
        let state = endpoint.state.lock();
        EndpointStatus {
            name: endpoint.name.clone(),
            url: endpoint.config.url.clone(),
            events: endpoint.config.events.clone(),
            enabled: state.durable.disabled.is_none(),
            disabled_reason: state.durable.disabled.clone(),
            pending,
            dead_letters: state.dead_letter_count(),
            cursor: state.durable.cursors.iter().copied().min().unwrap_or(0),
            last_error: state.last_error.clone(),
        }
    }

    /// Writes the state of every endpoint that changed (atomically: a new
    /// file renamed over the old), then lets the outbox go behind the
    /// slowest enabled cursor.
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn flush(&self) -> Result<(), WebhookStoreError> {
        let mut wrote = false;
        for endpoint in &self.endpoints {
            let durable = {
                let mut state = endpoint.state.lock();
                if !state.dirty {
                    continue;
                }
                state.dirty = false;
                Endpoint::durable_with_queue(&state)
            };
            let path = self.dir.join(format!("{}.state", endpoint.name));
            if let Err(error) = self.write_state(&path, &durable) {
                endpoint.state.lock().dirty = true;
                return Err(error);
            }
            wrote = true;
        }
        if wrote {
            let dir = std::fs::File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|source| WebhookStoreError::Io { path: self.dir.clone(), source });
            dir?;
        }
        self.trim()
    }

    fn write_state(&self, path: &Path, durable: &Durable) -> Result<(), WebhookStoreError> {
        let io = |source| WebhookStoreError::Io { path: path.to_owned(), source };
        let plain = serde_json::to_vec(durable).map_err(|e| io(std::io::Error::other(e)))?;
        let bytes = match &self.keyring {
            Some(keyring) => keyring.sealed(Purpose::Webhook, &plain).map_err(|e| {
                WebhookStoreError::State { path: path.to_owned(), reason: e.to_string() }
            })?,
            None => plain,
        };
        let tmp = path.with_extension("state.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Drops the events behind every enabled endpoint's cursors, from memory
    /// and (by whole segments) from disk.
    fn trim(&self) -> Result<(), WebhookStoreError> {
        let behind = self
            .endpoints
            .iter()
            .filter_map(|endpoint| {
                let state = endpoint.state.lock();
                match state.durable.disabled {
                    Some(_) => None,
                    None => state.durable.cursors.iter().copied().min(),
                }
            })
            .min();
        let mut outbox = self.outbox.lock();
        let behind = behind.unwrap_or(outbox.last_seq + 1);
        while outbox.entries.front().is_some_and(|(_, entry)| entry.seq < behind) {
            outbox.entries.pop_front();
        }
        if outbox.broken {
            return Ok(());
        }
        let keep_from = outbox.entries.front().map_or(outbox.journal.next_lsn(), |(lsn, _)| *lsn);
        outbox.journal.remove_before(keep_from)?;
        Ok(())
    }

    /// Erasure: removes every event about one of `conversations` from the
    /// outbox (rewriting it, so no file keeps them) and from the dead
    /// letters, and writes the endpoints' states. How many events were
    /// removed (an event in both counts once).
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn purge(&self, conversations: &BTreeSet<u64>) -> Result<usize, WebhookStoreError> {
        let about = |c: Option<u64>| c.is_some_and(|c| conversations.contains(&c));
        self.remove_where(|entry| about(entry.conversation), |letter| about(letter.conversation))
    }

    /// Retention: removes the waiting events that happened before
    /// `cutoff_ms` and the dead letters given up before it, as
    /// [`WebhookStore::purge`] does. How many.
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn expire(&self, cutoff_ms: u64) -> Result<usize, WebhookStoreError> {
        self.remove_where(|entry| entry.at_ms < cutoff_ms, |letter| letter.failed_at_ms < cutoff_ms)
    }

    fn remove_where(
        &self,
        doomed_entry: impl Fn(&Entry) -> bool,
        doomed_letter: impl Fn(&DeadLetter) -> bool,
    ) -> Result<usize, WebhookStoreError> {
        let mut removed = BTreeSet::new();
        {
            let mut outbox = self.outbox.lock();
            let before = outbox.entries.len();
            outbox.entries.retain(|(_, entry)| {
                let keep = !doomed_entry(entry);
                if !keep {
                    removed.insert(entry.seq);
                }
                keep
            });
            if outbox.entries.len() < before && !outbox.broken {
                // Rewrite what is left into a new segment, then drop every
                // older one.
                outbox.journal.rotate()?;
                let first_new = outbox.journal.next_lsn();
                let kept: Vec<Arc<Entry>> =
                    outbox.entries.drain(..).map(|(_, entry)| entry).collect();
                for entry in kept {
                    self.append(&mut outbox, entry)?;
                }
                outbox.journal.sync()?;
                outbox.journal.rotate()?;
                outbox.journal.remove_before(first_new)?;
            }
        }
        for endpoint in &self.endpoints {
            let mut state = endpoint.state.lock();
            let before = state.dead_letter_count();
            let mut keep = |letter: &DeadLetter| {
                let keep = !doomed_letter(letter);
                if !keep {
                    removed.insert(letter.seq);
                }
                keep
            };
            state.durable.dead.retain(&mut keep);
            state.redeliver.retain(&mut keep);
            if state.dead_letter_count() < before {
                state.dirty = true;
            }
        }
        if !removed.is_empty() {
            self.flush()?;
        }
        Ok(removed.len())
    }
}

/// The request body: the Standard Webhooks payload structure.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    tenant: &'a str,
    data: &'a EventJson<'a>,
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: u64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default();
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An endpoint's state file, opened with `keyring` and parsed.
///
/// # Errors
/// What is wrong with the file; never panics.
pub fn decode_state_file(keyring: Option<&Keyring>, bytes: &[u8]) -> Result<(), String> {
    decode_state(keyring, bytes).map(drop)
}

fn decode_state(keyring: Option<&Keyring>, bytes: &[u8]) -> Result<Durable, String> {
    let opened = loket_seal::open(keyring, Purpose::Webhook, bytes).map_err(|e| e.to_string())?;
    let plain: &[u8] = match &opened {
        Opened::Plain(bytes) => bytes,
        Opened::Sealed(bytes) => bytes,
    };
    serde_json::from_slice(plain).map_err(|e| e.to_string())
}
