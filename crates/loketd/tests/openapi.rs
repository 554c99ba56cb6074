//! The OpenAPI description: the checked-in copy is current, the daemon
//! serves it, it describes every route the daemon serves (and no other),
//! and every example request in it is accepted by a running daemon.
//!
//! After a change to the API, rewrite `docs/openapi.json` with
//! `LOKET_WRITE_OPENAPI=1 cargo test -p loketd --test openapi`.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use loket_router::{OfferPolicy, RouterConfig};
use loketd::{Spawned, TenantConfig};
use serde_json::{Value, json};
use support::{TOKEN, config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The methods an operation can have in a path item.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

fn description() -> Value {
    serde_json::from_str(&loketd::http::openapi_json()).unwrap()
}

/// Every `(METHOD, path)` the description has, in its order.
fn operations(description: &Value) -> Vec<(String, String)> {
    let paths = description["paths"].as_object().unwrap();
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                found.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

#[test]
fn the_checked_in_description_is_current() {
    let generated = loketd::http::openapi_json();
    let path = checked_in_path();
    if std::env::var_os("LOKET_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json differs from the description the daemon generates; after changing \
         the API, rewrite it with `LOKET_WRITE_OPENAPI=1 cargo test -p loketd --test openapi` \
         and review the diff"
    );
}

#[test]
fn the_description_is_openapi_3_1_and_complete() {
    let description = description();
    assert_eq!(description["openapi"], "3.1.0");
    // Every reference names a component that exists.
    let mut references = Vec::new();
    collect_refs(&description, &mut references);
    assert!(!references.is_empty());
    for reference in &references {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        assert!(description.pointer(pointer).is_some(), "{reference} names nothing");
    }
    for (method, path) in operations(&description) {
        let operation = &description["paths"][&path][method.to_lowercase()];
        let what = format!("{method} {path}");
        // The /v1 routes need the tenant's token; nothing else does.
        let security = operation.get("security");
        if path.starts_with("/v1/") {
            assert_eq!(security, Some(&json!([{"bearer": []}])), "{what}");
            assert!(operation["responses"].get("401").is_some(), "{what}: 401");
        } else {
            assert_eq!(security, None, "{what} needs no token");
        }
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|status| status.starts_with('2')), "{what}: a 2xx answer");
        assert!(operation.get("summary").is_some(), "{what}: a summary");
        // Every request body and path parameter has an example.
        if let Some(body) = operation.get("requestBody") {
            let example = &body["content"]["application/json"]["example"];
            assert!(example.is_object(), "{what}: an example body");
        }
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                assert!(parameter.get("example").is_some(), "{what}: {parameter}");
            }
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// One request over a fresh connection: the status and the body (empty for
/// a stream, whose headers are all this waits for).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: loketd\r\nconnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 65_536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(n)) => n,
            _ => break,
        };
        response.extend_from_slice(&buf[..n]);
        let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
            if n == 0 {
                break;
            }
            continue;
        };
        let headers = String::from_utf8_lossy(&response[..end]).to_lowercase();
        if headers.contains("content-type: text/event-stream") {
            response.truncate(end + 4);
            break;
        }
        let length = headers
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok());
        if n == 0 || length.is_some_and(|length| response.len() >= end + 4 + length) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let split =
        response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    (status, response[split..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_description_and_exactly_the_routes_it_describes() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let generated = loketd::http::openapi_json();
    let (status, served) = request(daemon.http, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200, "no token needed");
    assert!(served == generated.as_bytes(), "GET /openapi.json serves the generated description");
    let served: Value = serde_json::from_slice(&served).unwrap();
    assert_eq!(served["openapi"], "3.1.0");

    // Every described operation is served; every other method on a
    // described path is 405. (Undescribed paths cannot be routed: the
    // router is built from the description's list.)
    let described: BTreeSet<(String, String)> = operations(&served).into_iter().collect();
    let paths: BTreeSet<&String> = described.iter().map(|(_, path)| path).collect();
    for path in paths {
        let concrete = path.replace("{id}", "probe");
        for method in METHODS.map(str::to_uppercase) {
            let (status, body) = request(daemon.http, &method, &concrete, Some(TOKEN), None).await;
            let body = String::from_utf8_lossy(&body);
            if described.contains(&(method.clone(), path.clone())) {
                assert_ne!(status, 405, "{method} {path} is described but not served: {body}");
                assert!(
                    !(status == 404 && body.contains("no such route")),
                    "{method} {path} is described but not served: {body}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not described: {body}");
            }
        }
    }
    daemon.shutdown().await.unwrap();
}

/// The order the examples run in, so that each finds what it needs: the
/// agent `dirk` registered, conversation `c-1` offered to him, and so on.
const EXAMPLE_ORDER: &[(&str, &str)] = &[
    ("GET", "/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("GET", "/console/console.js"),
    ("GET", "/console/console.css"),
    ("GET", "/console/icon.svg"),
    ("POST", "/v1/agents"),
    ("GET", "/v1/agents"),
    ("GET", "/v1/agents/{id}"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/conversations/{id}/offer"),
    ("POST", "/v1/messages/batch"),
    ("GET", "/v1/conversations"),
    ("GET", "/v1/conversations/{id}"),
    ("GET", "/v1/queues"),
    ("POST", "/v1/conversations/{id}/transfer"),
    ("POST", "/v1/conversations/{id}/replies"),
    ("POST", "/v1/conversations/{id}/orders"),
    ("GET", "/v1/reports"),
    ("PATCH", "/v1/agents/{id}"),
    ("GET", "/v1/catalog/search"),
    ("POST", "/v1/catalog/stock"),
    ("POST", "/v1/score"),
    ("GET", "/v1/stats"),
    ("GET", "/v1/cluster"),
    ("GET", "/v1/events"),
    ("GET", "/v1/webhooks"),
    ("GET", "/v1/webhooks/{endpoint}/dead-letters"),
    ("POST", "/v1/webhooks/{endpoint}/dead-letters/redeliver"),
    ("POST", "/v1/webhooks/{endpoint}/enable"),
    ("POST", "/v1/conversations/{id}/close"),
    ("DELETE", "/v1/customers/{id}"),
    ("DELETE", "/v1/agents/{id}"),
];

/// The request an operation's examples make: its path with the path
/// parameters' examples, a query of the query parameters' examples, and
/// the example body.
fn example_request(operation: &Value, path: &str) -> (String, Option<Value>) {
    let mut path = path.to_owned();
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().unwrap();
        let Some(example) = parameter.get("example") else { continue };
        let value = match example {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        match parameter["in"].as_str() {
            Some("path") => path = path.replace(&format!("{{{name}}}"), &value),
            Some("query") => query.push(format!("{name}={value}")),
            _ => {}
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let body = operation.pointer("/requestBody/content/application~1json/example").cloned();
    (path, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_request_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Offer mode, so that the offer example has an offer to answer; no
    // agents but the examples' own.
    config.tenants = vec![TenantConfig {
        name: "demo".to_owned(),
        tokens: vec![TOKEN.to_owned()],
        demo_catalog: true,
        router: RouterConfig {
            offers: Some(OfferPolicy { timeout_ms: 600_000, max_missed: 3 }),
            ..RouterConfig::default()
        },
        // The webhook examples' endpoint (nothing listens there).
        webhooks: vec![loketd::WebhookConfig {
            name: Some("crm".to_owned()),
            url: "http://127.0.0.1:9/hooks".to_owned(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            events: vec!["*".to_owned()],
            ..loketd::WebhookConfig::default()
        }],
        ..TenantConfig::default()
    }];
    let daemon = Spawned::start(config).await.unwrap();
    let description = description();
    let described: BTreeSet<(String, String)> = operations(&description).into_iter().collect();
    let ordered: BTreeSet<(String, String)> =
        EXAMPLE_ORDER.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(described, ordered, "EXAMPLE_ORDER lists every described operation once");
    assert_eq!(ordered.len(), EXAMPLE_ORDER.len());

    for &(method, path) in EXAMPLE_ORDER {
        let operation = &description["paths"][path][method.to_lowercase()];
        if (method, path) == ("POST", "/v1/conversations/{id}/transfer") {
            // The transfer example's agent, registered like the agent
            // example's.
            let agents = &description["paths"]["/v1/agents"]["post"];
            let (_, agent) = example_request(agents, "/v1/agents");
            let mut agent = agent.unwrap();
            let target = operation.pointer("/requestBody/content/application~1json/example/agent");
            agent["id"] = target.unwrap().clone();
            let (status, body) =
                request(daemon.http, "POST", "/v1/agents", Some(TOKEN), Some(&agent)).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        }
        let (concrete, body) = example_request(operation, path);
        let token = path.starts_with("/v1/").then_some(TOKEN);
        let (status, answer) = request(daemon.http, method, &concrete, token, body.as_ref()).await;
        if path == "/v1/cluster" {
            // A daemon on its own says so (tests/cluster.rs asks a cluster).
            assert_eq!(status, 404, "{}", String::from_utf8_lossy(&answer));
            assert!(String::from_utf8_lossy(&answer).contains("not_clustered"));
            continue;
        }
        assert!(
            (200..300).contains(&status),
            "{method} {concrete} with its example {} answered {status}: {}",
            body.map(|b| b.to_string()).unwrap_or_default(),
            String::from_utf8_lossy(&answer)
        );
    }
    daemon.shutdown().await.unwrap();
}
