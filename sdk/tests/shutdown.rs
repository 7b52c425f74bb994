//! Graceful shutdown over a real TCP listener: a call in flight when shutdown
//! begins still gets its answer; one that outlives the grace period is cut off;
//! no new connection is accepted afterwards.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use sdk::keyvalue::{atomics, batch, store};
use sdk::{CallerContext, Extension, ServeArgs};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};

mod client {
    wit_bindgen_wrpc::generate!({ world: "imports", path: "../wit/wrpc-keyvalue" });
}

/// `get` takes `delay`; everything else is unused here.
#[derive(Clone)]
struct Slow {
    started: Arc<Notify>,
    delay: Duration,
}

type Outcome<T> = anyhow::Result<Result<T, store::Error>>;

fn unused<T>() -> Outcome<T> {
    Ok(Err(store::Error::Other("unused".into())))
}

impl store::Handler<CallerContext> for Slow {
    async fn get(&self, _: CallerContext, _: String, key: String) -> Outcome<Option<Bytes>> {
        self.started.notify_one();
        tokio::time::sleep(self.delay).await;
        Ok(Ok(Some(Bytes::from(format!("slow {key}")))))
    }
    async fn set(&self, _: CallerContext, _: String, _: String, _: Bytes) -> Outcome<()> {
        unused()
    }
    async fn delete(&self, _: CallerContext, _: String, _: String) -> Outcome<()> {
        unused()
    }
    async fn exists(&self, _: CallerContext, _: String, _: String) -> Outcome<bool> {
        unused()
    }
    async fn list_keys(
        &self,
        _: CallerContext,
        _: String,
        _: Option<u64>,
    ) -> Outcome<store::KeyResponse> {
        unused()
    }
}

impl atomics::Handler<CallerContext> for Slow {
    async fn increment(&self, _: CallerContext, _: String, _: String, _: u64) -> Outcome<u64> {
        unused()
    }
}

impl batch::Handler<CallerContext> for Slow {
    async fn get_many(
        &self,
        _: CallerContext,
        _: String,
        _: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Bytes)>>> {
        unused()
    }
    async fn set_many(&self, _: CallerContext, _: String, _: Vec<(String, Bytes)>) -> Outcome<()> {
        unused()
    }
    async fn delete_many(&self, _: CallerContext, _: String, _: Vec<String>) -> Outcome<()> {
        unused()
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Serves `Slow` on a TCP port of its choosing; returns (address, shutdown trigger, server task).
async fn start(
    delay: Duration,
    grace: &str,
    started: Arc<Notify>,
) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let cli = Cli::parse_from([
        "slow",
        "--listen",
        "tcp://127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--shutdown-grace",
        grace,
    ]);
    let handler = Slow { started, delay };
    let running = Extension::new("slow", cli.serve)
        .start(sdk::keyvalue::serve(handler))
        .await
        .unwrap();
    let addr = running
        .addresses()
        .iter()
        .find_map(|a| a.strip_prefix("tcp://"))
        .unwrap()
        .to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(running.stop_after(async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test]
async fn in_flight_call_finishes_after_shutdown_begins() {
    let started = Arc::new(Notify::new());
    let (addr, stop, server) = start(Duration::from_millis(300), "10s", Arc::clone(&started)).await;
    let wrpc = wrpc_transport::tcp::Client::from(addr.clone());
    let call =
        tokio::spawn(async move { client::wrpc::keyvalue::store::get(&wrpc, (), "b", "k").await });
    started.notified().await;
    stop.send(()).unwrap();

    let value = call.await.unwrap().expect("transport").expect("store");
    assert_eq!(value.as_deref(), Some(b"slow k".as_slice()));
    server.await.unwrap();
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "listener must be closed after shutdown"
    );
}

#[tokio::test]
async fn grace_period_bounds_the_drain() {
    let started = Arc::new(Notify::new());
    let (addr, stop, server) =
        start(Duration::from_secs(3600), "100ms", Arc::clone(&started)).await;
    let wrpc = wrpc_transport::tcp::Client::from(addr);
    let call =
        tokio::spawn(async move { client::wrpc::keyvalue::store::get(&wrpc, (), "b", "k").await });
    started.notified().await;
    stop.send(()).unwrap();

    // The server returns although the handler would sleep for an hour ...
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("shutdown must not wait past the grace period")
        .unwrap();
    // ... and the cut-off call fails instead of hanging.
    let res = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("client hang");
    assert!(
        res.unwrap().is_err(),
        "an aborted call cannot have succeeded"
    );
}
