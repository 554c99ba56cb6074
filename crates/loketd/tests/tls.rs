//! TLS on both listeners, with certificates made in the test (rcgen):
//! HTTPS and the binary protocol over TLS, client certificates on the
//! binary listener with `client_ca`, certificates reloaded without dropping
//! open connections, and files that cannot work refused with the reason.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use loket_wire::{Frame, FrameCodec, Hello, Limits, MessageBatch};
use loketd::config::TlsConfig;
use loketd::{Config, Spawned};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Framed;

/// A certificate authority of the test's own.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Authority { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses).
    fn sign(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert: cert.pem(), key: key.serialize_pem() }
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn tls_config(dir: &Path, server: &Leaf, client_ca: Option<&Authority>) -> (Config, TlsConfig) {
    let tls = TlsConfig {
        cert: write(dir, "server.pem", &server.cert),
        key: write(dir, "server.key", &server.key),
        client_ca: client_ca.map(|ca| write(dir, "clients.pem", &ca.pem())),
    };
    let mut config = support::config(&dir.join("data"));
    config.tls = Some(tls.clone());
    (config, tls)
}

fn connector(trusted: &Authority, client: Option<&Leaf>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.issuer.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => {
            let chain = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// One HTTP/1.1 request over `stream`; the response's status line and body.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, path: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
        support::TOKEN
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Hello over `stream`; the answer, or `None` if the connection failed.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
) -> Option<(Framed<S, FrameCodec>, Frame)> {
    let mut framed = Framed::new(stream, FrameCodec::new(Limits::default()));
    let hello = Frame::Hello(Hello {
        version: loket_wire::PROTOCOL_VERSION,
        token: support::TOKEN.to_owned(),
    });
    framed.send(hello).await.ok()?;
    match tokio::time::timeout(Duration::from_secs(10), framed.next()).await {
        Ok(Some(Ok(frame))) => Some((framed, frame)),
        _ => None,
    }
}

async fn batch<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, FrameCodec>,
    id: u64,
) -> Frame {
    let batch = MessageBatch {
        batch_id: id,
        messages: vec![support::message(id, id, "is dit op voorraad?")],
    };
    let mut bytes = Vec::new();
    loket_wire::encode_batch(&batch, &mut bytes).unwrap();
    framed.get_mut().write_all(&bytes).await.unwrap();
    framed.get_mut().flush().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), framed.next())
        .await
        .expect("an answer in time")
        .expect("an answer")
        .expect("a valid frame")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_the_binary_protocol_over_tls_and_plain_tcp_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("Loket test CA");
    let (config, _) = tls_config(dir.path(), &ca.sign(&["localhost", "127.0.0.1"]), None);
    let daemon = Spawned::start(config).await.unwrap();
    let trusted = connector(&ca, None);

    let response = request(tls_connect(daemon.http, &trusted).await.unwrap(), "/v1/stats").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"conversations\""), "{response}");

    let (mut framed, welcome) =
        hello(tls_connect(daemon.binary, &trusted).await.unwrap()).await.unwrap();
    assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
    assert!(matches!(batch(&mut framed, 1).await, Frame::Ack(_)));

    // Plain TCP on either listener: no HTTP answer, no Welcome.
    let plain = request(TcpStream::connect(daemon.http).await.unwrap(), "/v1/stats").await;
    assert!(!plain.starts_with("HTTP/1.1"), "{plain}");
    assert!(hello(TcpStream::connect(daemon.binary).await.unwrap()).await.is_none());
    // A client that does not trust the daemon's CA cannot connect.
    let stranger = connector(&Authority::new("Another CA"), None);
    assert!(tls_connect(daemon.http, &stranger).await.is_err());
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_ca_the_binary_listener_takes_only_clients_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("Loket test CA");
    let clients = Authority::new("Loket clients");
    let (config, _) = tls_config(dir.path(), &ca.sign(&["localhost"]), Some(&clients));
    let daemon = Spawned::start(config).await.unwrap();

    let anonymous = connector(&ca, None);
    let refused = match tls_connect(daemon.binary, &anonymous).await {
        Err(_) => true,
        // TLS 1.3: the server's refusal arrives with the first read.
        Ok(stream) => hello(stream).await.is_none(),
    };
    assert!(refused, "a client without a certificate was served");
    let outsider = connector(&ca, Some(&Authority::new("Not ours").sign(&["platform"])));
    let refused = match tls_connect(daemon.binary, &outsider).await {
        Err(_) => true,
        Ok(stream) => hello(stream).await.is_none(),
    };
    assert!(refused, "a client certificate from another CA was accepted");

    let platform = connector(&ca, Some(&clients.sign(&["platform"])));
    let (mut framed, welcome) =
        hello(tls_connect(daemon.binary, &platform).await.unwrap()).await.unwrap();
    assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
    assert!(matches!(batch(&mut framed, 7).await, Frame::Ack(_)));
    // HTTP authenticates by token and asks for no certificate.
    let response = request(tls_connect(daemon.http, &anonymous).await.unwrap(), "/v1/stats").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_for_new_connections_and_open_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Authority::new("Old CA"), Authority::new("New CA"));
    let (config, tls) = tls_config(dir.path(), &old_ca.sign(&["localhost"]), None);
    let daemon = Spawned::start(config).await.unwrap();
    let (trusts_old, trusts_new) = (connector(&old_ca, None), connector(&new_ca, None));
    let (mut open, _) =
        hello(tls_connect(daemon.binary, &trusts_old).await.unwrap()).await.unwrap();

    let renewed = new_ca.sign(&["localhost"]);
    std::fs::write(&tls.cert, &renewed.cert).unwrap();
    std::fs::write(&tls.key, &renewed.key).unwrap();
    daemon.reload_tls().await.unwrap();

    assert!(tls_connect(daemon.binary, &trusts_old).await.is_err(), "the old certificate is gone");
    assert!(tls_connect(daemon.http, &trusts_old).await.is_err());
    let (mut fresh, welcome) =
        hello(tls_connect(daemon.binary, &trusts_new).await.unwrap()).await.unwrap();
    assert!(matches!(welcome, Frame::Welcome(_)));
    assert!(matches!(batch(&mut fresh, 2).await, Frame::Ack(_)));
    // The connection opened before the reload keeps working.
    assert!(matches!(batch(&mut open, 3).await, Frame::Ack(_)));

    // Files that do not work: the reload says why and changes nothing.
    std::fs::write(&tls.cert, "not a certificate").unwrap();
    let error = daemon.reload_tls().await.unwrap_err();
    assert!(error.contains("tls.cert") && error.contains("no PEM certificate"), "{error}");
    std::fs::write(&tls.cert, &renewed.cert).unwrap();
    std::fs::write(&tls.key, new_ca.sign(&["localhost"]).key).unwrap();
    let error = daemon.reload_tls().await.unwrap_err();
    assert!(error.starts_with("tls:"), "a key of another certificate: {error}");
    let response = request(tls_connect(daemon.http, &trusts_new).await.unwrap(), "/v1/stats").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tls_files_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("Loket test CA");
    let leaf = ca.sign(&["localhost"]);
    let (mut config, mut tls) = tls_config(dir.path(), &leaf, None);

    tls.cert = dir.path().join("missing.pem");
    config.tls = Some(tls.clone());
    let error = Spawned::start(config.clone()).await.unwrap_err().to_string();
    assert!(error.starts_with("tls.cert ") && error.contains("missing.pem"), "{error}");

    tls.cert = write(dir.path(), "server.pem", &leaf.cert);
    tls.key = write(dir.path(), "empty.key", "");
    config.tls = Some(tls.clone());
    let error = Spawned::start(config.clone()).await.unwrap_err().to_string();
    assert!(error.contains("tls.key") && error.contains("no PEM private key"), "{error}");

    tls.key = write(dir.path(), "server.key", &leaf.key);
    tls.client_ca = Some(write(dir.path(), "clients.pem", "-----BEGIN NOTHING-----\n"));
    config.tls = Some(tls);
    let error = Spawned::start(config).await.unwrap_err().to_string();
    assert!(error.contains("tls.client_ca"), "{error}");
}
