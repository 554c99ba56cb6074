//! `loketd`: the Loket router daemon.
//!
//! It wraps the router ([`loket_router`]), the intent scorer
//! ([`loket_intent`]) and the catalog ([`loket_catalog`]), through
//! [`loket_pipeline`], behind network APIs, per tenant:
//!
//! - HTTP/JSON ([`http`]): messages, agents, conversations, catalog,
//!   scoring, erasure, a Server-Sent Events stream of decisions resumable
//!   from a sequence number, Prometheus metrics, health;
//! - a binary ingest protocol over TCP ([`binary`], frames from
//!   [`loket_wire`]) for high rates;
//! - durability ([`tenant`]): an append-only journal ([`loket_journal`])
//!   of every state change, fsynced before anything is acknowledged, and
//!   periodic rkyv snapshots; on start, state = latest snapshot + journal.
//!
//! The structure follows mini-redis: [`run`] takes bound listeners and a
//! shutdown future, so tests start a daemon in-process on port 0.
//!
//! # Invariants
//!
//! - A tenant's state changes on its sequencer thread only, in journal
//!   order; handlers score messages and read state, never change it.
//! - Nothing is acknowledged, and no event published, before the journal
//!   record behind it is on disk.
//! - A request authenticated for one tenant can reach only that tenant.
//!   Tokens are looked up by SHA-256 digest and compared in constant time
//!   ([`auth::TokenTable`]).
//! - Input from the network never panics the daemon: frames, JSON and
//!   journal records are validated before use.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod binary;
pub mod cluster;
// rkyv's derive makes undocumented `Archived*` twins of documented types.
#[allow(missing_docs)]
pub mod command;
pub mod config;
pub mod demo;
pub mod events;
pub mod http;
pub mod metrics;
#[allow(missing_docs)]
pub mod state;
pub mod tenant;
pub mod tls;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{Config, ConfigError, EncryptionConfig, FsyncPolicy, TenantConfig, WebhookConfig};
pub use tenant::{Failure, StorageFailure, Tenant, TenantError};

/// The daemon's bound sockets.
#[derive(Debug)]
pub struct Listeners {
    /// HTTP/JSON, events, metrics, health.
    pub http: TcpListener,
    /// Binary ingest.
    pub binary: TcpListener,
}

impl Listeners {
    /// Binds both addresses of `config`.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        Ok(Listeners {
            http: TcpListener::bind(config.listen).await?,
            binary: TcpListener::bind(config.binary_listen).await?,
        })
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A tenant could not start (its data, catalog or model).
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// A socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate, key or client CA cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Joining the cluster failed, or the node had to leave it.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
}

/// What a caller of [`run_with`] can do to a running daemon besides
/// stopping it.
#[derive(Debug, Default)]
pub struct Control {
    /// Reload requests (the binary wires SIGHUP to the [`tls::Reloader`]).
    pub reload: Option<tls::ReloadRequests>,
    /// Told once every tenant has recovered and the listeners serve.
    pub ready: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Opens every tenant (recovering its state), serves until `shutdown`
/// completes, then shuts down gracefully: stops accepting, lets requests in
/// flight finish, ends event streams, syncs every journal and writes a final
/// snapshot, all within `shutdown_timeout_ms` (after which it returns anyway,
/// leaving recovery to the journal).
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    run_with(config, listeners, shutdown, Control::default()).await
}

/// As [`run`], with `control`: certificate reloads and a readiness signal.
pub async fn run_with(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    control: Control,
) -> Result<(), DaemonError> {
    config.check()?;
    let tls = config.tls.as_ref().map(tls::Tls::load).transpose()?.map(Arc::new);
    let _lock = lock_data_dir(&config.data_dir)?;
    let config = Arc::new(config);
    let node = match &config.cluster {
        Some(cluster) => {
            let me = cluster::NodeAddress {
                node: cluster.node.clone(),
                http: cluster
                    .advertise_http
                    .clone()
                    .unwrap_or(listeners.http.local_addr()?.to_string()),
                binary: cluster
                    .advertise_binary
                    .clone()
                    .unwrap_or(listeners.binary.local_addr()?.to_string()),
            };
            Some(cluster::Node::connect(cluster, me).await?)
        }
        None => None,
    };
    let mut streams = Vec::new();
    if let Some(node) = &node {
        for tenant in &config.tenants {
            streams.push(Some(node.stream_for(&tenant.name).await?));
        }
    } else {
        streams.resize(config.tenants.len(), None);
    }
    let opening = config.clone();
    let opening_streams = streams.clone();
    let tenants = tokio::task::spawn_blocking(move || {
        opening
            .tenants
            .iter()
            .zip(opening_streams)
            .map(|(tenant, stream)| Tenant::open_on(tenant, &opening, stream))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| std::io::Error::other(format!("tenant start-up panicked: {e}")))??;
    // `Config::check` refused tokens used twice.
    let mut tokens = auth::TokenTable::new();
    for (tenant, tenant_config) in tenants.iter().zip(&config.tenants) {
        for token in &tenant_config.tokens {
            let added = tokens.insert(token, tenant.clone());
            debug_assert!(added, "Config::check refuses a token used twice");
        }
    }
    let (stop, stopping) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(true));
    let mut left = match &node {
        Some(node) => node
            .start(tenants.iter().cloned().zip(streams.into_iter().flatten()).collect::<Vec<_>>()),
        None => watch::channel(None).1,
    };
    let state = http::AppState {
        cluster: node.clone(),
        tokens: Arc::new(tokens),
        tenants: Arc::new(tenants.clone()),
        limits: Arc::new(config.limits.clone()),
        ready: ready.clone(),
        shutdown: stopping.clone(),
    };
    tracing::info!(
        http = %listeners.http.local_addr()?,
        binary = %listeners.binary.local_addr()?,
        tenants = tenants.len(),
        tls = tls.is_some(),
        "loketd ready"
    );
    let http = tokio::spawn({
        let (app, limits, stopping, tls) =
            (http::app(state.clone()), state.limits.clone(), stopping.clone(), tls.clone());
        async move { http::serve(listeners.http, app, &limits, tls, stopping).await }
    });
    let webhook_stores: Vec<_> = tenants.iter().filter_map(|t| t.webhooks().cloned()).collect();
    let deliveries = webhooks::start(&webhook_stores, &stopping);
    let binary = tokio::spawn(binary::serve(listeners.binary, state, tls.clone(), stopping));
    let reloads = control.reload.map(|requests| tokio::spawn(requests.serve(tls)));
    if let Some(ready) = control.ready {
        let _ = ready.send(());
    }

    // A node that must leave the cluster stops like a graceful shutdown
    // and then reports why (its service manager restarts it).
    let mut leaving = None;
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        Ok(reason) = left.wait_for(Option::is_some) => leaving = reason.clone(),
    }
    tracing::info!("shutting down");
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    ready.store(false, Ordering::Relaxed);
    let _ = stop.send(true);
    let deadline = Duration::from_millis(config.shutdown_timeout_ms);
    let drained = tokio::time::timeout(deadline, async {
        let _ = http.await;
        let _ = binary.await;
        deliveries.stopped().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open at the shutdown deadline");
    }
    let stopped = tokio::time::timeout(
        deadline,
        tokio::task::spawn_blocking(move || {
            for tenant in &tenants {
                match tenant.stop() {
                    Ok(lsn) => {
                        tracing::info!(tenant = tenant.name(), lsn, "final snapshot written")
                    }
                    Err(error) => tracing::error!(tenant = tenant.name(), %error, "stopping"),
                }
            }
        }),
    )
    .await;
    if stopped.is_err() {
        tracing::warn!(
            "tenants still stopping at the shutdown deadline; the journal has every acknowledged command"
        );
    }
    match leaving {
        Some(reason) => Err(cluster::ClusterError::Lost(reason).into()),
        None => Ok(()),
    }
}

/// Takes the data directory's lock file, so a second daemon on the same
/// directory refuses to start instead of interleaving journal writes. The
/// lock is released when the returned file is dropped (or the process dies).
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, DaemonError> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("loketd.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DaemonError::Io(std::io::Error::other(
            format!("{} is locked: another loketd uses this data directory", path.display()),
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(DaemonError::Io(error)),
    }
}

/// A daemon running in the background of this process (for tests and
/// embedding): its addresses and a way to stop it.
#[derive(Debug)]
pub struct Spawned {
    /// HTTP address.
    pub http: SocketAddr,
    /// Binary ingest address.
    pub binary: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    reloader: tls::Reloader,
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
}

impl Spawned {
    /// Binds `config`'s addresses (use port 0 for any) and runs the daemon
    /// on the current tokio runtime.
    pub async fn start(config: Config) -> Result<Spawned, DaemonError> {
        let listeners = Listeners::bind(&config).await?;
        let http = listeners.http.local_addr()?;
        let binary = listeners.binary.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, serving) = tokio::sync::oneshot::channel();
        let (reloader, reload) = tls::reloader();
        let control = Control { reload: Some(reload), ready: Some(ready) };
        let mut task = tokio::spawn(run_with(
            config,
            listeners,
            async move {
                let _ = stopped.await;
            },
            control,
        ));
        // Serving once every tenant has recovered; or it failed.
        tokio::select! {
            biased;
            Ok(()) = serving => {}
            finished = &mut task => {
                return match finished {
                    Ok(Ok(())) => {
                        Err(DaemonError::Io(std::io::Error::other("the daemon stopped at once")))
                    }
                    Ok(Err(error)) => Err(error),
                    Err(error) => Err(DaemonError::Io(std::io::Error::other(error.to_string()))),
                };
            }
        }
        Ok(Spawned { http, binary, stop: Some(stop), reloader, task })
    }

    /// Reads the TLS files again, as SIGHUP does to the `loketd` binary.
    pub async fn reload_tls(&self) -> Result<(), String> {
        self.reloader.reload().await
    }

    /// Shuts down gracefully and waits for it.
    pub async fn shutdown(mut self) -> Result<(), DaemonError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(error) => Err(DaemonError::Io(std::io::Error::other(error.to_string()))),
        }
    }
}
