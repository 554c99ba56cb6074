//! `loket load --tls` against a real `loketd` with TLS, certificates made
//! in the test: both protocols acked in full, a client certificate where
//! the binary listener asks for one, and a clear failure for an untrusted
//! server.

use std::path::Path;

use loketd::config::TlsConfig;
use loketd::{Config, Spawned};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Writes a certificate for `name` signed by `ca` as `stem.pem` and `stem.key`.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, name: &str, dir: &Path, stem: &str) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&key, ca).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
}

async fn loket(args: &[&str]) -> (bool, serde_json::Value, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loket"))
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok());
    (
        output.status.success(),
        report.unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_speaks_tls_to_both_listeners_with_a_client_certificate_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, clients) = (authority("Loket test CA"), authority("Loket clients"));
    leaf(&ca, "127.0.0.1", dir.path(), "server");
    leaf(&clients, "platform", dir.path(), "client");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(dir.path().join("clients.pem"), clients.pem()).unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        binary_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.tls = Some(TlsConfig {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: Some(dir.path().join("clients.pem")),
    });
    let daemon = Spawned::start(config).await.unwrap();
    let (http, binary) = (daemon.http.to_string(), daemon.binary.to_string());
    let (ca, cert, key) = (
        ca_file.to_str().unwrap(),
        dir.path().join("client.pem").display().to_string(),
        dir.path().join("client.key").display().to_string(),
    );
    let common = ["--rate", "2000", "--duration", "1s", "--batch", "50", "--tls", "--ca", ca];

    let mut args = vec!["load", "--target", &binary, "--protocol", "binary"];
    args.extend(common);
    args.extend(["--cert", &cert, "--key", &key]);
    let (ok, report, stderr) = loket(&args).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        (report["acked_messages"].as_u64(), report["errors"].as_u64()),
        (Some(2_000), Some(0))
    );

    let mut args = vec!["load", "--target", &http, "--protocol", "http"];
    args.extend(common);
    let (ok, report, stderr) = loket(&args).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        (report["acked_messages"].as_u64(), report["errors"].as_u64()),
        (Some(2_000), Some(0))
    );

    // Without the client certificate the binary listener refuses.
    let mut args = vec!["load", "--target", &binary, "--protocol", "binary"];
    args.extend(common);
    let (ok, _, stderr) = loket(&args).await;
    assert!(!ok, "served without a client certificate");
    assert!(stderr.contains(&binary), "{stderr}");
    // Without --ca, the public roots do not vouch for the test CA.
    let (ok, _, stderr) =
        loket(&["load", "--target", &http, "--protocol", "http", "--duration", "1s", "--tls"])
            .await;
    assert!(!ok);
    assert!(stderr.contains("TLS handshake with") && stderr.contains("certificate"), "{stderr}");
    daemon.shutdown().await.unwrap();
}
