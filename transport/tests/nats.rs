//! wRPC over NATS against a real nats-server: our client and server (the
//! lean two-message form), payloads above `max_payload`, no responders,
//! handler errors, and both directions against upstream wRPC 0.17 peers.

mod common;

use std::time::Duration;

use common::{call, echo, registry, serve_options, ECHO};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_client_against_our_server() {
    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    our_server(&nats, &shutdown).await;
    let upstream = wrpc_transport_nats::Client::new(connect(&nats).await, "", None)
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
    let upstream = wrpc_transport_nats::Client::new(connect(&nats).await, "", None)
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
}
