//! Flags of 17–24 and 33–56 members from servers `wit-bindgen-wrpc` 0.11
//! generates, over NATS and TCP: such a peer writes its Rust representation
//! whole (4 or 8 bytes) but reads only `ceil(n / 8)`. Our client drops that
//! zero padding at the end of the results instead of refusing it as "data
//! after the synchronous value" (the guest trapped on every such result).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use harness::Nats;
use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;
use transport::nats::NatsClient;
use transport::schema::codec::{decode_value, Check};
use transport::schema::{Flags, ScanPlan, Type, WireType};
use transport::stream::StreamClient;
use transport::{CallTimer, Client, Endpoint, Invocation, Limits};
use wrpc_transport::{Serve, ServeExt as _};

mod generated {
    wit_bindgen_wrpc::generate!({
        inline: "
            package test:wide-flags@0.1.0;
            interface wide {
                flags twenty {
                    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9,
                    c10, c11, c12, c13, c14, c15, c16, c17, c18, c19,
                }
                flags forty {
                    e0, e1, e2, e3, e4, e5, e6, e7, e8, e9,
                    e10, e11, e12, e13, e14, e15, e16, e17, e18, e19,
                    e20, e21, e22, e23, e24, e25, e26, e27, e28, e29,
                    e30, e31, e32, e33, e34, e35, e36, e37, e38, e39,
                }
                get-twenty: func() -> twenty;
                get-forty: func() -> forty;
                checked: func() -> result<twenty, string>;
            }
            world w { import wide; }
        ",
    });
}

use generated::test::wide_flags::wide::{Forty, Twenty};

const WIDE: &str = "test:wide-flags/wide@0.1.0";

/// Serves `twenty` (→ `c0 | c19`), `forty` (→ `e1 | e39`) and `checked`
/// (→ `ok(c18)` as `result<twenty, string>`) on an upstream server.
async fn serve_upstream<S>(srv: Arc<S>)
where
    S: Serve + Send + Sync + 'static,
{
    let no_paths = Vec::<Box<[Option<usize>]>>::new;
    let twenty = srv
        .serve_values::<(), (Twenty,)>(WIDE, "twenty", no_paths())
        .await
        .unwrap();
    let forty = srv
        .serve_values::<(), (Forty,)>(WIDE, "forty", no_paths())
        .await
        .unwrap();
    let checked = srv
        .serve_values::<(), (Result<Twenty, String>,)>(WIDE, "checked", no_paths())
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut calls = std::pin::pin!(twenty);
        while let Some(call) = calls.next().await {
            let (_, (), _, reply) = call.unwrap();
            tokio::spawn(async move { reply((Twenty::C0 | Twenty::C19,)).await.unwrap() });
        }
    });
    tokio::spawn(async move {
        let mut calls = std::pin::pin!(forty);
        while let Some(call) = calls.next().await {
            let (_, (), _, reply) = call.unwrap();
            tokio::spawn(async move { reply((Forty::E1 | Forty::E39,)).await.unwrap() });
        }
    });
    tokio::spawn(async move {
        let mut calls = std::pin::pin!(checked);
        while let Some(call) = calls.next().await {
            let (_, (), _, reply) = call.unwrap();
            tokio::spawn(async move { reply((Ok(Twenty::C18),)).await.unwrap() });
        }
    });
}

/// Calls `func` without parameters; returns the results' bytes.
async fn call(client: &Client, func: &str, results: WireType) -> std::io::Result<Vec<u8>> {
    let deadline = Duration::from_secs(5);
    let (_tx, mut rx) = client
        .invoke(Invocation {
            instance: WIDE,
            func,
            headers: &[],
            params: bytes::Bytes::new(),
            params_complete: true,
            results: Some(ScanPlan::new(&[results])),
            result_paths: Arc::from([]),
            timer: Arc::new(CallTimer::new(
                func.to_string(),
                Some(Instant::now() + deadline),
                deadline,
            )),
        })
        .await?;
    let mut out = Vec::new();
    rx.read_to_end(&mut out).await?;
    Ok(out)
}

/// Every wide flags result arrives as its `ceil(n / 8)` bytes, and decodes.
async fn check(client: &Client) {
    assert_eq!(
        call(client, "twenty", WireType::Flags(20)).await.unwrap(),
        [1, 0, 0b1000]
    );
    assert_eq!(
        call(client, "forty", WireType::Flags(40)).await.unwrap(),
        [0b10, 0, 0, 0, 0b1000_0000]
    );
    let checked = WireType::Result {
        ok: Some(Box::new(WireType::Flags(20))),
        err: Some(Box::new(WireType::String)),
    };
    assert_eq!(
        call(client, "checked", checked).await.unwrap(),
        [0, 0, 0, 0b100]
    );
}

#[tokio::test]
async fn wide_flags_from_an_upstream_nats_server() {
    let nats = Nats::start().unwrap();
    let conn = async_nats::connect(nats.url()).await.unwrap();
    let upstream = wrpc_transport_nats::Client::new(conn.clone(), "", None)
        .await
        .unwrap();
    serve_upstream(Arc::new(upstream)).await;
    // The subscriptions are in place once the server has echoed a later message.
    let mut sync = conn.subscribe("test.sync").await.unwrap();
    conn.publish("test.sync", "".into()).await.unwrap();
    sync.next().await.unwrap();
    let ours = async_nats::connect(nats.url()).await.unwrap();
    let client = Client::Nats(NatsClient::new(ours, "", Limits::DEFAULT).await.unwrap());
    check(&client).await;
}

#[tokio::test]
async fn wide_flags_from_an_upstream_tcp_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = Arc::new(wrpc_transport::Server::default());
    serve_upstream(Arc::clone(&srv)).await;
    tokio::spawn(async move {
        loop {
            // Each accept reads one connection's header.
            let _ = srv.accept(&listener).await;
        }
    });
    // The upstream server refuses our pooled preface: the client falls back.
    let endpoint: Endpoint = format!("tcp://{addr}").parse().unwrap();
    let stream = StreamClient::for_endpoint(&endpoint, Limits::DEFAULT, Vec::new()).unwrap();
    let client = Client::Stream(stream);
    check(&client).await;
    // The decoder takes those bytes whole as the flags.
    let twenty = Type::Flags(Flags {
        name: None,
        flags: (0..20).map(|i| format!("c{i}")).collect(),
    });
    let bytes = call(&client, "twenty", twenty.wire()).await.unwrap();
    let limits = Limits::DEFAULT.value();
    let (_, used) = decode_value(&twenty, &bytes, &limits, &mut Check).unwrap();
    assert_eq!(used, bytes.len());
}
