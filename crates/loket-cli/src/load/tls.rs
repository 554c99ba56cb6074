//! `loket load --tls`: the client side of `loketd`'s TLS listeners.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::LoadArgs;

/// A TLS client configuration and the name the server's certificate must
/// carry.
pub struct Client {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot open {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

impl Client {
    /// From `--ca`, `--cert` and `--key`; the server name is the target's
    /// host (a DNS name or an IP address).
    pub fn new(args: &LoadArgs, target: &str) -> anyhow::Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        match &args.ca {
            Some(path) => {
                for cert in certificates(path)? {
                    roots.add(cert).with_context(|| format!("{}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert)?;
                let bytes =
                    std::fs::read(key).with_context(|| format!("cannot open {}", key.display()))?;
                let key = PrivateKeyDer::from_pem_slice(&bytes)
                    .with_context(|| format!("{}: no PEM private key", key.display()))?;
                builder.with_client_auth_cert(chain, key).context("the client certificate")?
            }
            _ => builder.with_no_client_auth(),
        };
        let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host} is not a DNS name or IP address for TLS"))?;
        Ok(Client { connector: TlsConnector::from(Arc::new(config)), server_name })
    }

    /// The TLS handshake over `stream`.
    pub async fn connect(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.server_name.clone(), stream).await
    }
}
