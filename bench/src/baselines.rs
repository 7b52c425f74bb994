//! The baselines: what the same exchange costs without the stack.
//!
//! - raw ping-pong over loopback TCP and a Unix socket: one [`MESSAGE`]-byte
//!   message each way on one connection reused for every call, between this
//!   process and a second one (this binary re-executed as `bench pong`), in
//!   two styles: tokio on both sides (the runtime the host and extensions
//!   use) and blocking sockets (the kernel's floor);
//! - async-nats request/reply through `nats-server` to a responder in a
//!   second process (`bench nats-responder`);
//! - a native redis-rs GET from this process;
//! - a native client of the transport crate calling the echo extension
//!   (the stack without the guest, the host and the plugin).
//!
//! Every client runs as a task on a multi-threaded runtime, as the host's
//! callers do, not on the thread that blocks on the runtime (that would add
//! a hop between a worker and the main thread to each wake-up).

use std::io::{BufRead as _, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::report::Stats;

/// Runs `client` as a task on a fresh multi-threaded runtime.
fn on_runtime<F>(client: F) -> anyhow::Result<Stats>
where
    F: std::future::Future<Output = anyhow::Result<Stats>> + Send + 'static,
{
    tokio::runtime::Runtime::new()?.block_on(async { tokio::spawn(client).await? })
}

/// Bytes of each ping-pong message and NATS payload.
pub const MESSAGE: usize = 32;

/// The subject the raw NATS responder answers on.
pub const NATS_SUBJECT: &str = "bench.raw.echo";

/// How a ping-pong server or client does its I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Io {
    /// A multi-threaded tokio runtime (the host's and the extensions' kind).
    Tokio,
    /// Blocking `std` sockets, one thread per connection.
    Blocking,
}

impl Io {
    /// Its name on the command line and in progress lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::Blocking => "blocking",
        }
    }
}

/// A helper process (this binary, re-executed), killed on drop.
pub struct Helper {
    child: Child,
    /// Its `listening URL` lines, e.g. `tcp://127.0.0.1:4711`.
    pub addresses: Vec<String>,
}

impl Helper {
    /// Runs `bench ARGS…` and waits for its `ready` line.
    pub fn start(args: &[&str]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("own executable")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start `bench {}`", args.join(" ")))?;
        let stdout = child.stdout.take().context("helper stdout")?;
        let mut addresses = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line == "ready" {
                return Ok(Self { child, addresses });
            }
            if let Some(addr) = line.strip_prefix("listening ") {
                addresses.push(addr.to_string());
            }
        }
        let status = child.wait()?;
        bail!(
            "`bench {}` exited before it was ready: {status}",
            args.join(" ")
        )
    }

    /// The first announced address with `scheme`, without the scheme.
    pub fn address(&self, scheme: &str) -> anyhow::Result<&str> {
        let prefix = format!("{scheme}://");
        self.addresses
            .iter()
            .find_map(|a| a.strip_prefix(&prefix))
            .with_context(|| format!("the helper announced no {scheme} address"))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bench pong`: answers every [`MESSAGE`]-byte message with itself, on a
/// TCP listener and a Unix listener, until killed.
pub fn serve_pong(io: Io, tcp: &str, unix: &Path) -> anyhow::Result<()> {
    match io {
        Io::Tokio => tokio::runtime::Runtime::new()?.block_on(async {
            let tcp = tokio::net::TcpListener::bind(tcp).await?;
            let unix = tokio::net::UnixListener::bind(unix)?;
            announce(&tcp.local_addr()?.to_string(), &unix)?;
            tokio::try_join!(accept_tcp(tcp), accept_unix(unix))?;
            Ok(())
        }),
        Io::Blocking => {
            let tcp = std::net::TcpListener::bind(tcp)?;
            let unix = std::os::unix::net::UnixListener::bind(unix)?;
            announce(&tcp.local_addr()?.to_string(), &unix)?;
            std::thread::spawn(move || {
                for s in unix.incoming().map_while(Result::ok) {
                    std::thread::spawn(move || pong_blocking(s));
                }
            });
            for s in tcp.incoming() {
                let s = s?;
                s.set_nodelay(true)?;
                std::thread::spawn(move || pong_blocking(s));
            }
            Ok(())
        }
    }
}

async fn accept_tcp(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    loop {
        let (s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        tokio::spawn(pong_async(s));
    }
}

async fn accept_unix(listener: tokio::net::UnixListener) -> std::io::Result<()> {
    loop {
        let (s, _) = listener.accept().await?;
        tokio::spawn(pong_async(s));
    }
}

fn announce(tcp: &str, unix: &impl UnixAddr) -> anyhow::Result<()> {
    println!("listening tcp://{tcp}");
    println!("listening unix://{}", unix.path()?.display());
    println!("ready");
    std::io::stdout().flush()?;
    Ok(())
}

/// The bound path of a Unix listener, blocking or not.
trait UnixAddr {
    fn path(&self) -> anyhow::Result<PathBuf>;
}

impl UnixAddr for tokio::net::UnixListener {
    fn path(&self) -> anyhow::Result<PathBuf> {
        self.local_addr()?
            .as_pathname()
            .map(Path::to_path_buf)
            .context("unnamed socket")
    }
}

impl UnixAddr for std::os::unix::net::UnixListener {
    fn path(&self) -> anyhow::Result<PathBuf> {
        self.local_addr()?
            .as_pathname()
            .map(Path::to_path_buf)
            .context("unnamed socket")
    }
}

async fn pong_async(mut s: impl AsyncRead + AsyncWrite + Unpin) -> std::io::Result<()> {
    let mut buf = [0u8; MESSAGE];
    loop {
        s.read_exact(&mut buf).await?;
        s.write_all(&buf).await?;
    }
}

fn pong_blocking(mut s: impl Read + Write) -> std::io::Result<()> {
    let mut buf = [0u8; MESSAGE];
    loop {
        s.read_exact(&mut buf)?;
        s.write_all(&buf)?;
    }
}

/// Where a ping-pong client connects.
#[derive(Clone, Copy, Debug)]
pub enum PingTarget<'a> {
    /// `HOST:PORT`.
    Tcp(&'a str),
    /// A socket path.
    Unix(&'a str),
}

/// Times `iterations` round trips of one [`MESSAGE`]-byte message on one
/// connection, after `warmup` untimed ones.
pub fn ping_pong(
    target: PingTarget<'_>,
    io: Io,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<Stats> {
    match io {
        Io::Tokio => match target {
            PingTarget::Tcp(addr) => {
                let addr = addr.to_string();
                on_runtime(async move {
                    let s = tokio::net::TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    ping_async(s, warmup, iterations).await
                })
            }
            PingTarget::Unix(path) => {
                let path = path.to_string();
                on_runtime(async move {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    ping_async(s, warmup, iterations).await
                })
            }
        },
        Io::Blocking => match target {
            PingTarget::Tcp(addr) => {
                let s = std::net::TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                ping_blocking(s, warmup, iterations)
            }
            PingTarget::Unix(path) => ping_blocking(
                std::os::unix::net::UnixStream::connect(path)?,
                warmup,
                iterations,
            ),
        },
    }
}

async fn ping_async(
    mut s: impl AsyncRead + AsyncWrite + Unpin,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<Stats> {
    let out = [7u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let start = Instant::now();
        s.write_all(&out).await?;
        s.read_exact(&mut back).await?;
        if i >= warmup {
            samples.push(start.elapsed().as_nanos());
        }
    }
    anyhow::ensure!(back == out, "the pong server answered something else");
    Ok(Stats::of(samples))
}

fn ping_blocking(
    mut s: impl Read + Write,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<Stats> {
    let out = [7u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let start = Instant::now();
        s.write_all(&out)?;
        s.read_exact(&mut back)?;
        if i >= warmup {
            samples.push(start.elapsed().as_nanos());
        }
    }
    anyhow::ensure!(back == out, "the pong server answered something else");
    Ok(Stats::of(samples))
}

/// `bench nats-responder`: answers every request on [`NATS_SUBJECT`] with
/// its payload, until killed.
pub fn serve_nats(url: &str) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let client = async_nats::connect(url).await?;
        let mut requests = client.subscribe(NATS_SUBJECT).await?;
        client.flush().await?;
        println!("ready");
        std::io::stdout().flush()?;
        while let Some(msg) = requests.next().await {
            if let Some(reply) = msg.reply {
                client.publish(reply, msg.payload).await?;
            }
        }
        Ok(())
    })
}

/// Times `iterations` async-nats requests to the responder, after `warmup`.
pub fn nats_request(url: &str, warmup: usize, iterations: usize) -> anyhow::Result<Stats> {
    let url = url.to_string();
    on_runtime(async move {
        let client = async_nats::connect(url).await?;
        let payload = bytes::Bytes::from_static(&[7u8; MESSAGE]);
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warmup + iterations {
            let start = Instant::now();
            let reply = client.request(NATS_SUBJECT, payload.clone()).await?;
            if i >= warmup {
                samples.push(start.elapsed().as_nanos());
            }
            anyhow::ensure!(
                reply.payload == payload,
                "the responder answered something else"
            );
        }
        Ok(Stats::of(samples))
    })
}

/// Times `iterations` GETs of a 16-byte value with redis-rs's multiplexed
/// async connection, after `warmup`.
pub fn redis_get(url: &str, warmup: usize, iterations: usize) -> anyhow::Result<Stats> {
    let client = redis::Client::open(url)?;
    on_runtime(async move {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SET")
            .arg("native")
            .arg("0123456789abcdef")
            .query_async::<()>(&mut conn)
            .await?;
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warmup + iterations {
            let start = Instant::now();
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg("native")
                .query_async(&mut conn)
                .await?;
            if i >= warmup {
                samples.push(start.elapsed().as_nanos());
            }
            anyhow::ensure!(v.is_some(), "native GET found nothing");
        }
        Ok(Stats::of(samples))
    })
}

/// Times `iterations` calls of `example:echo/echo@0.1.0` `echo` with a
/// 5-byte message and the caller headers the host sends (workload
/// `bench`, namespace `bench`, component `c0`), made by the transport
/// crate's own client to the echo extension at `target` (any endpoint URL),
/// after `warmup`.
pub fn native_echo(target: &str, warmup: usize, iterations: usize) -> anyhow::Result<Stats> {
    let endpoint: transport::Endpoint = target
        .parse()
        .with_context(|| format!("the echo target `{target}`"))?;
    on_runtime(async move {
        let limits = transport::Limits::DEFAULT;
        let client = match &endpoint {
            transport::Endpoint::Nats(nats) => {
                let conn = transport::nats::connect(nats, "bench", Duration::from_secs(5)).await?;
                transport::Client::Nats(
                    transport::nats::NatsClient::new(conn, &nats.prefix, limits).await?,
                )
            }
            other => transport::Client::Stream(
                transport::stream::StreamClient::for_endpoint(other, limits, Vec::new())
                    .context("not a stream endpoint")?,
            ),
        };
        let results = transport::schema::ScanPlan::new(&[transport::schema::WireType::String]);
        let no_paths: Arc<[Box<[Option<usize>]>]> = Arc::from([]);
        let message = b"hello";
        let mut params = bytes::BytesMut::new();
        transport::frame::put_leb_u32(&mut params, message.len() as u32);
        params.extend_from_slice(message);
        let params = params.freeze();
        let mut samples = Vec::with_capacity(iterations);
        let mut answer = Vec::new();
        for i in 0..warmup + iterations {
            let start = Instant::now();
            let timer = transport::CallTimer::new(
                "example:echo/echo@0.1.0.echo",
                Some(tokio::time::Instant::now() + Duration::from_secs(30)),
                Duration::from_secs(30),
            );
            let (tx, mut rx) = client
                .invoke(transport::Invocation {
                    instance: "example:echo/echo@0.1.0",
                    func: "echo",
                    headers: &[
                        (transport::headers::WORKLOAD, "bench"),
                        (transport::headers::NAMESPACE, "bench"),
                        (transport::headers::COMPONENT, "c0"),
                    ],
                    params: params.clone(),
                    params_complete: true,
                    results: Some(Arc::clone(&results)),
                    result_paths: Arc::clone(&no_paths),
                    timer: Arc::new(timer),
                })
                .await?;
            drop(tx);
            answer.clear();
            rx.read_to_end(&mut answer).await?;
            if i >= warmup {
                samples.push(start.elapsed().as_nanos());
            }
            anyhow::ensure!(
                answer.ends_with(message),
                "the echo extension answered {answer:?}"
            );
        }
        Ok(Stats::of(samples))
    })
}
