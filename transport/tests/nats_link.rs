//! A client's NATS connection lost mid-call, against a real nats-server:
//! the call in flight fails at once (its request or reply went down with
//! the connection), not at its deadline.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::echo;
use futures::StreamExt as _;
use harness::Nats;
use transport::nats::NatsClient;
use transport::{Client, Limits};

async fn connect(nats: &Nats) -> async_nats::Client {
    async_nats::connect(nats.url()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_fails_when_the_nats_connection_is_lost() {
    let mut nats = Nats::start().unwrap();
    // Takes every call and never answers: the call waits in flight.
    let silent = connect(&nats).await;
    let mut taken = silent.subscribe("wrpc.>").await.unwrap();
    silent.flush().await.unwrap();
    let client = Client::Nats(
        NatsClient::new(connect(&nats).await, "", Limits::DEFAULT)
            .await
            .unwrap(),
    );
    let call = tokio::spawn({
        let client = client.clone();
        async move { echo(&client, "lost", &[]).await }
    });
    // The request reached NATS' subscriber: the call is in flight.
    let request = tokio::time::timeout(Duration::from_secs(10), taken.next())
        .await
        .expect("the call was never published");
    assert!(request.is_some());
    nats.stop();
    // Its deadline is 5 s: a timeout would say `TimedOut`.
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted, "{err}");
    assert!(
        err.to_string().contains("connection to NATS was lost"),
        "{err}"
    );
}
