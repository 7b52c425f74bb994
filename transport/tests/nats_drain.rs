//! A NATS server shutting down (a replica's SIGTERM) in a queue group,
//! against a real nats-server: the calls NATS routed to it before it
//! unsubscribed are served, not dropped (no other replica would get them;
//! each caller would wait for its deadline).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{call_without_results, insert_without_results, serve_options};
use futures::StreamExt as _;
use harness::Nats;
use tokio_util::sync::CancellationToken;
use transport::nats::{NatsClient, NatsServer};
use transport::server::Registry;
use transport::{Client, Limits};

async fn connect(nats: &Nats) -> async_nats::Client {
    async_nats::connect(nats.url()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_routed_to_a_replica_before_it_unsubscribed_are_served() {
    const CALLS: usize = 5;
    let nats = Nats::start().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    insert_without_results(&mut registry, &ran);
    // One call at a time, 200 ms each: the others wait in the subscription.
    let shutdown = CancellationToken::new();
    let mut opts = serve_options(&shutdown);
    opts.permits = Arc::new(tokio::sync::Semaphore::new(1));
    let server = NatsServer::subscribe(connect(&nats).await, "", Some("replicas"), &registry)
        .await
        .unwrap();
    let serving = tokio::spawn(server.run(opts));
    let spy = connect(&nats).await;
    let mut routed = spy.subscribe("wrpc.>").await.unwrap();
    spy.flush().await.unwrap();
    let client = Client::Nats(
        NatsClient::new(connect(&nats).await, "", Limits::DEFAULT)
            .await
            .unwrap(),
    );
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { call_without_results(&client, "note").await })
        })
        .collect();
    // NATS routed every call (the spy saw them all, so the replica's
    // subscription got them too) before the replica is told to stop.
    for _ in 0..CALLS {
        tokio::time::timeout(Duration::from_secs(10), routed.next())
            .await
            .expect("a call was never published")
            .unwrap();
    }
    shutdown.cancel();
    for call in calls {
        // The deadline is 5 s: a dropped call would fail with `TimedOut`.
        call.await.unwrap().unwrap();
    }
    assert_eq!(ran.load(Ordering::SeqCst), CALLS);
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server stops once the routed calls are done")
        .unwrap();
}
