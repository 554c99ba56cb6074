//! `loket load`: an open-loop load generator for `loketd`, over HTTP or the
//! binary ingest protocol (`loket-wire`).
//!
//! Open loop and coordinated-omission aware: every connection has a fixed
//! schedule of intended send times, and a batch's latency is the time its
//! answer arrived minus its *intended* send time. A connection that falls
//! behind (a slow server, a full in-flight window) sends late, keeps the
//! schedule, and the lateness shows in the latencies.
//!
//! The schedule: `G = ceil(rate * duration / batch)` batches in all, batch
//! `g` intended at `start + g * batch / rate`, dealt round-robin to the
//! connections (connection `c` sends `g = c, c + C, c + 2C, ...`), so each
//! connection's batches are `C * batch / rate` apart and the connections
//! are evenly staggered. `sent_messages` is `G * batch` when all goes well.
//!
//! Traffic comes from `loket-workload` (conversations, follow-ups) with the
//! built-in texts or a file's (`--texts`), and is encoded before the clock
//! starts (a pool of at most [`POOL_MESSAGES`] messages, reused round-robin
//! by longer runs), so generating it is not measured. Each connection has
//! its own range of conversation and customer ids ([`traffic`]).
//!
//! Output: progress once a second on stderr; the last stdout line is one
//! JSON object ([`Report`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use loket_wire::{Frame, FrameCodec, Hello, Limits, PROTOCOL_VERSION, encode_frame};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Decoder;

mod tls;
mod traffic;

use traffic::{OPEN_PER_CONNECTION, Texts, TrafficSpec, build_pool};

/// Most messages pre-generated in all; longer runs reuse the pool.
pub const POOL_MESSAGES: u64 = 500_000;
/// Most batches in flight per binary connection.
pub const WINDOW: usize = 1024;
/// A batch sent later than this after its intended time counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(5);
/// How long to wait for outstanding answers after the schedule ends.
pub const DRAIN: Duration = Duration::from_secs(10);
/// How long to wait for a TCP connection and the binary handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest coalesced write of due binary batches.
const MAX_WRITE: usize = 1 << 20;

/// Which protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `POST /v1/messages/batch` with a JSON body, one request in flight per
    /// keep-alive connection.
    Http,
    /// The binary ingest protocol, batches pipelined.
    Binary,
}

/// How the generated traffic names conversations and customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdStyle {
    /// Integers.
    Numeric,
    /// Strings as platforms use them: UUIDs for conversations, phone-number
    /// keys for customers (the daemon interns them).
    Text,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The daemon's address, `host:port` (an `http://` prefix is ignored).
    #[arg(long)]
    target: String,
    /// Protocol.
    #[arg(long, value_enum, default_value = "binary")]
    protocol: Protocol,
    /// Messages per second, over all connections.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to send: `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// TCP connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Bearer token.
    #[arg(long, default_value = "demo-token")]
    token: String,
    /// Messages per batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Random seed for the traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Conversation and customer ids: integers, or strings (UUIDs and
    /// phone numbers) as platforms send them.
    #[arg(long, value_enum, default_value = "numeric")]
    ids: IdStyle,
    /// What customers write: a file with one message per line, or a CSV
    /// file (name ending in `.csv`) with a `text` column, such as the
    /// CLINC150 and BANKING77 files. Each message draws one at random and
    /// leaves its language to the server. Without it, a few dozen built-in
    /// shop messages, which the scorer's token cache knows by heart.
    #[arg(long, value_name = "FILE")]
    texts: Option<PathBuf>,
    /// Open conversations that follow-ups go to, over all connections
    /// (default 1,000 per connection). One message in ten opens a new
    /// conversation, which takes the place of the oldest.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    conversations: Option<u64>,
    /// Speak TLS to the target (a `loketd` with `[tls]`).
    #[arg(long)]
    tls: bool,
    /// Trust the certificate authorities in this PEM file instead of the
    /// usual public ones (Mozilla's list).
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca: Option<PathBuf>,
    /// A client certificate chain (PEM), for a binary listener with
    /// `client_ca`.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
}

/// The last stdout line.
#[derive(Debug, Serialize)]
pub struct Report {
    protocol: Protocol,
    ids: IdStyle,
    target: String,
    rate: u64,
    duration_s: f64,
    connections: usize,
    batch: usize,
    /// `built-in`, or how many texts the `--texts` file held.
    texts: String,
    /// Open conversations over all connections.
    conversations: u64,
    sent_messages: u64,
    acked_messages: u64,
    errors: u64,
    achieved_msgs_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
}

/// Parses a duration such as `10s`, `500ms`, `2m` or `1m 30s`; must be
/// positive.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("the duration must be positive".into());
    }
    Ok(duration)
}

/// One connection's share of the run: batches `g = connection, connection +
/// connections, ...` below `total`, batch `g` intended `g * batch / rate`
/// seconds after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    connection: u64,
    connections: u64,
    total: u64,
    batch: u64,
    rate: u64,
}

impl Schedule {
    /// Connection `connection`'s schedule.
    pub fn new(
        rate: u64,
        batch: usize,
        connections: usize,
        duration: Duration,
        connection: usize,
    ) -> Schedule {
        let batch = batch.max(1) as u64;
        let rate = rate.max(1);
        // ceil(rate * duration / batch), in nanoseconds to keep `500ms` exact.
        let wanted = u128::from(rate) * duration.as_nanos();
        let per_batch = u128::from(batch) * 1_000_000_000;
        let total = wanted.div_ceil(per_batch).min(u128::from(u64::MAX)) as u64;
        Schedule {
            connection: connection as u64,
            connections: connections.max(1) as u64,
            total,
            batch,
            rate,
        }
    }

    /// Batches in the whole run, over all connections.
    pub fn total_batches(&self) -> u64 {
        self.total
    }

    /// This connection's number of batches.
    pub fn batches(&self) -> u64 {
        if self.connection >= self.total {
            0
        } else {
            (self.total - self.connection).div_ceil(self.connections)
        }
    }

    /// When this connection's batch `i` should go, after the start.
    pub fn offset(&self, i: u64) -> Duration {
        let g = u128::from(self.connection) + u128::from(i) * u128::from(self.connections);
        let nanos = g * u128::from(self.batch) * 1_000_000_000 / u128::from(self.rate);
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }
}

/// Counters shared with the progress printer.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    late: AtomicU64,
}

/// What one connection measured.
#[derive(Debug)]
struct Outcome {
    histogram: Histogram<u64>,
    last_answer: Option<Instant>,
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 1 hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    ensure!(args.rate >= 1, "--rate must be at least 1 message per second");
    ensure!(args.connections >= 1, "--connections must be at least 1");
    ensure!(args.batch >= 1, "--batch must be at least 1");
    let limits = Limits::default();
    ensure!(
        args.protocol == Protocol::Http || args.batch <= limits.max_batch_messages as usize,
        "--batch {} is over the binary protocol's limit of {} messages",
        args.batch,
        limits.max_batch_messages
    );
    let target = args.target.trim().trim_start_matches("http://").trim_end_matches('/').to_owned();
    ensure!(!target.is_empty(), "--target is empty");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, target))
}

async fn run_async(args: LoadArgs, target: String) -> anyhow::Result<()> {
    let schedules: Vec<Schedule> = (0..args.connections)
        .map(|c| Schedule::new(args.rate, args.batch, args.connections, args.duration, c))
        .collect();
    let total_batches = schedules[0].total_batches();
    let pool_batches = (POOL_MESSAGES / (args.batch as u64 * args.connections as u64)).max(1);

    // Traffic first, off the clock.
    let generated = Instant::now();
    let texts = match &args.texts {
        Some(path) => Texts::read(path)?,
        None => Texts::BuiltIn,
    };
    let open_per_connection = match args.conversations {
        Some(n) => usize::try_from(n.div_ceil(args.connections as u64)).unwrap_or(usize::MAX),
        None => OPEN_PER_CONNECTION,
    };
    let spec = TrafficSpec {
        protocol: args.protocol,
        ids: args.ids,
        texts: &texts,
        open_per_connection,
        seed: args.seed,
    };
    let pools: Vec<Vec<Bytes>> = schedules
        .iter()
        .enumerate()
        .map(|(c, schedule)| {
            let count = schedule.batches().min(pool_batches) as usize;
            build_pool(&spec, c, count, args.batch)
        })
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "loket load: {} {} batches of {} over {} connection(s) to {} at {} msgs/s for {:?}, \
         {} texts, {} open conversations (traffic generated in {:.2?})",
        total_batches,
        match args.protocol {
            Protocol::Http => "HTTP",
            Protocol::Binary => "binary",
        },
        args.batch,
        args.connections,
        target,
        args.rate,
        args.duration,
        texts.describe(),
        open_per_connection * args.connections,
        generated.elapsed()
    );

    // Connect everything before the clock starts.
    let tls = if args.tls { Some(Arc::new(tls::Client::new(&args, &target)?)) } else { None };
    let mut connections = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        let stream = connect(&target, tls.as_deref()).await?;
        let connection = match args.protocol {
            Protocol::Binary => {
                Connection::Binary(connect_binary(stream, &target, &args.token).await?)
            }
            Protocol::Http => Connection::Http(connect_http(stream, &target).await?),
        };
        if c == 0
            && let Connection::Binary((_, _, tenant)) = &connection
        {
            eprintln!("loket load: welcomed as tenant {tenant:?}");
        }
        connections.push(connection);
    }

    let counters = Arc::new(Counters::default());
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now() + Duration::from_millis(20);
    let deadline = start + args.duration + DRAIN;
    let progress = tokio::spawn(progress(counters.clone(), done.clone(), start));
    let mut tasks = Vec::with_capacity(args.connections);
    for ((connection, schedule), pool) in connections.into_iter().zip(schedules).zip(pools) {
        let counters = counters.clone();
        let plan = Plan { schedule, pool, start, deadline, batch: args.batch as u64 };
        tasks.push(match connection {
            Connection::Binary((stream, buffer, _)) => {
                tokio::spawn(drive_binary(stream, buffer, plan, counters))
            }
            Connection::Http(sender) => {
                let host = target.clone();
                let token = args.token.clone();
                tokio::spawn(drive_http(sender, host, token, tls.clone(), plan, counters))
            }
        });
    }
    let mut histogram = new_histogram();
    let mut last_answer = None;
    for task in tasks {
        let outcome = task.await.context("a connection task failed")?;
        histogram.add(&outcome.histogram).context("merging latency histograms")?;
        last_answer = last_answer.max(outcome.last_answer);
    }
    done.store(true, Ordering::Relaxed);
    let _ = progress.await;

    let sent = counters.sent.load(Ordering::Relaxed);
    let acked = counters.acked.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    let late = counters.late.load(Ordering::Relaxed);
    let elapsed = last_answer
        .map(|at| at.saturating_duration_since(start))
        .unwrap_or_default()
        .max(args.duration);
    let quantile = |q: f64| if histogram.is_empty() { 0 } else { histogram.value_at_quantile(q) };
    let report = Report {
        protocol: args.protocol,
        ids: args.ids,
        target: args.target.clone(),
        rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        connections: args.connections,
        batch: args.batch,
        texts: texts.describe(),
        conversations: (open_per_connection * args.connections) as u64,
        sent_messages: sent,
        acked_messages: acked,
        errors,
        achieved_msgs_per_sec: acked as f64 / elapsed.as_secs_f64(),
        p50_us: quantile(0.50),
        p99_us: quantile(0.99),
        p999_us: quantile(0.999),
        max_us: if histogram.is_empty() { 0 } else { histogram.max() },
    };
    eprintln!(
        "loket load: sent {sent}, acked {acked}, errors {errors}, late batches {late}; \
         {:.0} msgs/s; latency p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        report.achieved_msgs_per_sec, report.p50_us, report.p99_us, report.p999_us, report.max_us
    );
    println!("{}", serde_json::to_string(&report)?);
    if acked == 0 {
        bail!("nothing was acked by {}", args.target);
    }
    Ok(())
}

/// Prints the counters once a second until `done`.
async fn progress(counters: Arc<Counters>, done: Arc<AtomicBool>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut before = (0, 0);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
        }
        let sent = counters.sent.load(Ordering::Relaxed);
        let acked = counters.acked.load(Ordering::Relaxed);
        eprintln!(
            "[{:>4.0}s] sent {sent} (+{}/s), acked {acked} (+{}/s), errors {}, late batches {}",
            start.elapsed().as_secs_f64(),
            sent - before.0,
            acked - before.1,
            counters.errors.load(Ordering::Relaxed),
            counters.late.load(Ordering::Relaxed),
        );
        before = (sent, acked);
    }
}

/// A connection, set up before the clock starts.
enum Connection {
    /// The stream after the handshake, bytes already read past `Welcome`,
    /// and the tenant.
    Binary((Stream, BytesMut, String)),
    /// A keep-alive HTTP/1.1 connection.
    Http(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
}

/// One connection's work.
struct Plan {
    schedule: Schedule,
    pool: Vec<Bytes>,
    start: Instant,
    deadline: Instant,
    batch: u64,
}

impl Plan {
    fn intended(&self, i: u64) -> Instant {
        self.start + self.schedule.offset(i)
    }

    fn body(&self, i: u64) -> &Bytes {
        &self.pool[(i % self.pool.len() as u64) as usize]
    }
}

/// A connection to the target: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.write_all(bytes).await,
            Stream::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }

    async fn read_buf(&mut self, buffer: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read_buf(buffer).await,
            Stream::Tls(stream) => stream.read_buf(buffer).await,
        }
    }
}

/// Connects, with a TLS handshake when `tls` is given.
async fn connect(target: &str, tls: Option<&tls::Client>) -> anyhow::Result<Stream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
        .await
        .map_err(|_| anyhow::anyhow!("cannot connect to {target}: timed out"))?
        .with_context(|| format!("cannot connect to {target}"))?;
    stream.set_nodelay(true)?;
    match tls {
        None => Ok(Stream::Plain(stream)),
        Some(tls) => {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(stream))
                .await
                .map_err(|_| anyhow::anyhow!("TLS handshake with {target}: timed out"))?
                .with_context(|| format!("TLS handshake with {target}"))?;
            Ok(Stream::Tls(Box::new(stream)))
        }
    }
}

/// Says `Hello` on `stream` and waits for `Welcome`.
async fn connect_binary(
    mut stream: Stream,
    target: &str,
    token: &str,
) -> anyhow::Result<(Stream, BytesMut, String)> {
    let mut hello = Vec::new();
    encode_frame(
        &Frame::Hello(Hello { version: PROTOCOL_VERSION, token: token.to_owned() }),
        &mut hello,
    )?;
    stream.write_all(&hello).await.with_context(|| format!("sending Hello to {target}"))?;
    let mut codec = FrameCodec::new(Limits::default());
    let mut buffer = BytesMut::with_capacity(8192);
    let frame = tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            if let Some(frame) = codec.decode(&mut buffer)? {
                return Ok::<_, anyhow::Error>(frame);
            }
            if stream.read_buf(&mut buffer).await? == 0 {
                bail!("connection closed before Welcome");
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("{target}: no Welcome within {CONNECT_TIMEOUT:?}"))?
    .with_context(|| format!("handshake with {target}"))?;
    match frame {
        Frame::Welcome(welcome) => Ok((stream, buffer, welcome.tenant)),
        Frame::Error(error) => {
            bail!("{target} refused the connection: {} ({})", error.message, error.code)
        }
        other => bail!("{target} answered Hello with a {:?} frame", other.frame_type()),
    }
}

async fn connect_http(
    stream: Stream,
    target: &str,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    async fn handshake<S>(
        stream: S,
        target: &str,
    ) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP handshake with {target}"))?;
        tokio::spawn(async move {
            // Errors surface on the requests.
            let _ = connection.await;
        });
        Ok(sender)
    }
    match stream {
        Stream::Plain(stream) => handshake(stream, target).await,
        Stream::Tls(stream) => handshake(stream, target).await,
    }
}

/// A batch waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    intended: Instant,
    messages: u64,
}

/// Sends the binary batches on schedule, pipelined, and reads the answers.
async fn drive_binary(
    stream: Stream,
    buffer: BytesMut,
    plan: Plan,
    counters: Arc<Counters>,
) -> Outcome {
    match stream {
        Stream::Plain(stream) => {
            let (read, write) = stream.into_split();
            drive_halves(read, write, buffer, plan, counters).await
        }
        Stream::Tls(stream) => {
            let (read, write) = tokio::io::split(*stream);
            drive_halves(read, write, buffer, plan, counters).await
        }
    }
}

async fn drive_halves<R, W>(
    read: R,
    write: W,
    buffer: BytesMut,
    plan: Plan,
    counters: Arc<Counters>,
) -> Outcome
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (tx, rx) = mpsc::channel::<InFlight>(WINDOW);
    let expected = plan.schedule.batches();
    let deadline = plan.deadline;
    let reader = tokio::spawn(read_answers(read, buffer, rx, expected, deadline, counters.clone()));
    send_binary(write, &plan, tx, &counters).await;
    match reader.await {
        Ok(outcome) => outcome,
        Err(_) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            Outcome { histogram: new_histogram(), last_answer: None }
        }
    }
}

async fn send_binary(
    mut write: impl tokio::io::AsyncWrite + Unpin,
    plan: &Plan,
    tx: mpsc::Sender<InFlight>,
    counters: &Counters,
) {
    let count = plan.schedule.batches();
    let mut out: Vec<u8> = Vec::with_capacity(MAX_WRITE);
    let mut i = 0;
    'schedule: while i < count {
        tokio::select! {
            _ = tokio::time::sleep_until(plan.intended(i)) => {}
            _ = tokio::time::sleep_until(plan.deadline) => break,
        }
        // Everything due by now goes in one write, as far as the window allows.
        let now = Instant::now();
        out.clear();
        let mut batches = 0u64;
        while i < count && out.len() < MAX_WRITE {
            let intended = plan.intended(i);
            if intended > now && batches > 0 {
                break;
            }
            let permit = if batches == 0 {
                // Wait for room in the window; the batch goes late.
                tokio::select! {
                    permit = tx.reserve() => permit.ok(),
                    _ = tokio::time::sleep_until(plan.deadline) => break 'schedule,
                }
            } else {
                tx.try_reserve().ok()
            };
            let Some(permit) = permit else { break };
            permit.send(InFlight { intended, messages: plan.batch });
            if Instant::now().saturating_duration_since(intended) > LATE_AFTER {
                counters.late.fetch_add(1, Ordering::Relaxed);
            }
            out.extend_from_slice(plan.body(i));
            batches += 1;
            i += 1;
        }
        if batches == 0 {
            // The reader is gone: the connection ended.
            break;
        }
        // (Flushing pushes TLS records out; plain TCP has nothing to flush.)
        if write.write_all(&out).await.is_err() || write.flush().await.is_err() {
            // The reader sees the connection end and counts what is missing.
            return;
        }
        counters.sent.fetch_add(batches * plan.batch, Ordering::Relaxed);
    }
    let _ = write.flush().await;
}

/// Error answers printed per connection before going quiet.
const ERRORS_SHOWN: u32 = 3;

/// Reads `Ack` and `Error` frames and matches them, in order, with the
/// batches in flight. Stops after `expected` answers, at the end of the
/// stream, on a frame it cannot decode, or at `deadline`; batches still in
/// flight then count as errors.
async fn read_answers(
    mut read: impl tokio::io::AsyncRead + Unpin,
    mut buffer: BytesMut,
    mut in_flight: mpsc::Receiver<InFlight>,
    expected: u64,
    deadline: Instant,
    counters: Arc<Counters>,
) -> Outcome {
    let mut codec = FrameCodec::new(Limits::default());
    let mut histogram = new_histogram();
    let mut last_answer = None;
    let mut answered = 0u64;
    let mut shown = 0u32;
    let mut report = |what: String| {
        if shown < ERRORS_SHOWN {
            eprintln!("loket load: {what}");
        }
        shown += 1;
    };
    'read: while answered < expected {
        loop {
            let frame = match codec.decode(&mut buffer) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    report(format!("undecodable answer: {error}"));
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    break 'read;
                }
            };
            let now = Instant::now();
            let Ok(batch) = in_flight.try_recv() else {
                report(format!("answer with no batch in flight: {frame:?}"));
                counters.errors.fetch_add(1, Ordering::Relaxed);
                break 'read;
            };
            answered += 1;
            last_answer = Some(now);
            match frame {
                Frame::Ack(ack) => {
                    let accepted = u64::from(ack.accepted).min(batch.messages);
                    counters.acked.fetch_add(accepted, Ordering::Relaxed);
                    let micros = now.saturating_duration_since(batch.intended).as_micros();
                    histogram.saturating_record(micros.clamp(1, u128::from(u64::MAX)) as u64);
                }
                Frame::Error(error) => {
                    report(format!(
                        "batch {} rejected: {} ({})",
                        error.batch_id, error.message, error.code
                    ));
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
                other => {
                    report(format!("unexpected {:?} frame", other.frame_type()));
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    break 'read;
                }
            }
        }
        if answered >= expected {
            break;
        }
        tokio::select! {
            read = read.read_buf(&mut buffer) => match read {
                Ok(0) => {
                    if !in_flight.is_empty() {
                        report("the server closed the connection".to_owned());
                    }
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    report(format!("reading answers: {error}"));
                    break;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                report(format!("gave up waiting for answers after a drain of {DRAIN:?}"));
                break;
            }
        }
    }
    if shown > ERRORS_SHOWN {
        eprintln!("loket load: ... and {} more problems on this connection", shown - ERRORS_SHOWN);
    }
    // Batches still in flight were never answered.
    in_flight.close();
    while in_flight.try_recv().is_ok() {
        counters.errors.fetch_add(1, Ordering::Relaxed);
    }
    Outcome { histogram, last_answer }
}

/// Sends the HTTP batches on schedule, one request in flight, reconnecting
/// if the server closes the connection.
async fn drive_http(
    mut sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    token: String,
    tls: Option<Arc<tls::Client>>,
    plan: Plan,
    counters: Arc<Counters>,
) -> Outcome {
    let authorization = format!("Bearer {token}");
    let mut histogram = new_histogram();
    let mut last_answer = None;
    let mut shown = 0u32;
    let mut report = |what: String| {
        if shown < ERRORS_SHOWN {
            eprintln!("loket load: {what}");
        }
        shown += 1;
    };
    for i in 0..plan.schedule.batches() {
        let intended = plan.intended(i);
        tokio::select! {
            _ = tokio::time::sleep_until(intended) => {}
            _ = tokio::time::sleep_until(plan.deadline) => break,
        }
        if sender.ready().await.is_err() {
            let fresh = match connect(&host, tls.as_deref()).await {
                Ok(stream) => connect_http(stream, &host).await,
                Err(error) => Err(error),
            };
            match fresh {
                Ok(fresh) => sender = fresh,
                Err(error) => {
                    report(format!("reconnecting: {error:#}"));
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        if Instant::now().saturating_duration_since(intended) > LATE_AFTER {
            counters.late.fetch_add(1, Ordering::Relaxed);
        }
        let request = hyper::Request::post("/v1/messages/batch")
            .header(hyper::header::HOST, host.as_str())
            .header(hyper::header::AUTHORIZATION, authorization.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(plan.body(i).clone()));
        let Ok(request) = request else {
            report("cannot build the request (bad --target or --token?)".to_owned());
            counters.errors.fetch_add(1, Ordering::Relaxed);
            break;
        };
        counters.sent.fetch_add(plan.batch, Ordering::Relaxed);
        let answer = tokio::time::timeout_at(plan.deadline, async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        let now = Instant::now();
        match answer {
            Ok(Ok((status, body))) if status == hyper::StatusCode::OK => {
                last_answer = Some(now);
                let accepted = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("accepted").and_then(serde_json::Value::as_u64))
                    .unwrap_or(plan.batch)
                    .min(plan.batch);
                counters.acked.fetch_add(accepted, Ordering::Relaxed);
                let micros = now.saturating_duration_since(intended).as_micros();
                histogram.saturating_record(micros.clamp(1, u128::from(u64::MAX)) as u64);
            }
            Ok(Ok((status, body))) => {
                last_answer = Some(now);
                let body = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                report(format!("HTTP {status}: {body}"));
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(error)) => {
                report(format!("request failed: {error}"));
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                report(format!("gave up waiting for an answer after a drain of {DRAIN:?}"));
                counters.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    if shown > ERRORS_SHOWN {
        eprintln!("loket load: ... and {} more problems on this connection", shown - ERRORS_SHOWN);
    }
    Outcome { histogram, last_answer }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_the_contract_says() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_schedule_deals_batches_round_robin_at_the_rate() {
        // 1,000 msgs/s in batches of 100 for 1 s over 3 connections: 10
        // batches, 100 ms apart overall, 300 ms apart per connection.
        let schedules: Vec<_> =
            (0..3).map(|c| Schedule::new(1_000, 100, 3, Duration::from_secs(1), c)).collect();
        assert_eq!(schedules[0].total_batches(), 10);
        assert_eq!(schedules.iter().map(Schedule::batches).collect::<Vec<_>>(), [4, 3, 3]);
        assert_eq!(schedules[0].offset(0), Duration::ZERO);
        assert_eq!(schedules[1].offset(0), Duration::from_millis(100));
        assert_eq!(schedules[2].offset(0), Duration::from_millis(200));
        assert_eq!(schedules[0].offset(1), Duration::from_millis(300));
        assert_eq!(schedules[0].offset(3), Duration::from_millis(900));
        // Every intended time is inside the run, and they are all distinct.
        let mut all: Vec<Duration> =
            schedules.iter().flat_map(|s| (0..s.batches()).map(|i| s.offset(i))).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10);
        assert!(all.iter().all(|t| *t < Duration::from_secs(1)));
    }

    #[test]
    fn the_schedule_rounds_up_and_handles_more_connections_than_batches() {
        // 150 messages in batches of 100: 2 batches, so at least the rate.
        let s = Schedule::new(150, 100, 1, Duration::from_secs(1), 0);
        assert_eq!((s.total_batches(), s.batches()), (2, 2));
        assert_eq!(s.offset(1), Duration::from_nanos(666_666_666));
        // 50 msgs/s for 500 ms: one batch; connections past it send nothing.
        let lone = Schedule::new(50, 100, 4, Duration::from_millis(500), 0);
        assert_eq!(lone.batches(), 1);
        let idle = Schedule::new(50, 100, 4, Duration::from_millis(500), 3);
        assert_eq!(idle.batches(), 0);
        // A high rate stays exact over a long run.
        let fast = Schedule::new(1_000_000, 100, 8, Duration::from_secs(120), 7);
        assert_eq!(fast.total_batches(), 1_200_000);
        assert_eq!(fast.batches(), 150_000);
        assert_eq!(fast.offset(fast.batches() - 1), Duration::from_nanos(119_999_900_000));
    }
}
