//! TLS for both listeners (rustls with its default provider, aws-lc-rs).
//!
//! [`Tls`] holds the server configurations behind an [`ArcSwap`]: every
//! new connection takes the current one, so [`Tls::reload`] (SIGHUP in the
//! `loketd` binary) swaps certificates for new connections while open ones
//! keep the session they negotiated. A reload that fails (a missing file, a
//! key that does not match) changes nothing and says why.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that is missing, unreadable, or holds no PEM item of the kind.
    #[error("tls.{key} {path}: {problem}")]
    File {
        /// The configuration key (`cert`, `key`, `client_ca`).
        key: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the combination (a key that does not match the
    /// certificate, an unusable CA).
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA list cannot verify clients.
    #[error("tls.client_ca: {0}")]
    ClientCa(String),
}

/// The current server configurations of both listeners.
#[derive(Debug)]
pub struct Tls {
    config: TlsConfig,
    http: ArcSwap<ServerConfig>,
    binary: ArcSwap<ServerConfig>,
}

impl Tls {
    /// Reads the files of `config`.
    pub fn load(config: &TlsConfig) -> Result<Tls, TlsError> {
        let (http, binary) = server_configs(config)?;
        Ok(Tls {
            config: config.clone(),
            http: ArcSwap::from_pointee(http),
            binary: ArcSwap::from_pointee(binary),
        })
    }

    /// Reads the files again and, if they work, uses them for every new
    /// connection. On an error the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (http, binary) = server_configs(&self.config)?;
        self.http.store(Arc::new(http));
        self.binary.store(Arc::new(binary));
        Ok(())
    }

    /// An acceptor for a new HTTP connection.
    pub fn http(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.http.load_full())
    }

    /// An acceptor for a new binary-protocol connection (with client
    /// certificates when `client_ca` is set).
    pub fn binary(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.binary.load_full())
    }
}

fn file_error(key: &'static str, path: &Path, problem: impl ToString) -> TlsError {
    TlsError::File { key, path: path.display().to_string(), problem: problem.to_string() }
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(key, path, e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error("key", path, e))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            file_error("key", path, "no PEM private key in it")
        }
        other => file_error("key", path, other),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The HTTP and the binary listener's configurations: the same
/// certificate; client certificates required on the binary one with
/// `client_ca`.
fn server_configs(config: &TlsConfig) -> Result<(ServerConfig, ServerConfig), TlsError> {
    let chain = certificates("cert", &config.cert)?;
    let key = private_key(&config.key)?;
    let builder =
        || ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions();
    let mut http =
        builder()?.with_no_client_auth().with_single_cert(chain.clone(), key.clone_key())?;
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    let binary = match &config.client_ca {
        None => builder()?.with_no_client_auth().with_single_cert(chain, key)?,
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates("client_ca", path)? {
                roots.add(cert).map_err(|e| file_error("client_ca", path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            builder()?.with_client_cert_verifier(verifier).with_single_cert(chain, key)?
        }
    };
    Ok((http, binary))
}

/// Asks a running daemon to read its TLS files again ([`crate::run_with`];
/// the `loketd` binary sends one on SIGHUP). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    requests: mpsc::Sender<oneshot::Sender<Result<(), String>>>,
}

/// The daemon's end of a [`Reloader`].
#[derive(Debug)]
pub struct ReloadRequests {
    requests: mpsc::Receiver<oneshot::Sender<Result<(), String>>>,
}

/// A connected [`Reloader`] and its [`ReloadRequests`].
pub fn reloader() -> (Reloader, ReloadRequests) {
    let (sender, receiver) = mpsc::channel(4);
    (Reloader { requests: sender }, ReloadRequests { requests: receiver })
}

impl Reloader {
    /// Reloads and says how it went: `Err` with the reason when the files
    /// do not work (the certificates in use stay), when the daemon has no
    /// TLS, or when it has stopped.
    pub async fn reload(&self) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(reply).await.map_err(|_| "the daemon has stopped".to_owned())?;
        answer.await.unwrap_or_else(|_| Err("the daemon has stopped".to_owned()))
    }
}

impl ReloadRequests {
    /// Answers reload requests until every [`Reloader`] is gone.
    pub(crate) async fn serve(mut self, tls: Option<Arc<Tls>>) {
        while let Some(reply) = self.requests.recv().await {
            let result = match &tls {
                None => Err("TLS is not configured".to_owned()),
                Some(tls) => tls.reload().map_err(|e| e.to_string()),
            };
            match &result {
                Ok(()) => tracing::info!("TLS certificates reloaded"),
                Err(error) => {
                    tracing::error!(%error, "TLS reload failed; the certificates in use stay")
                }
            }
            let _ = reply.send(result);
        }
    }
}
