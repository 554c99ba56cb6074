//! [`StartupError`]: why a tenant could not start, with its cause kept as the
//! error's source.

use std::path::PathBuf;

use crate::command::DecodeError;
use crate::state::ApplyError;

/// Why a tenant could not start. The variant says what was being done; the
/// cause is the error's [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The synonyms file could not be read.
    #[error("cannot open synonyms {}", path.display())]
    SynonymsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The synonyms file does not parse.
    #[error("synonyms {}", path.display())]
    Synonyms {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: loket_catalog::SynonymError,
    },
    /// The catalog file could not be read.
    #[error("cannot open catalog {}", path.display())]
    CatalogFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The catalog could not be built.
    #[error("catalog {}", path.display())]
    Catalog {
        /// The file (`demo` for the embedded one).
        path: PathBuf,
        /// Why.
        #[source]
        source: loket_catalog::CatalogError,
    },
    /// The intent model could not be loaded.
    #[error("model {}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: loket_intent::ModelError,
    },
    /// `[tenants.reports]` cannot be used.
    #[error("[tenants.reports]")]
    Reports(#[source] loket_report::ConfigError),
    /// The tenant's stream (in a cluster) could not be read.
    #[error("journal stream")]
    Stream(#[source] crate::cluster::StreamError),
    /// In a cluster: the snapshot object store could not be read.
    #[error("snapshot object store")]
    SnapshotObjects(#[source] crate::cluster::ShelfError),
    /// In a cluster: the tenant's stream was trimmed past every snapshot
    /// this node has or can download, so it cannot follow the stream on
    /// from any of them.
    #[error(
        "the journal stream starts at sequence {first_sequence}, past {}",
        .newest_snapshot.map_or("every snapshot (there is none)".to_owned(), |lsn| format!("the newest snapshot (lsn {lsn}, which needs sequence {})", lsn + 1))
    )]
    StreamTrimmed {
        /// The stream's first sequence.
        first_sequence: u64,
        /// The newest snapshot, local or in the object store.
        newest_snapshot: Option<u64>,
    },
    /// The snapshot store could not be read.
    #[error("snapshots")]
    Snapshots(#[source] loket_journal::Error),
    /// The newest snapshot does not decode.
    #[error("{}: does not decode", path.display())]
    SnapshotDecode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rkyv::rancor::Error,
    },
    /// The newest snapshot is sealed and cannot be opened with the
    /// tenant's keys (or the tenant has none).
    #[error("{}: {source}", path.display())]
    SnapshotSealed {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: loket_seal::SealError,
    },
    /// The webhook outbox or an endpoint's state cannot be opened.
    #[error("webhooks: {0}")]
    Webhooks(#[source] crate::webhooks::WebhookStoreError),
    /// The tenant's encryption key cannot be loaded.
    #[error("encryption key: {0}")]
    Key(#[source] loket_seal::SealError),
    /// A snapshot's contents and its name disagree.
    #[error("{}: holds lsn {held}, its name says {named}", path.display())]
    SnapshotMisnamed {
        /// The file.
        path: PathBuf,
        /// The position it holds.
        held: u64,
        /// The position its name gives.
        named: u64,
    },
    /// The snapshot does not restore.
    #[error("snapshot")]
    Restore(#[source] ApplyError),
    /// The journal could not be opened or read.
    #[error("journal")]
    Journal(#[source] loket_journal::Error),
    /// A journal record does not decode.
    #[error("journal record")]
    Record(#[source] DecodeError),
    /// The journal was trimmed past what the snapshot needs.
    #[error("the journal starts at record {first} but the snapshot needs it from {needed}")]
    JournalGap {
        /// The journal's first record.
        first: u64,
        /// The snapshot's position.
        needed: u64,
    },
    /// The router could not be built from the configuration or snapshot.
    #[error("router")]
    Router(#[source] loket_router::RouterError),
    /// The pipeline configuration does not fit the model.
    #[error("pipeline")]
    Pipeline(#[source] loket_pipeline::PipelineError),
    /// The agents file could not be read or holds a bad line.
    #[error("agents: {0}")]
    Agents(String),
    /// A first-start agent was refused.
    #[error("registering an agent")]
    Agent(#[source] ApplyError),
    /// Writing the first-start agents or compacting after an erasure failed.
    #[error("{what}")]
    Durability {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A thread could not be started.
    #[error("starting the {0} thread")]
    Thread(&'static str, #[source] std::io::Error),
}
