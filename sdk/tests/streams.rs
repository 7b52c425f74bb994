//! Streamed parameters and results through the sdk, with bounded buffers:
//! a slow reader slows the sender, in both directions, on every stream
//! transport; over NATS (no flow control) streams still arrive whole.
//!
//! The extension runs in this process; the client is the transport crate's,
//! encoding and decoding the streams with the sdk's bounded types.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use futures::StreamExt as _;
use sdk::{
    CallerContext, Exports, Extension, Functions, IncomingBytes, OutgoingBytes, RegisterError,
    ServeArgs,
};
use tokio::time::Instant;
use transport::schema::Signatures;
use transport::{CallTimer, Client, Endpoint, Incoming, Invocation, Limits, Outgoing};
use wrpc_transport::{Invoke, InvokeExt as _};

const INSTANCE: &str = "test:streams/bytes@0.1.0";
const WIT: &[(&str, &str)] = &[(
    "streams.wit",
    include_str!("../../wit/test-streams/streams.wit"),
)];
const MIB: u64 = 1 << 20;
/// How far a source may run ahead of its reader: the sdk's and the
/// transport's buffers are small (one chunk, 64 KiB of output, 256 KiB per
/// stream); loopback socket buffers can hold several MiB more.
const AHEAD: u64 = 24 * MIB;

/// Counts what a source produced and what a reader consumed.
#[derive(Clone, Default)]
struct Meter {
    produced: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    /// The largest `produced - consumed` seen while the reader paused.
    ahead: Arc<AtomicU64>,
}

impl Meter {
    /// A source of `size` bytes in 1 MiB items, counted as produced.
    fn source(&self, size: u64) -> impl futures::Stream<Item = Bytes> + Send + 'static {
        let produced = Arc::clone(&self.produced);
        let chunk = Bytes::from(vec![7u8; MIB as usize]);
        futures::stream::iter(0..size.div_ceil(MIB)).map(move |i| {
            let n = MIB.min(size - i * MIB);
            produced.fetch_add(n, Ordering::SeqCst);
            chunk.slice(..n as usize)
        })
    }

    /// Reads `stream` to its end; after the first `pause_after` bytes it stops
    /// for `pause` and records how far the source ran ahead meanwhile.
    async fn read(
        &self,
        mut stream: IncomingBytes,
        pause_after: u64,
        pause: Duration,
    ) -> std::io::Result<u64> {
        let mut paused = false;
        while let Some(chunk) = stream.next().await {
            let n = self
                .consumed
                .fetch_add(chunk?.len() as u64, Ordering::SeqCst);
            if !paused && n >= pause_after {
                paused = true;
                tokio::time::sleep(pause).await;
                let ahead = self
                    .produced
                    .load(Ordering::SeqCst)
                    .saturating_sub(self.consumed.load(Ordering::SeqCst));
                self.ahead.fetch_max(ahead, Ordering::SeqCst);
            }
        }
        Ok(self.consumed.load(Ordering::SeqCst))
    }
}

/// `upload` reads slowly (pausing after 1 MiB); `download` streams from a counted source.
#[derive(Clone)]
struct Streams {
    upload: Meter,
    download: Meter,
    pause: Duration,
}

impl Exports for Streams {
    fn register(&self, fns: &mut Functions) -> Result<(), RegisterError> {
        fns.add_wit(&[WIT])?;
        let this = self.clone();
        fns.serve(
            INSTANCE,
            "upload",
            move |_cx: CallerContext, (data,): (IncomingBytes,)| {
                let this = this.clone();
                async move { Ok((this.upload.read(data, MIB, this.pause).await?,)) }
            },
        )?;
        let this = self.clone();
        fns.serve(
            INSTANCE,
            "download",
            move |_cx: CallerContext, (size,): (u64,)| {
                let source = this.download.source(size);
                async move { Ok((OutgoingBytes::new(source),)) }
            },
        )?;
        let this = self.clone();
        fns.serve(
            INSTANCE,
            "stall",
            move |_cx: CallerContext, (size,): (u64,)| {
                let source = this.download.source(size).chain(futures::stream::pending());
                async move { Ok((OutgoingBytes::new(source),)) }
            },
        )
    }
}

/// The transport crate's client as a wRPC `Invoke`, typed by the WIT.
struct Caller {
    client: Client,
    signatures: Signatures,
    /// Longest pause of a streamed value.
    idle: Duration,
}

impl Invoke for Caller {
    type Context = ();
    type Outgoing = Outgoing;
    type Incoming = Incoming;

    async fn invoke<P>(
        &self,
        (): (),
        instance: &str,
        func: &str,
        params: Bytes,
        paths: impl AsRef<[P]> + Send,
    ) -> anyhow::Result<(Outgoing, Incoming)>
    where
        P: AsRef<[Option<usize>]> + Send + Sync,
    {
        let sig = self.signatures.get(instance, func).expect("in the WIT");
        Ok(self
            .client
            .invoke(Invocation {
                instance,
                func,
                headers: &[],
                params,
                params_complete: !sig.has_async_params(),
                results: Some(transport::schema::ScanPlan::new(&sig.results)),
                result_paths: paths
                    .as_ref()
                    .iter()
                    .map(|p| Box::from(p.as_ref()))
                    .collect(),
                timer: Arc::new(CallTimer::new(
                    format!("{instance}.{func}"),
                    Some(Instant::now() + Duration::from_secs(60)),
                    self.idle,
                )),
            })
            .await?)
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

async fn start(listen: &str, streams: Streams) -> (String, tokio::sync::oneshot::Sender<()>) {
    let cli = Cli::parse_from(["streams", "--listen", listen, "--http-addr", "127.0.0.1:0"]);
    let running = Extension::new("streams", cli.serve)
        .start(streams)
        .await
        .unwrap();
    let target = running.addresses()[1].clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(running.stop_after(async {
        let _ = stopped.await;
    }));
    (target, stop)
}

async fn caller(target: &str) -> Caller {
    let endpoint: Endpoint = target.parse().unwrap();
    let client = match &endpoint {
        Endpoint::Nats(nats) => Client::Nats(
            transport::nats::NatsClient::new(
                transport::nats::connect(nats, "test", Duration::from_secs(5))
                    .await
                    .unwrap(),
                &nats.prefix,
                Limits::DEFAULT,
            )
            .await
            .unwrap(),
        ),
        other => Client::Stream(
            transport::stream::StreamClient::for_endpoint(other, Limits::DEFAULT, vec![]).unwrap(),
        ),
    };
    Caller {
        client,
        signatures: Signatures::from_wit(&[WIT]).unwrap(),
        idle: Duration::from_secs(30),
    }
}

/// Uploads and downloads `size` bytes; with `pause`, each reader stops after
/// 1 MiB and its source must not run more than [`AHEAD`] beyond it.
async fn transfer(listen: &str, size: u64, pause: Duration) {
    let streams = Streams {
        upload: Meter::default(),
        download: Meter::default(),
        pause,
    };
    let (target, _stop) = start(listen, streams.clone()).await;
    let caller = caller(&target).await;

    // Upload: the client's source counts into the meter the extension reads with.
    let ((count,), io) = caller
        .invoke_values::<_, (OutgoingBytes,), (u64,)>(
            (),
            INSTANCE,
            "upload",
            (OutgoingBytes::new(streams.upload.source(size)),),
            &[] as &[&[Option<usize>]],
        )
        .await
        .unwrap();
    if let Some(io) = io {
        io.await.unwrap();
    }
    assert_eq!(count, size, "the extension read the whole upload");

    // Download: the extension's source counts into the meter this reader uses.
    let ((stream,), io) = caller
        .invoke_values::<_, (u64,), (IncomingBytes,)>(
            (),
            INSTANCE,
            "download",
            (size,),
            [[Some(0)].as_slice()],
        )
        .await
        .unwrap();
    let (got, io) = tokio::join!(streams.download.read(stream, MIB, pause), async {
        match io {
            Some(io) => io.await,
            None => Ok(()),
        }
    });
    io.unwrap();
    assert_eq!(got.unwrap(), size, "the whole download arrived");

    if !pause.is_zero() {
        for (what, meter) in [
            ("client's upload", &streams.upload),
            ("extension's download", &streams.download),
        ] {
            let ahead = meter.ahead.load(Ordering::SeqCst);
            assert!(
                ahead <= AHEAD,
                "the {what} source ran {ahead} bytes ahead of a paused reader"
            );
            eprintln!(
                "{listen}: the {what} source ran {} KiB ahead of a paused reader",
                ahead / 1024
            );
        }
    }
}

fn unix_listen() -> String {
    let dir = std::env::temp_dir().join(format!(
        "sdk-streams-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    format!("unix://{}/s.sock", dir.display())
}

fn rand_suffix() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_with_backpressure_over_tcp() {
    transfer("tcp://127.0.0.1:0", 128 * MIB, Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_with_backpressure_over_unix() {
    transfer(&unix_listen(), 128 * MIB, Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_with_backpressure_over_websocket() {
    transfer(
        "ws://127.0.0.1:0/wrpc",
        128 * MIB,
        Duration::from_millis(500),
    )
    .await;
}

/// NATS has no flow control: a reader that keeps up gets every byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_nats() {
    let nats = harness::Nats::start().unwrap();
    transfer(&nats.url(), 8 * MIB, Duration::ZERO).await;
}

/// A streamed result that stops making progress fails at the caller's idle
/// timeout, although the call's own deadline is far away; the bytes before
/// the stall arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_fails_at_its_idle_timeout() {
    let streams = Streams {
        upload: Meter::default(),
        download: Meter::default(),
        pause: Duration::ZERO,
    };
    let (target, _stop) = start("tcp://127.0.0.1:0", streams).await;
    let mut caller = caller(&target).await;
    caller.idle = Duration::from_millis(500);
    let ((mut stream,), io) = caller
        .invoke_values::<_, (u64,), (IncomingBytes,)>(
            (),
            INSTANCE,
            "stall",
            (MIB,),
            [[Some(0)].as_slice()],
        )
        .await
        .unwrap();
    let reader = async {
        let mut got = 0;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => got += chunk.len() as u64,
                Err(err) => return (got, Some(err)),
            }
        }
        (got, None)
    };
    let ((got, err), _) = tokio::join!(reader, async {
        if let Some(io) = io {
            let _ = io.await;
        }
    });
    assert_eq!(got, MIB, "the bytes before the stall arrived");
    let err = err.expect("a stalled stream must fail, not end");
    // The call's deadline (60 s) is far away: the idle timeout ended it.
    assert!(
        err.to_string().contains("made no progress for 500ms"),
        "{err}"
    );
}
