//! A client's NATS connection lost mid-call, against a real nats-server:
//! the call in flight fails at once (its request or reply went down with
//! the connection), not at its deadline; a call made while NATS is down is
//! left to go out once it is back.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{echo, registry, serve_options};
use futures::StreamExt as _;
use harness::Nats;
use tokio_util::sync::CancellationToken;
use transport::nats::{NatsClient, NatsServer};
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

    // A call made while NATS is down is not failed by the reconnect: it
    // goes out once NATS is back. Whether the server has subscribed again
    // by then is a race, so it is answered or finds no responders.
    let later = tokio::spawn({
        let client = client.clone();
        async move { echo(&client, "later", &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!later.is_finished(), "the call waits for NATS");
    nats.restart().unwrap();
    let shutdown = CancellationToken::new();
    let server = NatsServer::subscribe(connect(&nats).await, "", None, &registry())
        .await
        .unwrap();
    tokio::spawn(server.run(serve_options(&shutdown)));
    match later.await.unwrap() {
        Ok(answer) => assert_eq!(answer, "anon:later"),
        Err(err) => assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}"),
    }
    shutdown.cancel();
}
