//! The one typed call every client makes: a [`Connector`] sharing NATS
//! connections, [`Prepared`] functions called through a [`Target`] or a
//! [`TypedClient`], and each failure as a [`CallError`] naming the
//! function, the target and why; against our own servers on loopback and a
//! real nats-server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{echo_signature, registry, serve_options, string, unstring, ECHO};
use harness::Nats;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;
use transport::client::{Call, CallErrorKind};
use transport::nats::NatsServer;
use transport::stream::{serve, Listener};
use transport::{
    CallError, CallOptions, Client, Connector, Endpoint, Prepared, Target, TypedClient,
};

fn endpoint(url: &str) -> Endpoint {
    url.parse().unwrap()
}

async fn nats_server(nats: &Nats, prefix: &str, shutdown: &CancellationToken) {
    let conn = async_nats::connect(nats.url()).await.unwrap();
    let server = NatsServer::subscribe(conn, prefix, None, &registry())
        .await
        .unwrap();
    tokio::spawn(server.run(serve_options(shutdown)));
}

/// Calls `echo` with `msg` through the one call; returns the answer.
async fn echo(target: &Target, msg: &str) -> Result<String, CallError> {
    let prepared = Prepared::new(ECHO, "echo", &echo_signature());
    let call = async {
        let (tx, mut rx) = target.invoke(Call::new(&prepared, string(msg))).await?;
        drop(tx);
        let mut out = Vec::new();
        rx.read_to_end(&mut out).await?;
        Ok(unstring(&out))
    };
    call.await
        .map_err(|err| CallError::of_io(prepared.name(), target, err))
}

fn client_id(target: &Target) -> u64 {
    match target.client() {
        Client::Nats(nats) => nats.nats().server_info().client_id,
        _ => panic!("not a NATS target"),
    }
}

#[tokio::test]
async fn nats_targets_share_one_connection_per_server_set() {
    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    nats_server(&nats, "a", &shutdown).await;
    nats_server(&nats, "b", &shutdown).await;
    let connector = Connector::new("typed-call-test");
    let a = connector
        .target(
            &endpoint(&format!("{}/a", nats.url())),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let b = connector
        .target(
            &endpoint(&format!("{}/b", nats.url())),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(echo(&a, "to a").await.unwrap(), "anon:to a");
    assert_eq!(echo(&b, "to b").await.unwrap(), "anon:to b");
    assert_eq!(
        client_id(&a),
        client_id(&b),
        "one connection for both prefixes"
    );

    let other = Connector::new("typed-call-test")
        .target(
            &endpoint(&format!("{}/a", nats.url())),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_ne!(
        client_id(&a),
        client_id(&other),
        "a connector's own connection"
    );
    assert_eq!(echo(&other, "again").await.unwrap(), "anon:again");
    shutdown.cancel();
}

#[tokio::test]
async fn no_nats_responders_is_unreachable_naming_the_function_and_target() {
    let nats = Nats::start().unwrap();
    let url = format!("{}/nobody", nats.url());
    let target = Connector::new("typed-call-test")
        .target(&endpoint(&url), CallOptions::default())
        .await
        .unwrap();
    let err = echo(&target, "anyone?").await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert_eq!(err.target(), &endpoint(&url));
    assert!(
        err.to_string()
            .starts_with(&format!("`{ECHO}.echo`: extension unreachable at {url}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn a_typed_client_calls_and_names_a_failed_call() {
    let listener = Listener::bind(&endpoint("tcp://127.0.0.1:0"))
        .await
        .unwrap();
    let url = listener.local().to_string();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        Arc::new(registry()),
        serve_options(&shutdown),
    ));
    let target = Connector::new("typed-call-test")
        .target(&endpoint(&url), CallOptions::default())
        .await
        .unwrap();
    let client = TypedClient::new(
        target,
        [
            Prepared::new(ECHO, "echo", &echo_signature()),
            Prepared::new(ECHO, "fail", &echo_signature()),
        ],
    );
    let (got,): (String,) = client
        .call(
            vec![("wrpc-workload".into(), "w".into())],
            ECHO,
            "echo",
            ("hi".to_string(),),
        )
        .await
        .unwrap();
    assert_eq!(got, "w:hi");

    let err = client
        .call::<_, (String,)>(Vec::new(), ECHO, "fail", ("x".to_string(),))
        .await
        .unwrap_err();
    let err = client.call_error("test:echo/echo.fail", &err);
    assert_eq!(err.kind(), CallErrorKind::Failed);
    assert!(!err.is_unusable());
    assert!(err.reason().contains("the handler says no"), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("test:echo/echo.fail: call to {url} failed: ")),
        "{err}"
    );

    let err = client
        .call::<_, (String,)>(Vec::new(), ECHO, "unknown", ("x".to_string(),))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("is not in the WIT this client was made for"),
        "{err:#}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn nothing_listening_is_unreachable_and_unusable() {
    // Bound and closed again: nothing listens on the port now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let target = Connector::new("typed-call-test")
        .target(&endpoint(&url), CallOptions::default())
        .await
        .unwrap();
    let err = echo(&target, "hello?").await.unwrap_err();
    assert!(err.is_unreachable() && err.is_unusable(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "`{ECHO}.echo`: extension unreachable at {url}: nothing listens at {url} (connection refused)"
        )
    );
}

#[tokio::test]
async fn a_silent_target_is_a_timeout_naming_the_deadline() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tcp://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let opts = CallOptions {
        timeout: Duration::from_millis(300),
        ..CallOptions::default()
    };
    let target = Connector::new("typed-call-test")
        .target(&endpoint(&url), opts)
        .await
        .unwrap();
    let err = echo(&target, "hello?").await.unwrap_err();
    assert_eq!(
        err.kind(),
        CallErrorKind::Timeout(Duration::from_millis(300))
    );
    assert_eq!(
        err.to_string(),
        format!("`{ECHO}.echo`: no answer from {url} within 300ms")
    );
    held.abort();
}
