//! wRPC over NATS against a real nats-server: our client and server (the
//! lean two-message form), payloads above `max_payload`, no responders,
//! handler errors, and both directions against upstream wRPC 0.17 peers.

mod common;

use std::time::Duration;

use common::{
    call, call_without_results, echo, insert_without_results, registry, serve_options, ECHO,
};
use futures::StreamExt as _;
use harness::Nats;
use tokio_util::sync::CancellationToken;
use transport::nats::{NatsClient, NatsServer};
use transport::{Client, Limits};
use wrpc_transport::{InvokeExt as _, ServeExt as _};

async fn connect(nats: &Nats) -> async_nats::Client {
    async_nats::connect(nats.url()).await.unwrap()
}

async fn our_server(nats: &Nats, shutdown: &CancellationToken) {
    let server = NatsServer::subscribe(connect(nats).await, "", None, &registry())
        .await
        .unwrap();
    tokio::spawn(server.run(serve_options(shutdown)));
}

async fn our_client(nats: &Nats) -> Client {
    Client::Nats(
        NatsClient::new(connect(nats).await, "", Limits::DEFAULT)
            .await
            .unwrap(),
    )
}

/// Counts the messages on every subject while `f` runs.
async fn count_messages<F: std::future::Future<Output = ()>>(nats: &Nats, f: F) -> usize {
    let spy = connect(nats).await;
    let mut all = spy.subscribe(">").await.unwrap();
    // The spy's own message coming back proves the server has its
    // subscription (async-nats' flush only writes the socket).
    spy.publish("spy.ready", "".into()).await.unwrap();
    let first = all.next().await.unwrap();
    assert_eq!(first.subject.as_str(), "spy.ready");
    f.await;
    spy.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), all.next()).await {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_to_ours_in_two_messages() {
    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    our_server(&nats, &shutdown).await;
    let client = our_client(&nats).await;
    assert_eq!(
        echo(&client, "hi", &[("wrpc-workload", "w")])
            .await
            .unwrap(),
        "w:hi"
    );
    let messages = count_messages(&nats, async {
        assert_eq!(echo(&client, "again", &[]).await.unwrap(), "anon:again");
    })
    .await;
    assert_eq!(messages, 2, "a lean call is a request and its reply");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_above_max_payload() {
    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    our_server(&nats, &shutdown).await;
    let client = our_client(&nats).await;
    // 3 MiB of parameters: three times the default max_payload.
    let big = "p".repeat(3 << 20);
    let got = echo(&client, &big, &[]).await.unwrap();
    assert_eq!(got.len(), big.len() + "anon:".len());
    // 3 MiB of results.
    let got = call(&client, "big", &(3 << 20).to_string(), &[])
        .await
        .unwrap();
    assert_eq!(got.len(), 3 << 20);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_responders_and_handler_errors() {
    let nats = Nats::start().unwrap();
    let client = our_client(&nats).await;
    let err = echo(&client, "x", &[]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected, "{err}");
    let shutdown = CancellationToken::new();
    our_server(&nats, &shutdown).await;
    let err = call(&client, "fail", "x", &[]).await.unwrap_err();
    assert!(err.to_string().contains("the handler says no"), "{err}");
    shutdown.cancel();
}

/// A call to a function missing from an instance that is served on the
/// prefix: NATS finds no responders, the client asks the instance's
/// `wrpc-ext:describe` (once), gets an answer and reports the function as
/// not served by the extension. Without that answer (a peer that is not
/// sdk-built) it stays "no responders".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_missing_from_a_served_instance_is_not_served_by_the_extension() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use transport::schema::{Signature, WireType};
    use transport::server::Call;

    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    let client = our_client(&nats).await;

    // Served, but by a peer that does not answer discovery.
    our_server(&nats, &shutdown).await;
    let err = call(&client, "nope", "x", &[]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected, "{err}");
    shutdown.cancel();

    // Served by a peer that answers discovery for the instance.
    let asked = Arc::new(AtomicUsize::new(0));
    let mut reg = registry();
    let counter = Arc::clone(&asked);
    reg.insert(
        ECHO,
        transport::discovery::PER_INSTANCE,
        &Signature {
            params: vec![],
            results: vec![WireType::String],
        },
        Arc::new(move |call: Call| {
            counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                use tokio::io::AsyncWriteExt as _;
                let Call { mut tx, .. } = call;
                tx.write_all(&common::string("{}"))
                    .await
                    .map_err(|e| e.to_string())?;
                tx.flush().await.map_err(|e| e.to_string())
            })
        }),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let server = NatsServer::subscribe(connect(&nats).await, "", None, &reg)
        .await
        .unwrap();
    tokio::spawn(server.run(serve_options(&shutdown)));
    let err = call(&client, "nope", "x", &[]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "nope: the extension failed the call: `{ECHO}.nope` is not served by this extension"
        )
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the client asked once");
    // The served functions are unaffected.
    assert_eq!(echo(&client, "hi", &[]).await.unwrap(), "anon:hi");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "a served call asks nothing"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_client_against_our_server() {
    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    our_server(&nats, &shutdown).await;
    let upstream_nats = connect(&nats).await;
    let upstream = wrpc_transport_nats::Client::new(upstream_nats.clone(), "", None)
        .await
        .unwrap();
    for i in 0..3 {
        let (reply,): (String,) = upstream
            .invoke_values_blocking(
                None,
                ECHO,
                "echo",
                (format!("up {i}"),),
                &[] as &[&[Option<usize>]],
            )
            .await
            .unwrap();
        assert_eq!(reply, format!("anon:up {i}"));
    }
    let big = "u".repeat(3 << 20);
    let (reply,): (String,) = upstream
        .invoke_values_blocking(
            None,
            ECHO,
            "echo",
            (big.clone(),),
            &[] as &[&[Option<usize>]],
        )
        .await
        .unwrap();
    assert_eq!(reply.len(), big.len() + 5);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_upstream_server() {
    let nats = Nats::start().unwrap();
    let upstream_nats = connect(&nats).await;
    let upstream = wrpc_transport_nats::Client::new(upstream_nats.clone(), "", None)
        .await
        .unwrap();
    let calls = upstream
        .serve_values::<(String,), (String,)>(ECHO, "echo", Vec::<Box<[Option<usize>]>>::new())
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut calls = std::pin::pin!(calls);
        while let Some(call) = calls.next().await {
            let (_, (msg,), _, reply) = call.unwrap();
            tokio::spawn(async move { reply((format!("upstream:{msg}"),)).await.unwrap() });
        }
    });
    let client = our_client(&nats).await;
    for i in 0..3 {
        assert_eq!(
            echo(&client, &format!("m{i}"), &[]).await.unwrap(),
            format!("upstream:m{i}")
        );
    }
    let big = "b".repeat(3 << 20);
    let got = echo(&client, &big, &[]).await.unwrap();
    assert_eq!(got.len(), big.len() + "upstream:".len());

    // A function without results: the caller returns on the upstream
    // server's end of results, after the function ran.
    let notes = upstream
        .serve_values::<(String,), ()>(ECHO, "note", Vec::<Box<[Option<usize>]>>::new())
        .await
        .unwrap();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn({
        let ran = std::sync::Arc::clone(&ran);
        async move {
            let mut notes = std::pin::pin!(notes);
            while let Some(call) = notes.next().await {
                let (_, _, _, reply) = call.unwrap();
                let ran = std::sync::Arc::clone(&ran);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    reply(()).await.unwrap();
                });
            }
        }
    });
    // The subscription is in place once the server has sent back a message
    // published after it on the same connection (async-nats' flush only
    // writes the socket).
    let mut sync = upstream_nats.subscribe("test.sync").await.unwrap();
    upstream_nats.publish("test.sync", "".into()).await.unwrap();
    sync.next().await.unwrap();
    call_without_results(&client, "note").await.unwrap();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A function without parameters on an upstream wRPC 0.17 server: it waits
/// for the end of the parameters before it decodes them (they take no
/// bytes), so our caller must send that end once the server handshakes,
/// even though it sent the call lean. Without it the call hangs until its
/// deadline (checked with the fix turned off: the read fails `TimedOut`).
#[tokio::test]
async fn our_client_calls_an_upstream_function_without_parameters() {
    use transport::schema::{ScanPlan, WireType};
    use transport::{CallTimer, Invocation};

    let nats = Nats::start().unwrap();
    let upstream_nats = connect(&nats).await;
    let upstream = wrpc_transport_nats::Client::new(upstream_nats.clone(), "", None)
        .await
        .unwrap();
    let calls = upstream
        .serve_values::<(), (String,)>(ECHO, "hello", Vec::<Box<[Option<usize>]>>::new())
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut calls = std::pin::pin!(calls);
        while let Some(call) = calls.next().await {
            let (_, (), _, reply) = call.unwrap();
            tokio::spawn(async move { reply(("hello from upstream".to_string(),)).await.unwrap() });
        }
    });
    let mut sync = upstream_nats.subscribe("test.sync").await.unwrap();
    upstream_nats.publish("test.sync", "".into()).await.unwrap();
    sync.next().await.unwrap();
    let client = our_client(&nats).await;
    let deadline = std::time::Duration::from_secs(5);
    for _ in 0..3 {
        let started = tokio::time::Instant::now();
        let (_tx, mut rx) = client
            .invoke(Invocation {
                instance: ECHO,
                func: "hello",
                headers: &[],
                params: bytes::Bytes::new(),
                params_complete: true,
                results: Some(ScanPlan::new(&[WireType::String])),
                result_paths: std::sync::Arc::from([]),
                timer: std::sync::Arc::new(CallTimer::new(
                    "hello",
                    Some(started + deadline),
                    deadline,
                )),
            })
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut rx, &mut out)
            .await
            .unwrap();
        // Had the end of the parameters not gone out, the read would have
        // failed with the deadline instead.
        assert_eq!(common::unstring(&out), "hello from upstream");
    }
}

/// Streams between our peers are flow-controlled both ways: while a reader
/// pauses, its writer gets at most one window ahead; other calls on the same
/// connection go on meanwhile; every byte arrives once the reader resumes.
mod flow {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::{BufMut as _, BytesMut};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;
    use transport::frame::put_leb_u64;
    use transport::nats::{NatsServer, STREAM_WINDOW};
    use transport::schema::{ScanPlan, Signature, WireType};
    use transport::server::{Call, Registry};
    use transport::{CallTimer, Client, Invocation};
    use wrpc_transport::Index as _;

    use super::common::{echo, registry, serve_options};
    use super::{connect, our_client};

    const STREAMS: &str = "test:flow/streams@0.1.0";
    const TOTAL: u64 = 8 << 20;
    const CHUNK: usize = 64 << 10;

    /// Writes `total` bytes as `stream<u8>` chunks, counting them in `written`.
    async fn write_stream(
        mut w: impl tokio::io::AsyncWrite + Unpin,
        total: u64,
        written: &AtomicU64,
    ) -> std::io::Result<()> {
        let mut left = total;
        while left > 0 {
            let n = left.min(CHUNK as u64);
            let mut chunk = BytesMut::new();
            put_leb_u64(&mut chunk, n);
            chunk.put_bytes(7, n as usize);
            w.write_all(&chunk).await?;
            written.fetch_add(n, Ordering::SeqCst);
            left -= n;
        }
        w.write_all(&[0]).await?;
        w.flush().await
    }

    /// Reads a `stream<u8>`'s chunks to its end marker; returns the bytes in them.
    async fn read_stream(mut r: impl tokio::io::AsyncRead + Unpin, read: &AtomicU64) -> u64 {
        let mut total = 0;
        loop {
            let mut n: u64 = 0;
            let mut shift = 0;
            loop {
                let b = r.read_u8().await.unwrap();
                n |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            if n == 0 {
                return total;
            }
            let mut left = n;
            let mut buf = vec![0; CHUNK];
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                r.read_exact(&mut buf[..want]).await.unwrap();
                left -= want as u64;
                read.fetch_add(want as u64, Ordering::SeqCst);
            }
            total += n;
        }
    }

    struct Counters {
        /// Result bytes the server wrote / parameter bytes the client wrote.
        written: AtomicU64,
        /// Parameter bytes the server read.
        read: AtomicU64,
        /// Set once the server has paused reading parameters.
        paused: tokio::sync::Notify,
        resume: tokio::sync::Notify,
    }

    fn streams_registry(counters: Arc<Counters>) -> Registry {
        let mut reg = registry();
        let download = Signature {
            params: vec![WireType::U64],
            results: vec![WireType::Stream(Some(Box::new(WireType::U8)))],
        };
        let c = Arc::clone(&counters);
        reg.insert(
            STREAMS,
            "download",
            &download,
            Arc::new(move |call: Call| {
                let c = Arc::clone(&c);
                Box::pin(async move {
                    let Call { mut rx, mut tx, .. } = call;
                    rx.read_to_end(&mut Vec::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    tx.write_all(&[0]).await.map_err(|e| e.to_string())?;
                    tx.flush().await.map_err(|e| e.to_string())?;
                    let body = tx.index(&[0]).map_err(|e| e.to_string())?;
                    write_stream(body, TOTAL, &c.written)
                        .await
                        .map_err(|e| e.to_string())
                })
            }),
        )
        .unwrap();
        let upload = Signature {
            params: vec![WireType::Stream(Some(Box::new(WireType::U8)))],
            results: vec![WireType::U64],
        };
        reg.insert(
            STREAMS,
            "upload",
            &upload,
            Arc::new(move |call: Call| {
                let c = Arc::clone(&counters);
                Box::pin(async move {
                    let Call { mut rx, mut tx, .. } = call;
                    let mut body = rx.index(&[0]).map_err(|e| e.to_string())?;
                    rx.read_to_end(&mut Vec::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    // Take one chunk, then stop reading until told.
                    let mut first = vec![0; CHUNK];
                    body.read_exact(&mut first[..4])
                        .await
                        .map_err(|e| e.to_string())?;
                    c.paused.notify_one();
                    c.resume.notified().await;
                    // The 4 bytes were the first chunk's 3-byte length and 1 data byte.
                    body.read_exact(&mut first[..CHUNK - 1])
                        .await
                        .map_err(|e| e.to_string())?;
                    c.read.fetch_add(CHUNK as u64 - 1, Ordering::SeqCst);
                    read_stream(body, &c.read).await;
                    let mut out = BytesMut::new();
                    put_leb_u64(&mut out, c.read.load(Ordering::SeqCst));
                    tx.write_all(&out).await.map_err(|e| e.to_string())?;
                    tx.flush().await.map_err(|e| e.to_string())
                })
            }),
        )
        .unwrap();
        reg
    }

    fn timer(name: &str) -> Arc<CallTimer> {
        Arc::new(CallTimer::new(
            name.to_string(),
            Some(Instant::now() + Duration::from_secs(30)),
            Duration::from_secs(30),
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_reader_holds_back_its_writer_only() {
        let nats = harness::Nats::start().unwrap();
        let shutdown = CancellationToken::new();
        let counters = Arc::new(Counters {
            written: AtomicU64::new(0),
            read: AtomicU64::new(0),
            paused: tokio::sync::Notify::new(),
            resume: tokio::sync::Notify::new(),
        });
        let server = NatsServer::subscribe(
            connect(&nats).await,
            "",
            None,
            &streams_registry(Arc::clone(&counters)),
        )
        .await
        .unwrap();
        tokio::spawn(server.run(serve_options(&shutdown)));
        let client: Client = our_client(&nats).await;

        // Results: the client reads 4 bytes, then pauses.
        let mut params = BytesMut::new();
        put_leb_u64(&mut params, TOTAL);
        let (tx, mut rx) = client
            .invoke(Invocation {
                instance: STREAMS,
                func: "download",
                headers: &[],
                params: params.freeze(),
                params_complete: true,
                results: Some(ScanPlan::new(&[WireType::Stream(Some(Box::new(
                    WireType::U8,
                )))])),
                result_paths: Arc::from([vec![Some(0)].into_boxed_slice()]),
                timer: timer("download"),
            })
            .await
            .unwrap();
        drop(tx);
        let mut body = rx.index(&[0]).unwrap();
        let mut sync = Vec::new();
        rx.read_to_end(&mut sync).await.unwrap();
        assert_eq!(sync, [0], "the stream is pending");
        let mut head = [0u8; 4];
        body.read_exact(&mut head).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ahead = counters.written.load(Ordering::SeqCst);
        assert!(
            ahead <= STREAM_WINDOW + CHUNK as u64,
            "the server wrote {ahead} bytes for a reader that took 4"
        );
        assert!(ahead > 0, "the server wrote nothing at all");
        // Other calls on the same connection are not held up.
        for i in 0..20 {
            assert_eq!(
                echo(&client, &format!("m{i}"), &[]).await.unwrap(),
                format!("anon:m{i}")
            );
        }
        // Resume: every byte arrives. The 4 bytes read were the first chunk's
        // length prefix (3 bytes) and its first data byte.
        let read = AtomicU64::new(0);
        let mut rest = vec![0; CHUNK - 1];
        body.read_exact(&mut rest).await.unwrap();
        let total = read_stream(body, &read).await + CHUNK as u64;
        assert_eq!(total, TOTAL);
        assert_eq!(counters.written.load(Ordering::SeqCst), TOTAL);

        // Parameters: the server reads 4 bytes, then pauses.
        counters.written.store(0, Ordering::SeqCst);
        let (tx, mut rx) = client
            .invoke(Invocation {
                instance: STREAMS,
                func: "upload",
                headers: &[],
                params: bytes::Bytes::from_static(&[0]),
                params_complete: false,
                results: Some(ScanPlan::new(&[WireType::U64])),
                result_paths: Arc::from([]),
                timer: timer("upload"),
            })
            .await
            .unwrap();
        let writer = {
            let counters = Arc::clone(&counters);
            let body = tx.index(&[0]).unwrap();
            tokio::spawn(async move {
                let _tx = tx;
                write_stream(body, TOTAL, &counters.written).await
            })
        };
        counters.paused.notified().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ahead = counters.written.load(Ordering::SeqCst);
        assert!(
            ahead <= STREAM_WINDOW + CHUNK as u64,
            "the client wrote {ahead} bytes for a server that took 4"
        );
        for i in 0..20 {
            assert_eq!(
                echo(&client, &format!("u{i}"), &[]).await.unwrap(),
                format!("anon:u{i}")
            );
        }
        counters.resume.notify_one();
        writer.await.unwrap().unwrap();
        let mut result = Vec::new();
        rx.read_to_end(&mut result).await.unwrap();
        // The server counted what followed its first 4 bytes.
        assert_eq!(counters.written.load(Ordering::SeqCst), TOTAL);
        assert_eq!(counters.read.load(Ordering::SeqCst), TOTAL - 1);
        shutdown.cancel();
    }
}

/// A function without results has nothing to send back when it succeeds,
/// yet its caller must learn that nothing served it, or that it failed, and
/// return only once it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_results_reports_no_responders_and_failures() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let nats = Nats::start().unwrap();
    let client = our_client(&nats).await;
    let err = call_without_results(&client, "note").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected, "{err}");

    let ran = Arc::new(AtomicUsize::new(0));
    let mut reg = registry();
    insert_without_results(&mut reg, &ran);
    let shutdown = CancellationToken::new();
    let server = NatsServer::subscribe(connect(&nats).await, "", None, &reg)
        .await
        .unwrap();
    tokio::spawn(server.run(serve_options(&shutdown)));
    call_without_results(&client, "note").await.unwrap();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "returned once the function ran"
    );
    let err = call_without_results(&client, "refuse").await.unwrap_err();
    assert!(err.to_string().contains("refused on purpose"), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    shutdown.cancel();
}
