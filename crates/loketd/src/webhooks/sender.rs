//! One signed HTTP POST to an endpoint, over a kept-alive connection, and
//! what its answer means.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use standardwebhooks::Webhook;
use tokio::net::TcpStream;

/// Retry-After longer than this is taken as this.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Answer bodies are read (to keep the connection) up to this size.
const ANSWER_BYTES: usize = 64 << 10;

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// 410 Gone: the endpoint asks to be sent nothing more.
    Gone,
    /// Anything else: try again, not before `after` if the endpoint said
    /// (`Retry-After`).
    Failed {
        /// What happened, for the dead letter and the status.
        error: String,
        /// The endpoint's `Retry-After`.
        after: Option<Duration>,
    },
}

/// Sends one endpoint's events, one at a time, over one connection.
pub struct Sender {
    uri: Uri,
    authority: String,
    path: String,
    tls: Option<tokio_rustls::TlsConnector>,
    signer: Webhook,
    timeout: Duration,
    user_agent: String,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl Sender {
    /// A sender to `url`, signing with `secret` (`whsec_…`, checked by the
    /// configuration).
    ///
    /// # Errors
    /// A URL or secret the configuration check would have refused.
    pub fn new(url: &str, secret: &str, timeout: Duration) -> Result<Sender, String> {
        let uri: Uri = url.parse().map_err(|e| format!("url {url:?}: {e}"))?;
        let host = uri.host().ok_or_else(|| format!("url {url:?} has no host"))?;
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = format!("{host}:{port}");
        let path = uri.path_and_query().map_or("/".to_owned(), |p| p.as_str().to_owned());
        let tls = https.then(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config =
                rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
            tokio_rustls::TlsConnector::from(Arc::new(config))
        });
        let signer = Webhook::new(secret).map_err(|e| format!("secret: {e}"))?;
        Ok(Sender {
            uri,
            authority,
            path,
            tls,
            signer,
            timeout,
            user_agent: format!("loketd/{}", env!("CARGO_PKG_VERSION")),
            connection: None,
        })
    }

    /// POSTs `body` as message `id`, signed now; the whole attempt
    /// (connecting included) gives up after the timeout.
    pub async fn send(&mut self, id: &str, body: &Bytes) -> Outcome {
        match tokio::time::timeout(self.timeout, self.attempt(id, body)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                self.connection = None;
                Outcome::Failed { error, after: None }
            }
            Err(_) => {
                self.connection = None;
                Outcome::Failed {
                    error: format!("no answer within {} ms", self.timeout.as_millis()),
                    after: None,
                }
            }
        }
    }

    async fn attempt(&mut self, id: &str, body: &Bytes) -> Result<Outcome, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let signature = self.signer.sign(id, now, body).map_err(|e| format!("signing: {e}"))?;
        let request = Request::post(&self.path)
            .header(HOST, self.uri.authority().map_or("", |a| a.as_str()))
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len())
            .header(USER_AGENT, &self.user_agent)
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(body.clone()))
            .map_err(|e| format!("request: {e}"))?;
        if let Some(connection) = &mut self.connection
            && connection.ready().await.is_err()
        {
            self.connection = None;
        }
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(self.connect().await?),
        };
        let answer = connection.send_request(request).await.map_err(|e| format!("sending: {e}"))?;
        let status = answer.status();
        let after =
            answer.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(retry_after);
        // Read the answer so the connection can carry the next request.
        if Limited::new(answer.into_body(), ANSWER_BYTES).collect().await.is_err() {
            self.connection = None;
        }
        Ok(classify(status, after))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.authority))?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            Some(tls) => {
                let host = self.uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
                let name = rustls_pki_types::ServerName::try_from(host)
                    .map_err(|e| format!("server name: {e}"))?;
                let stream = tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", self.authority))?;
                handshake(TokioIo::new(stream)).await
            }
            None => handshake(TokioIo::new(stream)).await,
        }
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// What an answer with `status` (and `Retry-After`, parsed) means.
pub fn classify(status: StatusCode, after: Option<Duration>) -> Outcome {
    if status.is_success() {
        Outcome::Delivered
    } else if status == StatusCode::GONE {
        Outcome::Gone
    } else {
        Outcome::Failed { error: format!("HTTP {}", status.as_u16()), after }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (RFC 9110); at most a day.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
            Duration::from_millis(ms.max(0) as u64)
        }
    };
    Some(wait.min(LONGEST_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mean_what_the_specification_says() {
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Outcome::Delivered);
        assert_eq!(classify(StatusCode::GONE, None), Outcome::Gone);
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, after),
            Outcome::Failed { error: "HTTP 429".into(), after }
        );
        assert!(matches!(classify(StatusCode::MOVED_PERMANENTLY, None), Outcome::Failed { .. }));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_at_most_a_day() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("99999999"), Some(LONGEST_RETRY_AFTER));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let wait = retry_after(&soon).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn a_signature_verifies_with_the_specification_crate() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let mut headers = hyper::HeaderMap::new();
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"type":"closed"}"#;
        let signer = Webhook::new(secret).unwrap();
        let signature = signer.sign("msg_shop_1", now, body).unwrap();
        assert!(signature.starts_with("v1,"));
        headers.insert("webhook-id", "msg_shop_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        Webhook::new(secret).unwrap().verify(body, &headers).unwrap();
    }
}
