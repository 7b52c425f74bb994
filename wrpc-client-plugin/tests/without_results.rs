//! A guest's call to a generic function without results: the polyfill reads
//! nothing back, so the call's end is awaited when it starts
//! (`transport::Client::invoke`). The call returns once the function ran,
//! and its failure (or nothing serving it) fails the call instead of passing
//! for success. Over NATS and TCP, against real servers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use harness::Nats;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use transport::nats::NatsServer;
use transport::schema::{Signature, WireType};
use transport::server::{Call, Registry, ServeOptions};
use transport::stream::{serve, Listener};
use transport::Limits;
use wrpc_client_plugin::{Caller, Declaration, Defaults, Router, WorkloadIdentity};
use wrpc_transport::Invoke as _;

const INSTANCE: &str = "test:quiet/quiet@0.1.0";

fn signature() -> Signature {
    Signature {
        params: vec![WireType::String],
        results: vec![],
    }
}

/// `note` and `refuse` take a string and return nothing after 200 ms
/// (longer than a caller would take to return on its own), counting
/// themselves in `ran`; `refuse` then fails.
fn registry(ran: &Arc<AtomicUsize>) -> Registry {
    let mut reg = Registry::new();
    for (func, fails) in [("note", false), ("refuse", true)] {
        let ran = Arc::clone(ran);
        reg.insert(
            INSTANCE,
            func,
            &signature(),
            Arc::new(move |call: Call| {
                let ran = Arc::clone(&ran);
                Box::pin(async move {
                    let Call { mut rx, .. } = call;
                    rx.read_to_end(&mut Vec::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    ran.fetch_add(1, Ordering::SeqCst);
                    if fails {
                        return Err("refused on purpose".to_string());
                    }
                    Ok(())
                })
            }),
        )
        .unwrap();
    }
    reg
}

fn options(shutdown: &CancellationToken) -> ServeOptions {
    ServeOptions {
        limits: Limits::DEFAULT,
        permits: Arc::new(tokio::sync::Semaphore::new(8)),
        shutdown: shutdown.clone(),
        abort: CancellationToken::new(),
        tracker: TaskTracker::new(),
    }
}

async fn router(target: &str) -> Router {
    let decl = Declaration {
        target: Some(target.parse().unwrap()),
        timeout: Some(Duration::from_secs(5)),
        check: false,
        ..Declaration::new("test:quiet/quiet".parse().unwrap())
    };
    let defaults = Defaults {
        target: None,
        timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        limits: Limits::DEFAULT,
    };
    let workload = WorkloadIdentity {
        name: "quiet".into(),
        namespace: "tests".into(),
    };
    let router = Router::connect(&[decl], &defaults, &workload)
        .await
        .unwrap();
    router.learn(INSTANCE, "note", &signature());
    router.learn(INSTANCE, "refuse", &signature());
    router
}

/// What the polyfill does for a function without results: invoke with the
/// encoded parameters and read nothing back.
async fn call(router: &Router, func: &str) -> anyhow::Result<()> {
    let caller = Arc::new(Caller {
        workload: "quiet".into(),
        namespace: "tests".into(),
        component: "api".into(),
        trace: None,
    });
    let mut params = BytesMut::new();
    params.put_u8(2);
    params.put_slice(b"hi");
    let no_paths: [&[Option<usize>]; 0] = [];
    router
        .invoke(caller, INSTANCE, func, Bytes::from(params), no_paths)
        .await
        .map(drop)
}

async fn returns_after_the_function_ran_and_reports_its_failure(
    router: &Router,
    ran: &AtomicUsize,
) {
    call(router, "note").await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "returned once `note` ran");
    let err = call(router, "refuse").await.unwrap_err();
    assert!(format!("{err:#}").contains("refused on purpose"), "{err:#}");
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats() {
    let nats = Nats::start().unwrap();
    let router = router(&nats.url()).await;
    // Nothing serves it yet.
    let err = call(&router, "note").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("nothing is serving it"),
        "{err:#}"
    );

    let ran = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let server = NatsServer::subscribe(client, "", None, &registry(&ran))
        .await
        .unwrap();
    tokio::spawn(server.run(options(&shutdown)));
    returns_after_the_function_ran_and_reports_its_failure(&router, &ran).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp() {
    let ran = Arc::new(AtomicUsize::new(0));
    let listener = Listener::bind(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let target = listener.local().to_string();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        Arc::new(registry(&ran)),
        options(&shutdown),
    ));
    let router = router(&target).await;
    returns_after_the_function_ran_and_reports_its_failure(&router, &ran).await;
    shutdown.cancel();
}
