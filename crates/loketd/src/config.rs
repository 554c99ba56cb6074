//! Configuration: embedded defaults, then a TOML file, then `LOKETD_*`
//! environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use loket_pipeline::PipelineConfig;
use loket_router::RouterConfig;
use serde::{Deserialize, Serialize};

/// Everything `loketd` reads at start-up. `Config::default()` starts a
/// loopback daemon with one demo tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP/JSON API, event stream, metrics and health (default `127.0.0.1:7878`).
    pub listen: SocketAddr,
    /// Binary ingest protocol (default `127.0.0.1:7879`).
    pub binary_listen: SocketAddr,
    /// Journals and snapshots, one sub-directory per tenant.
    pub data_dir: PathBuf,
    /// Durability.
    pub journal: JournalConfig,
    /// Snapshots.
    pub snapshot: SnapshotConfig,
    /// Request, frame and connection limits.
    pub limits: LimitsConfig,
    /// Decisions and state changes kept per tenant for resuming event streams.
    pub event_retention: usize,
    /// Longest a graceful shutdown may take before the daemon exits anyway.
    pub shutdown_timeout_ms: u64,
    /// Leave the process's transparent huge pages (Linux) as the system
    /// and the parent process set them; `false`, the default, turns them
    /// off for all of the daemon's memory. Off by default because the
    /// kernel zeroes a whole 2 MiB page on the first touch of it, inside
    /// whichever allocation touched it, and on the test machine (a virtual
    /// machine) one such fault stalled a batch of decisions for 5-7 ms. The
    /// `loketd` binary applies this at start (`prctl(PR_SET_THP_DISABLE)`);
    /// a daemon embedded with [`crate::run`] leaves the process setting to
    /// its host program.
    pub huge_pages: bool,
    /// TLS on both listeners; plain TCP when left out.
    pub tls: Option<TlsConfig>,
    /// Run as one node of a cluster on NATS JetStream (`[cluster]`,
    /// docs/cluster.md); on its own when left out.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// The tenants. Each has its own agents, conversations, catalog and events.
    pub tenants: Vec<TenantConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            binary_listen: SocketAddr::from(([127, 0, 0, 1], 7879)),
            data_dir: PathBuf::from("loketd-data"),
            journal: JournalConfig::default(),
            snapshot: SnapshotConfig::default(),
            limits: LimitsConfig::default(),
            event_retention: 1 << 18,
            shutdown_timeout_ms: 10_000,
            huge_pages: false,
            tls: None,
            cluster: None,
            tenants: vec![TenantConfig::demo()],
        }
    }
}

/// When the journal is forced to disk. A message is acknowledged only once
/// the journal record holding it is on disk either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every group of commands (group commit): lowest latency per
    /// acknowledgement at low rates, most fsyncs.
    Always,
    /// At most every `fsync_every_ms`: acknowledgements wait for the next one.
    Interval,
}

/// The journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// `always` or `interval`.
    pub fsync: FsyncPolicy,
    /// With `interval`: milliseconds between fsyncs.
    pub fsync_every_ms: u64,
    /// A new segment file starts after this many bytes.
    pub segment_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig { fsync: FsyncPolicy::Interval, fsync_every_ms: 2, segment_bytes: 64 << 20 }
    }
}

/// Snapshots: the state at a journal position, so start-up replays only the
/// journal after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Take one after this many journal records (0 = never by count).
    pub every_records: u64,
    /// Take one after this many seconds with new records (0 = never by time).
    pub every_secs: u64,
    /// Snapshots kept (at least 1); the journal is kept back to the oldest.
    pub keep: usize,
    /// Write one on graceful shutdown, so the next start replays nothing.
    pub on_shutdown: bool,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig { every_records: 1_000_000, every_secs: 300, keep: 2, on_shutdown: true }
    }
}

/// Limits that protect the daemon from large, many or slow clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest HTTP request body.
    pub max_body_bytes: usize,
    /// Largest binary frame.
    pub max_frame_bytes: usize,
    /// Most messages in one batch (HTTP or binary).
    pub max_batch_messages: usize,
    /// Longest message text.
    pub max_text_bytes: usize,
    /// An HTTP request (other than the event stream) must finish within this.
    pub request_timeout_ms: u64,
    /// An HTTP client must send a request's headers within this long of
    /// connecting or of its previous response; otherwise the connection is
    /// closed (slow clients, idle keep-alive connections).
    pub header_timeout_ms: u64,
    /// A binary connection that sends nothing for this long is closed, and a
    /// client that does not read its acknowledgements for this long too.
    pub idle_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 4 << 20,
            max_frame_bytes: 4 << 20,
            max_batch_messages: 10_000,
            max_text_bytes: 4_096,
            request_timeout_ms: 10_000,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
        }
    }
}

/// TLS for the HTTP and the binary listener (rustls; TLS 1.2 and 1.3).
/// The files are read at start and again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Certificate authorities, PEM: when set, the binary listener accepts
    /// only clients with a certificate one of them signed. The HTTP
    /// listener authenticates by bearer token and does not ask for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// One tenant: a separate router, catalog, journal and event stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    /// Its name: letters, digits, `-` and `_` (also its data directory).
    pub name: String,
    /// Bearer tokens that act for this tenant.
    pub tokens: Vec<String>,
    /// Messages per second accepted (0 = no limit).
    pub rate_limit: u32,
    /// Messages accepted at once above the rate (default: one second's worth).
    pub rate_burst: u32,
    /// Register the built-in demo agents at first start.
    pub demo_agents: bool,
    /// Agents to register at first start (JSONL, the `loket route` format).
    pub agents: Option<PathBuf>,
    /// Catalog to load (CSV, or JSONL by extension `.jsonl`).
    pub catalog: Option<PathBuf>,
    /// Use the built-in demo garden-centre catalog when `catalog` is not set.
    pub demo_catalog: bool,
    /// Solr-style synonyms file for the catalog.
    pub synonyms: Option<PathBuf>,
    /// An intent model file; the built-in model when left out.
    pub model: Option<PathBuf>,
    /// Routing policy.
    pub router: RouterConfig,
    /// Scores to routing inputs.
    pub pipeline: PipelineConfig,
    /// Accept messages that ask for a skill no agent has ever had (they
    /// wait, with `why: no_skill`, until an agent has it). Off: such a
    /// message is refused with 422 `unknown_skill`, so a typo in a skill
    /// name never waits silently.
    pub allow_new_skills: bool,
    /// Keep what customers wrote in the journal. Off (the default): the
    /// journal keeps a message's ids, channel, language, scores and
    /// signals, all that replay needs to route it again, and never its
    /// text. On: the text too, for platforms that replay journals through
    /// another model.
    pub store_text: bool,
    /// Measuring reply times, SLAs and conversions (`[tenants.reports]`).
    pub reports: ReportsConfig,
    /// Encryption of the journal and snapshots at rest
    /// (`[tenants.encryption]`); off when left out.
    pub encryption: Option<EncryptionConfig>,
    /// Endpoints that receive the tenant's events as signed HTTP POSTs
    /// (`[[tenants.webhooks]]`).
    pub webhooks: Vec<WebhookConfig>,
    /// Days a closed conversation is kept: after that its customer's
    /// routing history, ids, events and order window end, and compaction
    /// removes it from snapshots and the journal. None: as long as the
    /// routing look-back and order window need them.
    pub retention_days: Option<f64>,
}

/// `[[tenants.webhooks]]`: one endpoint that receives the tenant's events,
/// signed per the Standard Webhooks specification (docs/loketd.md,
/// "Webhooks").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the endpoint in the API, the metrics and its files in the data
    /// directory: letters, digits, `-` and `_`. Left out: `wh-` and the
    /// first 12 hexadecimal digits of the SHA-256 of `url`.
    pub name: Option<String>,
    /// Where events are POSTed: `http://` or `https://`.
    pub url: String,
    /// The signing secret, `whsec_` and base64 (24 to 64 bytes decoded).
    pub secret: String,
    /// Event types sent (`assigned`, `escalated`, `sla_breached`, ...);
    /// `"*"` for all.
    pub events: Vec<String>,
    /// Deliveries running at once; a conversation always goes through the
    /// same lane, so its events arrive in order.
    pub lanes: u32,
    /// A delivery that has no answer after this long failed.
    pub timeout_ms: u64,
    /// The wait before each attempt: the first is made after
    /// `retry_schedule_ms[0]`, the second after `[1]` more, and after the
    /// last attempt fails the event goes to the dead-letter list.
    pub retry_schedule_ms: Vec<u64>,
}

/// The Standard Webhooks retry schedule: immediately, 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h, 14 h, 20 h and 24 h.
pub const WEBHOOK_RETRY_SCHEDULE_MS: [u64; 10] = [
    0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000,
    86_400_000,
];

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            name: None,
            url: String::new(),
            secret: String::new(),
            events: Vec::new(),
            lanes: 4,
            timeout_ms: 15_000,
            retry_schedule_ms: WEBHOOK_RETRY_SCHEDULE_MS.to_vec(),
        }
    }
}

impl WebhookConfig {
    /// The endpoint's name: `name`, or one derived from `url`.
    pub fn endpoint_name(&self) -> String {
        use sha2::Digest;
        match &self.name {
            Some(name) => name.clone(),
            None => {
                let digest = sha2::Sha256::digest(self.url.as_bytes());
                let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                format!("wh-{hex}")
            }
        }
    }

    /// What is wrong with it, if anything.
    pub fn problem(&self) -> Option<String> {
        let name = self.endpoint_name();
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Some(format!("name {name:?}: use 1 to 64 letters, digits, '-' or '_'"));
        }
        let scheme_ok = match self.url.parse::<hyper::Uri>() {
            Ok(uri) => matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some(),
            Err(_) => false,
        };
        if !scheme_ok {
            return Some(format!("{name}: url {:?} is not an http:// or https:// URL", self.url));
        }
        match self.secret.strip_prefix("whsec_") {
            None => return Some(format!("{name}: secret must start with whsec_")),
            Some(encoded) => {
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(encoded) {
                    Ok(key) if (24..=64).contains(&key.len()) => {}
                    Ok(key) => {
                        return Some(format!(
                            "{name}: secret is {} bytes after whsec_; use 24 to 64",
                            key.len()
                        ));
                    }
                    Err(_) => return Some(format!("{name}: secret is not base64 after whsec_")),
                }
            }
        }
        if self.events.is_empty() {
            return Some(format!("{name}: events is empty; list event types or \"*\""));
        }
        for event in &self.events {
            if event != "*" && !crate::webhooks::EVENT_TYPES.contains(&event.as_str()) {
                return Some(format!(
                    "{name}: unknown event type {event:?}; known: {}",
                    crate::webhooks::EVENT_TYPES.join(", ")
                ));
            }
        }
        if !(1..=64).contains(&self.lanes) {
            return Some(format!("{name}: lanes must be 1 to 64"));
        }
        if self.timeout_ms == 0 {
            return Some(format!("{name}: timeout_ms must be at least 1"));
        }
        if self.retry_schedule_ms.is_empty() {
            return Some(format!("{name}: retry_schedule_ms needs at least one attempt"));
        }
        None
    }
}

/// `[tenants.encryption]`: the journal's records and the snapshots sealed
/// with AES-256-GCM (docs/loketd.md, "Encryption at rest"). A key is 64
/// hexadecimal digits (`openssl rand -hex 32`), in a file or an
/// environment variable; exactly one of `key_file` and `key_env`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// A file holding the key that seals.
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the key that seals.
    pub key_env: Option<String>,
    /// Files holding keys that sealed earlier data: still opened, never
    /// sealed with (key rotation).
    pub previous_key_files: Vec<PathBuf>,
    /// Environment variables holding such earlier keys.
    pub previous_key_envs: Vec<String>,
}

impl EncryptionConfig {
    /// What is wrong with it, if anything (not reading the keys).
    pub fn problem(&self) -> Option<&'static str> {
        match (&self.key_file, &self.key_env) {
            (Some(_), Some(_)) => Some("set key_file or key_env, not both"),
            (None, None) => Some("set key_file or key_env"),
            _ => None,
        }
    }

    /// Reads the keys.
    ///
    /// # Errors
    /// The first key that cannot be read or is malformed, named.
    pub fn keyring(&self) -> Result<loket_seal::Keyring, loket_seal::SealError> {
        use loket_seal::Key;
        let current = match (&self.key_file, &self.key_env) {
            (Some(path), _) => Key::from_file(path)?,
            (None, Some(variable)) => Key::from_env(variable)?,
            (None, None) => return Err(loket_seal::SealError::KeyFormat("no key is set".into())),
        };
        let mut older = Vec::new();
        for path in &self.previous_key_files {
            older.push(Key::from_file(path)?);
        }
        for variable in &self.previous_key_envs {
            older.push(Key::from_env(variable)?);
        }
        Ok(loket_seal::Keyring::new(current, older))
    }
}

/// `[tenants.reports]`: what the tenant measures (docs/reports.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// Measure (default on). Off: replies and orders are refused and
    /// `/v1/reports` answers 404.
    pub enabled: bool,
    /// A conversation closed before any reply within this many ms of its
    /// first message is a short abandon (default 10 s).
    pub short_abandon_ms: u64,
    /// An order up to this long after the close still counts (default 1 h).
    pub order_window_ms: u64,
    /// Report intervals older than this are dropped (default 35 days).
    pub retention_ms: u64,
    /// Reply targets per channel, tier and intent prefix, and the warning
    /// fraction.
    pub sla: loket_report::SlaPolicy,
    /// Opening hours (`[tenants.reports.opening_hours]`): with them every
    /// clock is also reported in business hours (`wait_business_ms` and
    /// its twins).
    pub opening_hours: Option<loket_report::BusinessHours>,
}

impl Default for ReportsConfig {
    fn default() -> ReportsConfig {
        let meter = loket_report::MeterConfig::default();
        ReportsConfig {
            enabled: true,
            short_abandon_ms: meter.short_abandon_ms,
            order_window_ms: meter.order_window_ms,
            retention_ms: meter.retention_ms,
            sla: meter.sla,
            opening_hours: meter.opening_hours,
        }
    }
}

impl ReportsConfig {
    /// The meter's configuration.
    pub fn meter_config(&self) -> loket_report::MeterConfig {
        loket_report::MeterConfig {
            short_abandon_ms: self.short_abandon_ms,
            order_window_ms: self.order_window_ms,
            retention_ms: self.retention_ms,
            sla: self.sla.clone(),
            opening_hours: self.opening_hours.clone(),
        }
    }
}

impl TenantConfig {
    /// `retention_days` in ms, if set.
    pub fn retention_ms(&self) -> Option<u64> {
        self.retention_days.map(|days| (days * 86_400_000.0).round().max(1.0) as u64)
    }

    /// What measuring takes: `[tenants.reports]`, with the order window
    /// no longer than the retention.
    pub fn meter_config(&self) -> loket_report::MeterConfig {
        let mut meter = self.reports.meter_config();
        if let Some(retention) = self.retention_ms() {
            meter.order_window_ms = meter.order_window_ms.min(retention);
        }
        meter
    }

    /// The routing policy as the router takes it: `[tenants.router]`, with
    /// the first-reply targets of `sla_aware` queueing taken from the SLA
    /// defaults of `[tenants.reports.sla]` (one place to set them), and the
    /// affinity look-back no longer than the retention.
    pub fn router_config(&self) -> RouterConfig {
        let mut router = self.router.clone();
        if let Some(retention) = self.retention_ms() {
            router.affinity_lookback_ms = router.affinity_lookback_ms.min(retention);
        }
        for channel in loket_router::Channel::ALL {
            router.priority.sla_first_reply_ms[channel.index()] =
                self.reports.sla.defaults.get(channel).first_reply_ms;
        }
        router
    }

    /// The demo tenant: token `demo-token`, demo agents and catalog, bots first.
    pub fn demo() -> TenantConfig {
        TenantConfig {
            name: "demo".to_owned(),
            tokens: vec!["demo-token".to_owned()],
            demo_agents: true,
            demo_catalog: true,
            router: RouterConfig { bot_first: true, ..RouterConfig::default() },
            ..TenantConfig::default()
        }
    }
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable does not parse.
    #[error("configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    /// A value that parses but makes no sense.
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (if given), then `LOKETD_*` environment
    /// variables (`LOKETD_LISTEN`, `LOKETD_JOURNAL__FSYNC`, ...: nested keys
    /// joined by `__`; `LOKETD_LOG` is the log filter, not configuration),
    /// then checked.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!("{} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        let mut config: Config = figment
            .merge(Env::prefixed("LOKETD_").ignore(&["LOG"]).split("__"))
            .extract()
            .map_err(Box::new)?;
        if let Some(folder) = file.and_then(Path::parent) {
            config.resolve_tenant_files(folder);
        }
        config.check()?;
        Ok(config)
    }

    /// Makes the tenants' relative file paths (agents, catalog, synonyms,
    /// model) and the TLS files relative to `folder`, the configuration
    /// file's: a file and the data it names move together.
    pub fn resolve_tenant_files(&mut self, folder: &Path) {
        if let Some(cluster) = &mut self.cluster {
            cluster.resolve_files(folder);
        }
        if let Some(tls) = &mut self.tls {
            for path in [&mut tls.cert, &mut tls.key].into_iter().chain(tls.client_ca.as_mut()) {
                if path.is_relative() {
                    *path = folder.join(&*path);
                }
            }
        }
        for tenant in &mut self.tenants {
            let encryption = tenant.encryption.as_mut().into_iter().flat_map(|encryption| {
                encryption.key_file.iter_mut().chain(&mut encryption.previous_key_files)
            });
            for path in
                [&mut tenant.agents, &mut tenant.catalog, &mut tenant.synonyms, &mut tenant.model]
                    .into_iter()
                    .flatten()
                    .chain(encryption)
            {
                if path.is_relative() {
                    *path = folder.join(&*path);
                }
            }
        }
    }

    /// Checks what serde cannot: names, tokens, limits.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.tenants.is_empty() {
            return invalid("at least one tenant is needed".to_owned());
        }
        let mut names = std::collections::BTreeSet::new();
        let mut tokens = std::collections::BTreeSet::new();
        for tenant in &self.tenants {
            let name_ok = !tenant.name.is_empty()
                && tenant.name.len() <= 64
                && tenant.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return invalid(format!(
                    "tenant name {:?}: use 1 to 64 letters, digits, '-' or '_'",
                    tenant.name
                ));
            }
            if !names.insert(tenant.name.as_str()) {
                return invalid(format!("tenant {:?} is configured twice", tenant.name));
            }
            if let Some(problem) = tenant.encryption.as_ref().and_then(EncryptionConfig::problem) {
                return invalid(format!(
                    "tenant {:?}: [tenants.encryption]: {problem}",
                    tenant.name
                ));
            }
            if tenant.reports.enabled
                && let Err(error) = tenant.meter_config().validate()
            {
                return invalid(format!("tenant {:?}: [tenants.reports]: {error}", tenant.name));
            }
            if let Some(days) = tenant.retention_days {
                if !(days.is_finite() && days > 0.0 && days <= 36_500.0) {
                    return invalid(format!(
                        "tenant {:?}: retention_days is {days}; use more than 0 and at most 36500",
                        tenant.name
                    ));
                }
                if self.cluster.is_some() {
                    return invalid(format!(
                        "tenant {:?}: retention_days is not supported in a cluster yet",
                        tenant.name
                    ));
                }
            }
            let mut endpoints = std::collections::BTreeSet::new();
            for webhook in &tenant.webhooks {
                if let Some(problem) = webhook.problem() {
                    return invalid(format!(
                        "tenant {:?}: [[tenants.webhooks]]: {problem}",
                        tenant.name
                    ));
                }
                if !endpoints.insert(webhook.endpoint_name()) {
                    return invalid(format!(
                        "tenant {:?}: [[tenants.webhooks]]: two endpoints are named {:?}; give one a name",
                        tenant.name,
                        webhook.endpoint_name()
                    ));
                }
                if self.cluster.is_some() {
                    return invalid(format!(
                        "tenant {:?}: [[tenants.webhooks]] is not supported in a cluster yet",
                        tenant.name
                    ));
                }
            }
            if tenant.tokens.is_empty() {
                return invalid(format!("tenant {:?} has no token", tenant.name));
            }
            for token in &tenant.tokens {
                if token.len() < 8 {
                    return invalid(format!(
                        "tenant {:?}: tokens must be at least 8 characters",
                        tenant.name
                    ));
                }
                if !tokens.insert(token.as_str()) {
                    return invalid(format!("a token of tenant {:?} is used twice", tenant.name));
                }
            }
        }
        if self.snapshot.keep == 0 {
            return invalid("snapshot.keep must be at least 1".to_owned());
        }
        if self.limits.max_batch_messages == 0 || self.limits.max_frame_bytes < 64 {
            return invalid(
                "limits.max_batch_messages and limits.max_frame_bytes are too small".to_owned(),
            );
        }
        if self.journal.fsync == FsyncPolicy::Interval && self.journal.fsync_every_ms == 0 {
            return invalid(
                "journal.fsync_every_ms must be at least 1 with fsync = \"interval\"".to_owned(),
            );
        }
        if let Some(problem) = self.cluster.as_ref().and_then(|c| c.problem()) {
            return invalid(problem);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_start_one_demo_tenant_on_loopback() {
        let config = Config::load(None).unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.tenants.len(), 1);
        assert_eq!(config.tenants[0].tokens, ["demo-token"]);
        assert!(!config.huge_pages, "huge pages are off unless asked for");
    }

    #[test]
    fn a_file_overrides_defaults_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loketd.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nhuge_pages = true\n[journal]\nfsync = \"always\"\n\
             [[tenants]]\nname = \"shop\"\ntokens = [\"secret-token-1\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert!(config.huge_pages);
        assert_eq!(config.journal.fsync, FsyncPolicy::Always);
        assert_eq!(config.tenants[0].name, "shop");

        std::fs::write(&path, "listn = \"127.0.0.1:9000\"\n").unwrap();
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("listn"), "{error}");
        // Also inside a tenant's routing and pipeline sections.
        for (section, key) in [
            ("router", "bot_frist"),
            ("router.escalation", "on_dout"),
            ("pipeline", "intent_skill"),
        ] {
            std::fs::write(
                &path,
                format!("[[tenants]]\nname = \"shop\"\ntokens = [\"t\"]\n[tenants.{section}]\n{key} = true\n"),
            )
            .unwrap();
            let error = Config::load(Some(&path)).unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
    }

    #[test]
    fn a_tenants_files_are_found_next_to_the_configuration_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loketd.toml");
        std::fs::write(
            &path,
            "[[tenants]]\nname = \"shop\"\ntokens = [\"token-123\"]\nagents = \"agents.jsonl\"\n\
             catalog = \"/srv/catalog.csv\"\n\
             [tenants.encryption]\nkey_file = \"shop.key\"\nprevious_key_files = [\"old.key\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(
            config.tenants[0].agents.as_deref(),
            Some(dir.path().join("agents.jsonl").as_path())
        );
        assert_eq!(config.tenants[0].catalog.as_deref(), Some(Path::new("/srv/catalog.csv")));
        let encryption = config.tenants[0].encryption.as_ref().unwrap();
        assert_eq!(encryption.key_file.as_deref(), Some(dir.path().join("shop.key").as_path()));
        assert_eq!(encryption.previous_key_files, [dir.path().join("old.key")]);
    }

    #[test]
    fn bad_tenants_are_refused_with_a_reason() {
        let mut config = Config::default();
        config.tenants.push(TenantConfig::demo());
        assert!(config.check().unwrap_err().to_string().contains("twice"));
        let mut config = Config::default();
        config.tenants[0].tokens = vec!["short".to_owned()];
        assert!(config.check().unwrap_err().to_string().contains("at least 8"));
        let mut config = Config::default();
        config.tenants[0].encryption = Some(EncryptionConfig::default());
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("[tenants.encryption]: set key_file or key_env"), "{error}");
        config.tenants[0].encryption = Some(EncryptionConfig {
            key_file: Some("a.key".into()),
            key_env: Some("KEY".into()),
            ..EncryptionConfig::default()
        });
        assert!(config.check().unwrap_err().to_string().contains("not both"));
    }

    #[test]
    fn opening_hours_reach_the_meter_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loketd.toml");
        let write = |hours: &str| {
            std::fs::write(
                &path,
                format!(
                    "[[tenants]]\nname = \"shop\"\ntokens = [\"token-123\"]\n\
                     [tenants.reports.opening_hours]\n{hours}"
                ),
            )
            .unwrap()
        };
        write(
            "timezone = \"Europe/Amsterdam\"\nmonday = [\"09:00-17:30\"]\n\
             saturday = [\"22:00-24:00\"]\nsunday = [\"00:00-02:00\"]\n\
             holidays = [\"2026-12-25\"]\n",
        );
        let config = Config::load(Some(&path)).unwrap();
        config.check().unwrap();
        let hours = config.tenants[0].meter_config().opening_hours.unwrap();
        assert_eq!(hours.timezone, "Europe/Amsterdam");
        assert_eq!(hours.sunday, ["00:00-02:00"]);
        assert_eq!(hours.holidays, ["2026-12-25"]);

        write("timezone = \"Europe/Amsterdm\"\n");
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            error.contains(
                "[tenants.reports]: opening_hours: unknown time zone \"Europe/Amsterdm\""
            ),
            "{error}"
        );
        write("timezone = \"UTC\"\nfriday = [\"17:30-09:00\"]\n");
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("friday: invalid opening hours \"17:30-09:00\""), "{error}");
        write("timezone = \"UTC\"\nholiday = [\"2026-12-25\"]\n");
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("holiday"), "{error}");
    }
}
