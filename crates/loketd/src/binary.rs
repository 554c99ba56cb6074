//! The binary ingest protocol (`loket-wire`) over TCP.
//!
//! A connection starts with `Hello` (its token names the tenant, its
//! version is 2 or 3) and is answered with `Welcome`. Then the client
//! streams `Batch` frames without waiting; each is scored on this
//! connection's task, sent to the tenant's sequencer, and answered with
//! `Ack` once durable, or `Error`, in batch order. From version 3 it may
//! interleave `Replies` and `Orders` frames: each item becomes the same
//! [`Command::Reply`] or [`Command::Order`] the HTTP API sends, one journal
//! record each, and the batch is answered once every item is durable or
//! refused. A malformed batch gets an `Error` and the connection goes on; a
//! malformed frame, an oversized frame or a client idle (or not reading) for
//! longer than `idle_timeout_ms` ends the connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use loket_wire::{
    Ack as AckFrame, ErrorFrame, Frame, Limits, OrderBatchFrame, ReplyBatchFrame, ServerCodec,
    Welcome, codes,
};
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

/// Refused items an `Error` frame for a reply or order batch names, at most.
const NAMED_REFUSALS: usize = 8;

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
    error_frame(batch_id, tenant_error_code(error), error.describe())
}

/// The wire code for a tenant's refusal.
fn tenant_error_code(error: &TenantError) -> &'static str {
    match error {
        TenantError::RateLimited(_) => codes::RATE_LIMITED,
        TenantError::ShuttingDown => codes::SHUTTING_DOWN,
        TenantError::NotLeader { .. } => codes::NOT_LEADER,
        TenantError::Apply(ApplyError::UnknownSkill { .. }) => codes::UNKNOWN_SKILL,
        TenantError::Apply(_) => codes::BAD_BATCH,
        TenantError::JournalUnavailable(_) | TenantError::Startup { .. } => codes::INTERNAL,
    }
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
    let versions = loket_wire::MIN_PROTOCOL_VERSION..=loket_wire::PROTOCOL_VERSION;
    let (tenant, version) = match hello {
        Ok(Frame::Hello(hello)) => match state.tokens.get(hello.token.as_str()) {
            Some(tenant) if versions.contains(&hello.version) => (tenant.clone(), hello.version),
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
                    Some(Ok(Ok(frame @ (Frame::Replies(_) | Frame::Orders(_)))))
                        if version < frame.frame_type().since_version() =>
                    {
                        let message = format!(
                            "{} frames need protocol version {}; this connection said {version}",
                            frame.frame_type().name(),
                            frame.frame_type().since_version(),
                        );
                        in_flight.push_back(ready(error_frame(0, codes::BAD_FRAME, message)));
                    }
                    Some(Ok(Ok(Frame::Replies(batch)))) => {
                        in_flight.push_back(submit_replies(&tenant, batch));
                    }
                    Some(Ok(Ok(Frame::Orders(batch)))) => {
                        in_flight.push_back(submit_orders(&tenant, batch));
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

/// Sends each reply of the batch to the sequencer as the command
/// `POST /v1/conversations/{id}/replies` sends.
fn submit_replies(tenant: &Arc<Tenant>, frame: ReplyBatchFrame) -> Reply {
    let batch = frame.into_batch();
    let commands = batch
        .replies
        .into_iter()
        .map(|reply| Command::Reply {
            conversation: reply.conversation_id,
            agent: reply.agent_id,
            at_ms: reply.at_ms,
        })
        .collect();
    submit_each(tenant, batch.batch_id, "replies", commands)
}

/// Sends each order of the batch to the sequencer as the command
/// `POST /v1/conversations/{id}/orders` sends (the currency in upper case;
/// the value, in hundredths, as it came).
fn submit_orders(tenant: &Arc<Tenant>, frame: OrderBatchFrame) -> Reply {
    let batch = frame.into_batch();
    let commands = batch
        .orders
        .into_iter()
        .map(|order| Command::Order {
            conversation: order.conversation_id,
            value_minor: order.value_minor,
            currency: order.currency.to_ascii_uppercase(),
            at_ms: order.at_ms,
        })
        .collect();
    submit_each(tenant, batch.batch_id, "orders", commands)
}

/// Submits `commands` in order, each applied and journaled on its own as
/// its HTTP request would be, and answers once all are durable or refused:
/// `Ack` (`accepted` = all of them) when every one applied, else one
/// `Error` with the first refusal's code that names the refused items by
/// index with the tenant's reason (the first [`NAMED_REFUSALS`]) and says
/// how many applied. When every item is refused for the same reason that
/// is not the items' (`not_leader`, `shutting_down`, `internal`), the
/// `Error` is the one a message batch gets.
fn submit_each(tenant: &Arc<Tenant>, batch_id: u64, kind: &str, commands: Vec<Command>) -> Reply {
    let ingest = Instant::now();
    let total = commands.len();
    let receivers: Vec<_> =
        commands.into_iter().map(|command| tenant.submit(command, ingest)).collect();
    let kind = kind.to_owned();
    Box::pin(async move {
        let mut last_seq = 0;
        let mut refused: Vec<(usize, TenantError)> = Vec::new();
        for (index, receiver) in receivers.into_iter().enumerate() {
            match receiver.await.unwrap_or(Err(TenantError::ShuttingDown)) {
                Ok(ack) => last_seq = last_seq.max(ack.last_seq),
                Err(error) => refused.push((index, error)),
            }
        }
        let Some((_, first)) = refused.first() else {
            return Frame::Ack(AckFrame {
                batch_id,
                accepted: u32::try_from(total).unwrap_or(u32::MAX),
                last_seq,
            });
        };
        let code = tenant_error_code(first);
        let batch_wide = code != codes::BAD_BATCH
            && refused.len() == total
            && refused.iter().all(|(_, error)| tenant_error_code(error) == code);
        if batch_wide {
            // Not the items' fault (not_leader, shutting_down, internal):
            // answered as a message batch would be.
            return tenant_error_frame(batch_id, first);
        }
        let named: Vec<String> = refused
            .iter()
            .take(NAMED_REFUSALS)
            .map(|(index, error)| format!("item {index}: {}", error.describe()))
            .collect();
        let more = refused.len().saturating_sub(NAMED_REFUSALS);
        let message = format!(
            "{kind} batch {batch_id}: {} of {total} refused, {} applied{}; {}{}",
            refused.len(),
            total - refused.len(),
            if last_seq > 0 { format!(" (last_seq {last_seq})") } else { String::new() },
            named.join("; "),
            if more > 0 { format!("; and {more} more") } else { String::new() },
        );
        error_frame(batch_id, code, message)
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
