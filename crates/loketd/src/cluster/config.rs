//! `[cluster]`: the NATS servers, this node's name and the lease.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[cluster]` in `loketd`'s configuration. Without it the daemon runs on
/// its own, as always.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS servers with JetStream, tried in turn (`nats://host:port`).
    pub nats: Vec<String>,
    /// This node's name: unique in the cluster; letters, digits, `-`, `_`.
    pub node: String,
    /// Copies JetStream keeps of each tenant's journal stream (1 to 5; at
    /// most the number of NATS servers).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// How long a tenant's lease lasts without a refresh. The leader
    /// refreshes it every quarter of this; a follower takes over once it
    /// has seen no refresh for this long.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Snapshots of each tenant kept in the object store `PREFIX_snapshots`
    /// (at least 1); the tenant's stream is trimmed behind the oldest.
    #[serde(default = "default_snapshots_kept")]
    pub snapshots_kept: usize,
    /// Prefix of the JetStream names the cluster uses (streams
    /// `PREFIX_journal_TENANT`, buckets `PREFIX_leases` and `PREFIX_nodes`,
    /// object store `PREFIX_snapshots`, subjects `PREFIX.journal.TENANT`),
    /// so clusters can share NATS.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The HTTP address clients are sent to when this node leads a tenant
    /// (default: `listen`). Set it when `listen` is `0.0.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_http: Option<String>,
    /// The binary-protocol address given to clients (default: `binary_listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_binary: Option<String>,
    /// NATS credentials file (`.creds`: a user JWT and its nkey seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PathBuf>,
    /// NATS user and password, when the servers use them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The password for `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Certificate authorities (PEM) to trust for `tls://` NATS servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for NATS servers that ask for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

fn default_replicas() -> usize {
    3
}

fn default_lease_ms() -> u64 {
    3_000
}

fn default_snapshots_kept() -> usize {
    3
}

fn default_prefix() -> String {
    "loket".to_owned()
}

/// Shortest lease accepted: refreshes every quarter of it must fit in a
/// NATS round trip with room to spare.
pub const MIN_LEASE_MS: u64 = 400;

impl ClusterConfig {
    /// A configuration for `node` on `nats` with the defaults.
    pub fn new(node: impl Into<String>, nats: Vec<String>) -> ClusterConfig {
        ClusterConfig {
            nats,
            node: node.into(),
            replicas: default_replicas(),
            lease_ms: default_lease_ms(),
            snapshots_kept: default_snapshots_kept(),
            prefix: default_prefix(),
            advertise_http: None,
            advertise_binary: None,
            credentials: None,
            user: None,
            password: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    /// What makes no sense, as a sentence naming the key.
    pub fn problem(&self) -> Option<String> {
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if self.nats.is_empty() {
            return Some("cluster.nats: name at least one NATS server".to_owned());
        }
        if let Some(url) = self.nats.iter().find(|url| url.trim().is_empty()) {
            return Some(format!("cluster.nats: {url:?} is not a server address"));
        }
        if !name_ok(&self.node) {
            return Some(format!(
                "cluster.node {:?}: use 1 to 64 letters, digits, '-' or '_'",
                self.node
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Some(format!("cluster.replicas = {}: JetStream keeps 1 to 5", self.replicas));
        }
        if self.lease_ms < MIN_LEASE_MS {
            return Some(format!("cluster.lease_ms = {}: at least {MIN_LEASE_MS}", self.lease_ms));
        }
        if self.snapshots_kept == 0 {
            return Some("cluster.snapshots_kept = 0: keep at least 1".to_owned());
        }
        if !name_ok(&self.prefix) {
            return Some(format!(
                "cluster.prefix {:?}: use letters, digits, '-' or '_'",
                self.prefix
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            return Some("cluster.user and cluster.password go together".to_owned());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Some("cluster.tls_cert and cluster.tls_key go together".to_owned());
        }
        None
    }

    /// Makes relative file paths relative to `folder` (the configuration file's).
    pub fn resolve_files(&mut self, folder: &Path) {
        for path in [&mut self.credentials, &mut self.tls_ca, &mut self.tls_cert, &mut self.tls_key]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = folder.join(&*path);
            }
        }
    }

    /// The stream that holds `tenant`'s journal.
    pub fn stream_name(&self, tenant: &str) -> String {
        format!("{}_journal_{tenant}", self.prefix)
    }

    /// The subject `tenant`'s journal records are published on.
    pub fn subject(&self, tenant: &str) -> String {
        format!("{}.journal.{tenant}", self.prefix)
    }

    /// The key-value bucket of tenant leases.
    pub fn lease_bucket(&self) -> String {
        format!("{}_leases", self.prefix)
    }

    /// The key-value bucket of node heartbeats.
    pub fn node_bucket(&self) -> String {
        format!("{}_nodes", self.prefix)
    }

    /// The object store of tenant snapshots.
    pub fn snapshot_bucket(&self) -> String {
        format!("{}_snapshots", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_configuration_passes_and_names_follow_the_prefix() {
        let config = ClusterConfig::new("n1", vec!["nats://127.0.0.1:4222".into()]);
        assert_eq!(config.problem(), None);
        assert_eq!(config.stream_name("shop"), "loket_journal_shop");
        assert_eq!(config.subject("shop"), "loket.journal.shop");
        assert_eq!(config.lease_bucket(), "loket_leases");
        assert_eq!(config.snapshot_bucket(), "loket_snapshots");
    }

    #[test]
    fn problems_name_the_key() {
        let good = ClusterConfig::new("n1", vec!["nats://127.0.0.1:4222".into()]);
        type Spoil = fn(&mut ClusterConfig);
        let cases: [(&str, Spoil); 7] = [
            ("cluster.nats", |c| c.nats.clear()),
            ("cluster.node", |c| c.node = "n 1".into()),
            ("cluster.replicas", |c| c.replicas = 7),
            ("cluster.lease_ms", |c| c.lease_ms = 10),
            ("cluster.snapshots_kept", |c| c.snapshots_kept = 0),
            ("cluster.user", |c| c.user = Some("u".into())),
            ("cluster.tls_cert", |c| c.tls_cert = Some("c.pem".into())),
        ];
        for (key, spoil) in cases {
            let mut config = good.clone();
            spoil(&mut config);
            let problem = config.problem().expect("refused");
            assert!(problem.starts_with(key), "{problem:?} names {key}");
        }
    }
}
