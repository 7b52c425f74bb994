//! A value over the server's `max-frame` limit, sent by a client whose own
//! limit is larger: on every transport the caller's error names the limit
//! and its value, and the connection's server stays usable.

mod common;

use std::sync::Arc;

use common::{echo, registry, serve_options};
use harness::Nats;
use tokio_util::sync::CancellationToken;
use transport::nats::{NatsClient, NatsServer};
use transport::server::ServeOptions;
use transport::stream::{serve, Listener, StreamClient};
use transport::{Client, Endpoint, Limits};

/// The server's limit: far below the value sent and the client's own limit.
const SERVER_MAX_FRAME: u32 = 64 * 1024;
/// What the client sends: a string of 8 MiB (the client's default limit is 16 MiB).
const SENT: usize = 8 * 1024 * 1024;

fn limited(shutdown: &CancellationToken) -> ServeOptions {
    let mut opts = serve_options(shutdown);
    opts.limits = Limits {
        max_frame: SERVER_MAX_FRAME,
        ..Limits::DEFAULT
    };
    opts
}

async fn stream_server(endpoint: &str, shutdown: &CancellationToken) -> String {
    let listener = Listener::bind(&endpoint.parse().unwrap()).await.unwrap();
    let local = listener.local().to_string();
    tokio::spawn(serve(listener, Arc::new(registry()), limited(shutdown)));
    local
}

fn stream_client(target: &str) -> Client {
    let endpoint: Endpoint = target.parse().unwrap();
    Client::Stream(StreamClient::for_endpoint(&endpoint, Limits::DEFAULT, vec![]).unwrap())
}

#[track_caller]
fn assert_names_the_limit(err: &std::io::Error) {
    let text = err.to_string();
    assert!(
        text.contains("max-frame limit of 65536"),
        "the caller's error must name the limit and its value: {text}"
    );
}

/// The oversized call fails naming the limit; a normal call on the same
/// client then succeeds.
async fn oversized_then_normal(client: &Client) {
    let err = echo(client, &"x".repeat(SENT), &[]).await.unwrap_err();
    assert_names_the_limit(&err);
    assert_eq!(echo(client, "after", &[]).await.unwrap(), "anon:after");
}

async fn over_stream(endpoint: &str) {
    let shutdown = CancellationToken::new();
    let local = stream_server(endpoint, &shutdown).await;
    oversized_then_normal(&stream_client(&local)).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_frame_names_the_limit_tcp() {
    over_stream("tcp://127.0.0.1:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_frame_names_the_limit_unix() {
    let dir = std::env::temp_dir().join(format!("limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    over_stream(&format!("unix://{}/s.sock", dir.display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_frame_names_the_limit_ws() {
    over_stream("ws://127.0.0.1:0/wrpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_frame_names_the_limit_nats() {
    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    let conn = async_nats::connect(nats.url()).await.unwrap();
    let server = NatsServer::subscribe(conn, "", None, &registry())
        .await
        .unwrap();
    tokio::spawn(server.run(limited(&shutdown)));
    let conn = async_nats::connect(nats.url()).await.unwrap();
    let client = Client::Nats(NatsClient::new(conn, "", Limits::DEFAULT).await.unwrap());
    oversized_then_normal(&client).await;
    shutdown.cancel();
}
