//! The binary ingest protocol (`loket-wire`) over TCP.
//!
//! A connection starts with `Hello` (its token names the tenant) and is
//! answered with `Welcome`. Then the client streams `Batch` frames without
//! waiting; each is scored on this connection's task, sent to the tenant's
//! sequencer, and answered with `Ack` once durable, or `Error`, in batch
//! order. A malformed batch gets an `Error` and the connection goes on; a
//! malformed frame, an oversized frame or a client idle (or not reading) for
//! longer than `idle_timeout_ms` ends the connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use loket_wire::{Ack as AckFrame, ErrorFrame, Frame, Limits, ServerCodec, Welcome, codes};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::codec::Framed;

use crate::command::Command;
use crate::command::SkillRecord;
use crate::config::LimitsConfig;
use crate::http::AppState;
use crate::state::{ApplyError, Incoming, scored};
use crate::tenant::{Tenant, TenantError};
use crate::tls::Tls;

/// Batches a connection may have in flight before it stops reading.
const MAX_IN_FLIGHT: usize = 256;

/// Accepts connections until `shutdown`, then waits for open connections to
/// finish their batches in flight. With `tls`, a connection first completes
/// a TLS handshake (with a client certificate when `client_ca` is set)
/// within `idle_timeout_ms`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<Arc<Tls>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let acceptor = tls.as_ref().map(|tls| tls.binary());
                    connections.spawn(async move {
                        let ended = match acceptor {
                            None => connection(stream, state).await,
                            Some(acceptor) => {
                                let idle = Duration::from_millis(state.limits.idle_timeout_ms.max(1));
                                match tokio::time::timeout(idle, acceptor.accept(stream)).await {
                                    Ok(Ok(stream)) => connection(stream, state).await,
                                    Ok(Err(error)) => Err(ConnectionError::Tls(error)),
                                    Err(_) => Err(ConnectionError::Idle(idle)),
                                }
                            }
                        };
                        if let Err(error) = ended {
                            tracing::debug!(%peer, %error, "binary connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

fn wire_limits(limits: &LimitsConfig) -> Limits {
    Limits {
        max_frame_bytes: u32::try_from(limits.max_frame_bytes).unwrap_or(u32::MAX),
        max_batch_messages: u32::try_from(limits.max_batch_messages).unwrap_or(u32::MAX),
        max_text_bytes: u32::try_from(limits.max_text_bytes).unwrap_or(u32::MAX),
    }
}

fn error_frame(batch_id: u64, code: &str, message: impl Into<String>) -> Frame {
    Frame::Error(ErrorFrame { batch_id, code: code.to_owned(), message: message.into() })
}

fn tenant_error_frame(batch_id: u64, error: &TenantError) -> Frame {
    let code = match error {
        TenantError::RateLimited(_) => codes::RATE_LIMITED,
        TenantError::ShuttingDown => codes::SHUTTING_DOWN,
        TenantError::NotLeader { .. } => codes::NOT_LEADER,
        TenantError::Apply(ApplyError::UnknownSkill { .. }) => codes::UNKNOWN_SKILL,
        TenantError::Apply(_) => codes::BAD_BATCH,
        TenantError::JournalUnavailable(_) | TenantError::Startup { .. } => codes::INTERNAL,
    };
    error_frame(batch_id, code, error.describe())
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Wire(#[from] loket_wire::WireError),
    #[error("idle for longer than {0:?}")]
    Idle(Duration),
    #[error("{0}")]
    Protocol(String),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
}

async fn connection<S>(stream: S, state: AppState) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = wire_limits(&state.limits);
    let idle = Duration::from_millis(state.limits.idle_timeout_ms.max(1));
    let mut framed = Framed::new(stream, ServerCodec::new(limits));
    let mut shutdown = state.shutdown.clone();

    let hello = match tokio::time::timeout(idle, framed.next()).await {
        Err(_) => return Err(ConnectionError::Idle(idle)),
        Ok(None) => return Ok(()),
        Ok(Some(frame)) => frame?,
    };
    let tenant = match hello {
        Ok(Frame::Hello(hello)) => match state.tokens.get(hello.token.as_str()) {
            Some(tenant) if hello.version == loket_wire::PROTOCOL_VERSION => tenant.clone(),
            Some(_) => {
                let message = format!("protocol version {} is not supported", hello.version);
                send(
                    &mut framed,
                    error_frame(0, codes::UNSUPPORTED_VERSION, message.clone()),
                    idle,
                )
                .await?;
                return Err(ConnectionError::Protocol(message));
            }
            None => {
                send(&mut framed, error_frame(0, codes::UNAUTHORIZED, "unknown token"), idle)
                    .await?;
                return Err(ConnectionError::Protocol("unknown token".to_owned()));
            }
        },
        Ok(other) => {
            let message =
                format!("the first frame must be Hello, not {}", other.frame_type().name());
            send(&mut framed, error_frame(0, codes::BAD_FRAME, message.clone()), idle).await?;
            return Err(ConnectionError::Protocol(message));
        }
        Err(error) => {
            send(&mut framed, Frame::from_error(&error), idle).await?;
            return Err(error.into());
        }
    };
    let welcome = Welcome {
        tenant: tenant.name().to_owned(),
        max_frame_bytes: limits.max_frame_bytes,
        max_batch_messages: limits.max_batch_messages,
    };
    send(&mut framed, Frame::Welcome(welcome), idle).await?;

    let mut in_flight = FuturesOrdered::new();
    let mut scratch = tenant.pipeline().scratch();
    let mut reading = true;
    let mut last_activity = Instant::now();
    loop {
        if !reading && in_flight.is_empty() {
            return Ok(());
        }
        tokio::select! {
            biased;
            Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                send(&mut framed, reply, idle).await?;
                last_activity = Instant::now();
            }
            frame = framed.next(), if reading && in_flight.len() < MAX_IN_FLIGHT => {
                last_activity = Instant::now();
                match frame {
                    None => reading = false,
                    Some(Err(error)) => {
                        // A framing error: answer what is in flight, say why, close.
                        while let Some(reply) = in_flight.next().await {
                            send(&mut framed, reply, idle).await?;
                        }
                        send(&mut framed, Frame::from_error(&error), idle).await?;
                        return Err(error.into());
                    }
                    Some(Ok(Err(bad_batch))) => {
                        let reply = Frame::from_error(&bad_batch);
                        in_flight.push_back(ready(reply));
                    }
                    Some(Ok(Ok(Frame::Batch(batch)))) => {
                        in_flight.push_back(submit_batch(&tenant, &mut scratch, &batch));
                    }
                    Some(Ok(Ok(other))) => {
                        let message = format!("unexpected {} frame after Hello", other.frame_type().name());
                        in_flight.push_back(ready(error_frame(0, codes::BAD_FRAME, message)));
                    }
                }
            }
            _ = shutdown.changed(), if reading => {
                // Finish what is in flight, then close.
                reading = false;
            }
            _ = tokio::time::sleep_until((last_activity + idle).into()), if reading && in_flight.is_empty() => {
                return Err(ConnectionError::Idle(idle));
            }
        }
    }
}

type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = Frame> + Send>>;

fn ready(frame: Frame) -> Reply {
    Box::pin(std::future::ready(frame))
}

fn submit_batch(
    tenant: &Arc<Tenant>,
    scratch: &mut loket_pipeline::Scratch,
    batch: &loket_wire::BatchFrame,
) -> Reply {
    let ingest = Instant::now();
    let batch_id = batch.batch_id();
    if let Err(error) = tenant.check_rate(batch.message_count()) {
        return ready(tenant_error_frame(batch_id, &error));
    }
    let pipeline = tenant.pipeline();
    let archived = batch.archived();
    for (index, message) in archived.messages.iter().enumerate() {
        if let Some(skill) = message.skills.iter().find(|s| !tenant.admits_skill(s.name.as_str())) {
            let error = TenantError::Apply(ApplyError::UnknownSkill {
                field: format!("message {index}: skills.{}", skill.name.as_str()),
                skill: skill.name.as_str().to_owned(),
            });
            return ready(tenant_error_frame(batch_id, &error));
        }
    }
    let store_text = tenant.stores_text();
    let messages = archived
        .messages
        .iter()
        .map(|message| {
            let incoming = Incoming {
                conversation: message.conversation_id.to_id(),
                customer: message.customer_id.to_id(),
                channel: message.channel,
                language: message.language,
                tier: message.tier,
                text: message.text.as_str(),
                skills: message
                    .skills
                    .iter()
                    .map(|s| SkillRecord { name: s.name.as_str().to_owned(), level: s.level })
                    .collect(),
            };
            scored(pipeline, scratch, incoming, store_text)
        })
        .collect();
    let receiver = tenant.submit(Command::Messages(messages), ingest);
    Box::pin(async move {
        match receiver.await.unwrap_or(Err(TenantError::ShuttingDown)) {
            Ok(ack) => Frame::Ack(AckFrame {
                batch_id,
                accepted: u32::try_from(ack.applied.decisions.len()).unwrap_or(u32::MAX),
                last_seq: ack.last_seq,
            }),
            Err(error) => tenant_error_frame(batch_id, &error),
        }
    })
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, ServerCodec>,
    frame: Frame,
    idle: Duration,
) -> Result<(), ConnectionError> {
    match tokio::time::timeout(idle, framed.send(frame)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ConnectionError::Idle(idle)),
    }
}
