//! The stream transports end to end on loopback: our client and server over
//! TCP, Unix and WebSocket, and each against upstream wRPC 0.17's TCP peer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{echo, registry, serve_options, start, string, ECHO};
use futures::StreamExt as _;
use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use transport::schema::WireType;
use transport::stream::{serve, Listener, StreamClient};
use transport::{CallTimer, Client, Endpoint, Invocation, Limits};
use wrpc_transport::{InvokeExt as _, ServeExt as _};

fn client(target: &str) -> (Client, StreamClient) {
    let endpoint: Endpoint = target.parse().unwrap();
    let stream = StreamClient::for_endpoint(
        &endpoint,
        Limits::DEFAULT,
        vec![("wrpc-namespace".into(), "ns".into())],
    )
    .unwrap();
    (Client::Stream(stream.clone()), stream)
}

async fn pooled_roundtrips(endpoint: &str) {
    let server = start(endpoint).await;
    let (client, stream) = client(&server.local);
    for i in 0..3 {
        let got = echo(&client, &format!("hi {i}"), &[("wrpc-workload", "w")])
            .await
            .unwrap();
        assert_eq!(got, format!("w:hi {i}"));
    }
    assert!(!stream.is_plain());
    // Sequential calls reuse one connection.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(stream.idle_connections(), 1);
    // Concurrent calls each take a connection and all come back.
    let calls = (0..16).map(|i| {
        let client = client.clone();
        async move { echo(&client, &format!("c{i}"), &[]).await }
    });
    let results = futures::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), format!("anon:c{i}"));
    }
    // A function the server does not serve: the caller reads why.
    let (tx, mut rx) = client
        .invoke(Invocation {
            instance: ECHO,
            func: "nope",
            headers: &[],
            params: string("x"),
            params_complete: true,
            results: Some(transport::schema::ScanPlan::new(&[WireType::String])),
            result_paths: Arc::from([]),
            timer: Arc::new(CallTimer::new(
                "nope",
                Some(Instant::now() + Duration::from_secs(5)),
                Duration::from_secs(5),
            )),
        })
        .await
        .unwrap();
    drop(tx);
    let err = rx.read_to_end(&mut Vec::new()).await.unwrap_err();
    assert!(
        err.to_string().contains("is not served by this extension"),
        "{err}"
    );
    // The connection is still good for the next call.
    assert_eq!(echo(&client, "after", &[]).await.unwrap(), "anon:after");
}

/// A function without results: the caller returns once it ran, and gets
/// its failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_results_waits_for_the_function_and_its_failure() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let ran = Arc::new(AtomicUsize::new(0));
    let mut reg = registry();
    common::insert_without_results(&mut reg, &ran);
    let listener = Listener::bind(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let target = listener.local().to_string();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, Arc::new(reg), serve_options(&shutdown)));
    let (client, _) = client(&target);
    common::call_without_results(&client, "note").await.unwrap();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "returned once the function ran"
    );
    let err = common::call_without_results(&client, "refuse")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused on purpose"), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pooled() {
    pooled_roundtrips("tcp://127.0.0.1:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_pooled() {
    let dir = std::env::temp_dir().join(format!("transport-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    pooled_roundtrips(&format!("unix://{}/echo.sock", dir.display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Unix-socket caller is identified by the kernel's credentials: uid, gid, pid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_peer_credentials() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = std::env::temp_dir().join(format!("transport-cred-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = start(&format!("unix://{}/peer.sock", dir.display())).await;
    let (client, _) = client(&server.local);
    let me = std::fs::metadata("/proc/self").unwrap();
    let got = common::call(&client, "peer", "", &[]).await.unwrap();
    assert_eq!(
        got,
        format!(
            "unix uid={} gid={} pid={}",
            me.uid(),
            me.gid(),
            std::process::id()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_pooled() {
    pooled_roundtrips("ws://127.0.0.1:0/wrpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_upgrade_headers_reach_the_handler() {
    let server = start("ws://127.0.0.1:0/wrpc").await;
    let endpoint: Endpoint = server.local.parse().unwrap();
    let stream = StreamClient::for_endpoint(
        &endpoint,
        Limits::DEFAULT,
        vec![("wrpc-workload".into(), "from-upgrade".into())],
    )
    .unwrap();
    let client = Client::Stream(stream);
    assert_eq!(echo(&client, "x", &[]).await.unwrap(), "from-upgrade:x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_client_against_our_server() {
    let server = start("tcp://127.0.0.1:0").await;
    let addr = server.local.trim_start_matches("tcp://").to_string();
    let upstream = wrpc_transport::tcp::Client::from(addr);
    for i in 0..3 {
        let (reply,): (String,) = upstream
            .invoke_values_blocking(
                (),
                ECHO,
                "echo",
                (format!("up {i}"),),
                &[] as &[&[Option<usize>]],
            )
            .await
            .unwrap();
        assert_eq!(reply, format!("anon:up {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_upstream_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = Arc::new(wrpc_transport::Server::default());
    let calls = srv
        .serve_values::<(String,), (String,)>(ECHO, "echo", Vec::<Box<[Option<usize>]>>::new())
        .await
        .unwrap();
    tokio::spawn({
        let srv = Arc::clone(&srv);
        async move {
            loop {
                // Each accept reads one connection's header; version errors
                // (our pooled preface) are expected and ignored.
                let _ = srv.accept(&listener).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut calls = std::pin::pin!(calls);
        while let Some(call) = calls.next().await {
            let (_, (msg,), _, reply) = call.unwrap();
            tokio::spawn(async move { reply((format!("upstream:{msg}"),)).await.unwrap() });
        }
    });
    // A function without results: the caller returns when the upstream
    // server ends the connection, after the function ran.
    let notes = srv
        .serve_values::<(String,), ()>(ECHO, "note", Vec::<Box<[Option<usize>]>>::new())
        .await
        .unwrap();
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn({
        let ran = Arc::clone(&ran);
        async move {
            let mut notes = std::pin::pin!(notes);
            while let Some(call) = notes.next().await {
                let (_, _, _, reply) = call.unwrap();
                let ran = Arc::clone(&ran);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    reply(()).await.unwrap();
                });
            }
        }
    });
    let (client, stream) = client(&format!("tcp://{addr}"));
    for i in 0..3 {
        assert_eq!(
            echo(&client, &format!("m{i}"), &[]).await.unwrap(),
            format!("upstream:m{i}")
        );
    }
    assert!(
        stream.is_plain(),
        "the upstream server refuses the pooled preface"
    );
    common::call_without_results(&client, "note").await.unwrap();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A server closing a pooled connection answers a call that raced its close
/// with GOAWAY: the call was not processed, so the client sends it again on
/// a new connection. A hand-written server answers the first call on its
/// first connection, GOAWAYs the second, and serves it on the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_on_a_reused_connection_is_retried_once() {
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use transport::frame::{self, Dialect, Event, Parser};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    tokio::spawn(async move {
        for conn_no in 0.. {
            let (mut sock, _) = listener.accept().await.unwrap();
            let seen = seen_tx.clone();
            tokio::spawn(async move {
                let mut parser = Parser::server(Limits::DEFAULT);
                let mut buf = BytesMut::new();
                let mut calls = 0;
                loop {
                    let ev = loop {
                        if let Some(ev) = parser.next(&mut buf).unwrap() {
                            break ev;
                        }
                        if sock.read_buf(&mut buf).await.unwrap() == 0 {
                            return;
                        }
                    };
                    let mut out = BytesMut::new();
                    match ev {
                        Event::Preface => frame::put_preface(&mut out),
                        Event::End => {
                            calls += 1;
                            if conn_no == 0 && calls == 2 {
                                seen.send("goaway").unwrap();
                                frame::put_goaway(&mut out);
                                sock.write_all(&out).await.unwrap();
                                return;
                            }
                            seen.send("answered").unwrap();
                            frame::put_frame(&mut out, Dialect::Pooled, &[], &string("ok"));
                            frame::put_end(&mut out);
                        }
                        _ => continue,
                    }
                    sock.write_all(&out).await.unwrap();
                }
            });
        }
    });
    let (client, stream) = client(&format!("tcp://{addr}"));
    assert_eq!(common::echo(&client, "one", &[]).await.unwrap(), "ok");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        stream.idle_connections(),
        1,
        "the first connection is pooled"
    );
    assert_eq!(common::echo(&client, "two", &[]).await.unwrap(), "ok");
    let mut seen = Vec::new();
    while let Ok(s) = seen_rx.try_recv() {
        seen.push(s);
    }
    assert_eq!(seen, ["answered", "goaway", "answered"]);
}

/// A pooled server from before the line preface closes on `FE 77 70 02`:
/// the client asks once more with `FE 77 70 01` and keeps the pooled dialect.
/// A hand-written server closes any connection opening with the line
/// preface and serves calls on one opening with the first preface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_line_preface_still_pools() {
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use transport::frame::{self, Dialect, Event, Parser, LINE_PREFACE, POOL_PREFACE};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let seen = seen_tx.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 4];
                sock.read_exact(&mut first).await.unwrap();
                if first[..] != POOL_PREFACE {
                    assert_eq!(first[..], LINE_PREFACE[..4]);
                    seen.send("closed on the line preface").unwrap();
                    return;
                }
                seen.send("pooled").unwrap();
                let mut buf = BytesMut::from(&POOL_PREFACE[..]);
                let mut parser = Parser::server(Limits::DEFAULT);
                loop {
                    let ev = loop {
                        if let Some(ev) = parser.next(&mut buf).unwrap() {
                            break ev;
                        }
                        if sock.read_buf(&mut buf).await.unwrap() == 0 {
                            return;
                        }
                    };
                    let mut out = BytesMut::new();
                    match ev {
                        Event::Preface => frame::put_preface(&mut out),
                        Event::End => {
                            frame::put_frame(&mut out, Dialect::Pooled, &[], &string("ok"));
                            frame::put_end(&mut out);
                        }
                        _ => continue,
                    }
                    sock.write_all(&out).await.unwrap();
                }
            });
        }
    });
    let (client, stream) = client(&format!("tcp://{addr}"));
    assert_eq!(common::echo(&client, "one", &[]).await.unwrap(), "ok");
    assert_eq!(common::echo(&client, "two", &[]).await.unwrap(), "ok");
    assert!(!stream.is_plain());
    let mut seen = Vec::new();
    while let Ok(s) = seen_rx.try_recv() {
        seen.push(s);
    }
    // A second connection, if the first was not reused yet, opens with the
    // first preface straight away.
    assert_eq!(seen[..2], ["closed on the line preface", "pooled"]);
    assert!(seen[2..].iter().all(|s| *s == "pooled"), "{seen:?}");
}
