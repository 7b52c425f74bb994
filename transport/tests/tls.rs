//! TLS and mutual TLS on `tcp://`, the verified caller identity handlers
//! see, per-listener allow-lists, and where a call's namespace comes from,
//! on loopback with real certificates.

mod common;

use common::pki::{Names, Pki};
use common::{call, registry, serve_options, Server};
use harness::Nats;
use tokio_util::sync::CancellationToken;
use transport::nats::NatsServer;
use transport::stream::StreamClient;
use transport::{Client, Endpoint, Limits};

/// Serves [`common::registry`] on `endpoint`; returns the server and the
/// `host:port` (or socket path) it bound.
async fn start(endpoint: &str) -> (Server, String) {
    let server = common::start(endpoint).await;
    let addr = server
        .local
        .split_once("://")
        .map(|(_, rest)| rest.split('?').next().unwrap_or(rest).to_string())
        .unwrap();
    (server, addr)
}

fn client(target: &str) -> Client {
    let endpoint: Endpoint = target.parse().unwrap();
    Client::Stream(StreamClient::for_endpoint(&endpoint, Limits::DEFAULT, Vec::new()).unwrap())
}

async fn who(target: &str, headers: &[(&str, &str)]) -> std::io::Result<String> {
    call(&client(target), "who", "", headers).await
}

fn spiffe_client(pki: &Pki) {
    pki.client(
        "host-a",
        &Names {
            cn: "host-a",
            org: Some("tenant-a"),
            uri: Some("spiffe://cluster.local/ns/team-a/sa/host"),
            ..Names::default()
        },
        false,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_over_tls_carries_calls_and_says_so() {
    let pki = Pki::new();
    let (_server_server, server) =
        start(&format!("tcp://127.0.0.1:0?{}", pki.listener_query(false))).await;
    let target = format!(
        "tcp://127.0.0.1:{}?{}",
        port(&server),
        pki.target_query(None)
    );
    let client = client(&target);
    for _ in 0..3 {
        assert_eq!(
            call(&client, "who", "", &[]).await.unwrap(),
            "tcp+tls ns=none cert=none"
        );
    }
    // The server's certificate also names `localhost`.
    let by_name = format!(
        "tcp://localhost:{}?{}",
        port(&server),
        pki.target_query(None)
    );
    assert_eq!(
        who(&by_name, &[]).await.unwrap(),
        "tcp+tls ns=none cert=none"
    );
}

fn port(addr: &str) -> &str {
    addr.rsplit_once(':').unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_tls_peers_do_not_talk_past_each_other() {
    let pki = Pki::new();
    let (_tls_server, tls) =
        start(&format!("tcp://127.0.0.1:0?{}", pki.listener_query(false))).await;
    let (_plain_server, plain) = start("tcp://127.0.0.1:0").await;
    // A plain client's bytes are not a TLS handshake: the call fails.
    assert!(who(&format!("tcp://{}", tls), &[]).await.is_err());
    // A TLS client against a plain listener fails its handshake, and says so.
    let err = who(&format!("tcp://{}?{}", plain, pki.target_query(None)), &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    // A server whose certificate does not chain to the CA the client trusts.
    pki.client(
        "stranger",
        &Names {
            cn: "x",
            ..Names::default()
        },
        true,
    );
    let err = who(
        &format!(
            "tcp://{}?tls_ca={}",
            tls,
            pki.path("stranger.pem").display()
        ),
        &[],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_identity_reaches_the_handler() {
    let pki = Pki::new();
    spiffe_client(&pki);
    let (_server_server, server) =
        start(&format!("tcp://127.0.0.1:0?{}", pki.listener_query(true))).await;
    let target = format!("tcp://{}?{}", server, pki.target_query(Some("host-a")));
    assert_eq!(
        who(&target, &[("wrpc-namespace", "claimed")])
            .await
            .unwrap(),
        "tcp+tls ns=none cert=CN=host-a, O=tenant-a (spiffe://cluster.local/ns/team-a/sa/host)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_listener_refuses_clients_without_a_trusted_certificate() {
    let pki = Pki::new();
    pki.client(
        "foreign",
        &Names {
            cn: "host-a",
            ..Names::default()
        },
        true,
    );
    let (_server_server, server) =
        start(&format!("tcp://127.0.0.1:0?{}", pki.listener_query(true))).await;
    let anonymous = format!("tcp://{}?{}", server, pki.target_query(None));
    assert!(who(&anonymous, &[]).await.is_err());
    let foreign = format!("tcp://{}?{}", server, pki.target_query(Some("foreign")));
    assert!(who(&foreign, &[]).await.is_err());
    // The listener still serves a trusted client afterwards.
    spiffe_client(&pki);
    let trusted = format!("tcp://{}?{}", server, pki.target_query(Some("host-a")));
    assert!(who(&trusted, &[]).await.unwrap().starts_with("tcp+tls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_admits_only_named_certificates() {
    let pki = Pki::new();
    spiffe_client(&pki);
    pki.client(
        "host-b",
        &Names {
            cn: "host-b",
            dns: Some("b.example"),
            ..Names::default()
        },
        false,
    );
    let listen = format!(
        "tcp://127.0.0.1:0?{}&allow=spiffe://cluster.local/ns/team-a/sa/host,c.example",
        pki.listener_query(true)
    );
    let (_server_server, server) = start(&listen).await;
    let a = format!("tcp://{}?{}", server, pki.target_query(Some("host-a")));
    assert!(who(&a, &[]).await.unwrap().contains("CN=host-a"));
    let b = format!("tcp://{}?{}", server, pki.target_query(Some("host-b")));
    let err = who(&b, &[]).await.unwrap_err().to_string();
    assert!(
        err.contains("access denied") && err.contains("CN=host-b") && err.contains("not allowed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_comes_from_the_listener_never_from_an_untrusted_header() {
    let claim = [("wrpc-namespace", "claimed")];
    let (_open_server, open) = start("tcp://127.0.0.1:0").await;
    let got = who(&format!("tcp://{}", open), &claim).await.unwrap();
    assert_eq!(got, "tcp ns=none cert=none");
    let (_fixed_server, fixed) = start("tcp://127.0.0.1:0?namespace=blue").await;
    let got = who(&format!("tcp://{}", fixed), &claim).await.unwrap();
    assert_eq!(got, "tcp ns=blue cert=none");
    let (_trusting_server, trusting) = start("tcp://127.0.0.1:0?namespace_from=headers").await;
    let got = who(&format!("tcp://{}", trusting), &claim).await.unwrap();
    assert_eq!(got, "tcp ns=claimed cert=none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_from_the_client_certificate() {
    let pki = Pki::new();
    spiffe_client(&pki);
    pki.client(
        "org-only",
        &Names {
            cn: "host-o",
            org: Some("tenant-o"),
            ..Names::default()
        },
        false,
    );
    pki.client(
        "nameless",
        &Names {
            cn: "host-n",
            ..Names::default()
        },
        false,
    );
    let listen = format!(
        "tcp://127.0.0.1:0?{}&namespace_from=cert",
        pki.listener_query(true)
    );
    let (_server_server, server) = start(&listen).await;
    let target = |c: &str| format!("tcp://{}?{}", server, pki.target_query(Some(c)));
    let claim = [("wrpc-namespace", "claimed")];
    let spiffe = who(&target("host-a"), &claim).await.unwrap();
    assert!(spiffe.starts_with("tcp+tls ns=team-a "), "{spiffe}");
    let org = who(&target("org-only"), &claim).await.unwrap();
    assert!(org.starts_with("tcp+tls ns=tenant-o "), "{org}");
    let err = who(&target("nameless"), &claim)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("names no namespace"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_listeners_admit_and_name_namespaces_by_uid() {
    let uid = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    let dir = std::env::temp_dir().join(format!("transport-uid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = |name: &str| format!("unix://{}/{name}.sock", dir.display());
    let (_mapped_server, mapped) =
        start(&format!("{}?uid_namespace={uid}:tenant-u", sock("mapped"))).await;
    let got = who(&format!("unix://{}", mapped), &[]).await.unwrap();
    assert_eq!(got, "unix ns=tenant-u cert=none");
    let (_allowed_server, allowed) = start(&format!("{}?allow_uid=0,{uid}", sock("allowed"))).await;
    assert!(who(&format!("unix://{}", allowed), &[]).await.is_ok());
    let other = uid.wrapping_add(1);
    let (_refused_server, refused) = start(&format!("{}?allow_uid={other}", sock("refused"))).await;
    let err = who(&format!("unix://{}", refused), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("uid {uid} is not allowed")), "{err}");
    let (_unmapped_server, unmapped) =
        start(&format!("{}?uid_namespace={other}:x", sock("unmapped"))).await;
    let err = who(&format!("unix://{}", unmapped), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no namespace"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_listeners_take_a_fixed_namespace_or_trust_headers() {
    let nats = Nats::start().unwrap();
    let shutdown = CancellationToken::new();
    let conn = async_nats::connect(nats.url()).await.unwrap();
    for (prefix, listen) in [
        ("plain", "nats://x"),
        ("fixed", "nats://x?namespace=green"),
        ("trusting", "nats://x?namespace_from=headers"),
    ] {
        let Endpoint::Nats(ep) = listen.parse::<Endpoint>().unwrap() else {
            panic!()
        };
        let server = NatsServer::subscribe(conn.clone(), prefix, None, &registry())
            .await
            .unwrap()
            .with_access(&ep.access);
        tokio::spawn(server.run(serve_options(&shutdown)));
    }
    let claim = [("wrpc-namespace", "claimed")];
    let mut got = Vec::new();
    for prefix in ["plain", "fixed", "trusting"] {
        let target = format!("{}/{prefix}", nats.url());
        let connector = transport::Connector::new("test");
        let client = connector.client(&target.parse().unwrap()).await.unwrap();
        got.push(call(&client, "who", "", &claim).await.unwrap());
    }
    assert_eq!(
        got,
        [
            "nats ns=none cert=none",
            "nats ns=green cert=none",
            "nats ns=claimed cert=none"
        ]
    );
    shutdown.cancel();
}
