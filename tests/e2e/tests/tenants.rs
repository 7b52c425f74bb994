//! Tenant isolation from trusted identity, on every transport: with
//! `--isolate-namespaces`, workload A (namespace `red`) stores data; workload
//! B (namespace `blue`) tries every operation of the interface on it through
//! the same extension and the same bucket or container names; A then finds
//! its data as it left it. The namespace never comes from what a workload
//! claims: each transport takes it from an identity the extension can trust
//! (a listener per tenant on NATS, Unix and WebSocket; the client
//! certificate on TCP and WSS). Both workloads claim the same namespace in
//! their manifests, so an extension that believed the claim would mix them.

use std::path::PathBuf;
use std::time::Duration;

use e2e::{assert_success, BLOB_GUEST, KV_GUEST, MSG_GUEST};
use futures::StreamExt as _;
use harness::workload::{Component, Workload};
use harness::{Extension, HostRun, Nats, Redis, TempDir, Tls, S3};

const LIMIT: Duration = Duration::from_secs(120);

/// How each tenant reaches the extension on one transport.
struct Route {
    transport: &'static str,
    red: String,
    blue: String,
}

/// Listeners for both tenants on every transport, and how to reach them.
struct Tenancy {
    nats: Nats,
    tls: Tls,
    red_cert: (PathBuf, PathBuf),
    blue_cert: (PathBuf, PathBuf),
    dir: TempDir,
}

impl Tenancy {
    fn new() -> Self {
        let tls = Tls::generate().unwrap();
        let red_cert = tls.client("red", "/CN=host-red/O=red").unwrap();
        let blue_cert = tls.client("blue", "/CN=host-blue/O=blue").unwrap();
        Self {
            nats: Nats::start().unwrap(),
            tls,
            red_cert,
            blue_cert,
            dir: TempDir::new("tenants").unwrap(),
        }
    }

    fn server_tls(&self) -> String {
        format!(
            "tls_cert={}&tls_key={}&tls_ca={}",
            self.tls.cert_file().display(),
            self.tls.key_file().display(),
            self.tls.ca_file().display()
        )
    }

    fn client_tls(&self, (cert, key): &(PathBuf, PathBuf)) -> String {
        format!(
            "tls_ca={}&tls_cert={}&tls_key={}",
            self.tls.ca_file().display(),
            cert.display(),
            key.display()
        )
    }

    fn socket(&self, tenant: &str) -> String {
        format!("{}/{tenant}.sock", self.dir.path().display())
    }

    /// A NATS prefix, a Unix socket and a WebSocket path per tenant, each
    /// naming its namespace; TCP and WSS with mutual TLS, the namespace from
    /// the client certificate.
    fn listeners(&self) -> Vec<String> {
        let nats = self.nats.url();
        let mut out = Vec::new();
        for tenant in ["red", "blue"] {
            out.push(format!("{nats}/{tenant}?namespace={tenant}"));
            out.push(format!("unix://{}?namespace={tenant}", self.socket(tenant)));
            out.push(format!("ws://127.0.0.1:0/{tenant}?namespace={tenant}"));
        }
        out.push(format!(
            "tcp://127.0.0.1:0?{}&namespace_from=cert",
            self.server_tls()
        ));
        out.push(format!(
            "wss://127.0.0.1:0/wrpc?{}&namespace_from=cert",
            self.server_tls()
        ));
        out
    }

    fn routes(&self, ext: &Extension) -> Vec<Route> {
        let find = |scheme: &str, suffix: &str| {
            ext.addresses()
                .iter()
                .find(|a| a.starts_with(&format!("{scheme}://")) && a.contains(suffix))
                .unwrap_or_else(|| panic!("no {scheme} listener {suffix}: {:?}", ext.addresses()))
                .split('?')
                .next()
                .unwrap()
                .to_string()
        };
        let tcp = find("tcp", "");
        let wss = find("wss", "/wrpc");
        let nats = self.nats.url();
        vec![
            Route {
                transport: "nats",
                red: format!("{nats}/red"),
                blue: format!("{nats}/blue"),
            },
            Route {
                transport: "tcp",
                red: format!("{tcp}?{}", self.client_tls(&self.red_cert)),
                blue: format!("{tcp}?{}", self.client_tls(&self.blue_cert)),
            },
            Route {
                transport: "unix",
                red: format!("unix://{}", self.socket("red")),
                blue: format!("unix://{}", self.socket("blue")),
            },
            Route {
                transport: "ws",
                red: find("ws", "/red"),
                blue: find("ws", "/blue"),
            },
            Route {
                transport: "wss",
                red: format!("{wss}?{}", self.client_tls(&self.red_cert)),
                blue: format!("{wss}?{}", self.client_tls(&self.blue_cert)),
            },
        ]
    }
}

/// Runs `component` as workload `name` claiming namespace `claimed`,
/// routing `interfaces` to `target`.
fn host_run(
    component: Component,
    name: &str,
    claimed: &str,
    interfaces: &[&str],
    target: &str,
) -> HostRun {
    let mut workload = Workload::new(name).namespace(claimed).component(component);
    for interface in interfaces {
        workload = workload.route(interface, target, "");
    }
    workload.run(&[], LIMIT).unwrap()
}

/// Like [`host_run`]; asserts it printed `expect`.
fn run(
    component: Component,
    name: &str,
    claimed: &str,
    interfaces: &[&str],
    target: &str,
    expect: &str,
) {
    let run = host_run(component, name, claimed, interfaces, target);
    assert_success(&run, expect);
}

/// Red seeds its data, blue (claiming the same namespace) tries every
/// operation on it, red finds it intact: `component` gives the guest for
/// each of the three scenarios.
fn seed_intrude_intact(component: impl Fn(&str) -> Component, interfaces: &[&str], route: &Route) {
    run(
        component("seed"),
        "victim",
        "same",
        interfaces,
        &route.red,
        "seed: ok",
    );
    run(
        component("intrude"),
        "intruder",
        "same",
        interfaces,
        &route.blue,
        "intrude: ok",
    );
    run(
        component("intact"),
        "victim",
        "same",
        interfaces,
        &route.red,
        "intact: ok",
    );
}

const KV: &[&str] = &["wasi:keyvalue"];
const BLOB: &[&str] = &["wasi:blobstore", "blobstore-s3:admin"];
const MSG: &[&str] = &["wasmcloud:messaging"];

#[test]
fn keyvalue_tenants_cannot_reach_each_other_on_any_transport() {
    let tenancy = Tenancy::new();
    let redis = Redis::start().unwrap();
    let ext = Extension::start(
        "keyvalue-redis",
        &[
            "--redis-url".into(),
            redis.url(),
            "--isolate-namespaces".into(),
        ],
        &tenancy.listeners(),
    )
    .unwrap();
    for route in tenancy.routes(&ext) {
        let bucket = format!("shared-{}", route.transport);
        let kv = |scenario: &str| {
            Component::new("api", KV_GUEST)
                .config("SCENARIO", scenario)
                .config("BUCKET", &bucket)
        };
        let t = route.transport;
        seed_intrude_intact(kv, KV, &route);
        eprintln!("keyvalue over {t}: isolated");
    }
}

#[test]
fn blobstore_tenants_cannot_reach_each_other_on_any_transport() {
    let tenancy = Tenancy::new();
    let s3 = S3::start().unwrap();
    let mut args = s3.args();
    args.push("--isolate-namespaces".into());
    let env = S3::env();
    let ext = Extension::start_with_env(
        &harness::bin("blobstore-s3").unwrap(),
        &args,
        &tenancy.listeners(),
        &env,
    )
    .unwrap();
    for route in tenancy.routes(&ext) {
        let container = format!("shared-{}", route.transport);
        let blob = |scenario: &str| {
            Component::new("blobs", BLOB_GUEST)
                .config("SCENARIO", scenario)
                .config("CONTAINER", &container)
        };
        let t = route.transport;
        seed_intrude_intact(blob, BLOB, &route);
        eprintln!("blobstore over {t}: isolated");
    }
}

/// messaging-nats with `--isolate-namespaces`: what a component publishes
/// goes out under its namespace (seen by a plain subscriber to everything),
/// a subject naming another namespace stays under the caller's own, and a
/// request reaches only a responder in the caller's namespace.
#[test]
fn messaging_tenants_publish_and_request_only_in_their_namespace_on_every_transport() {
    let tenancy = Tenancy::new();
    let app = Nats::start().unwrap();
    let ext = Extension::start(
        "messaging-nats",
        &[
            "--messaging-url".into(),
            app.url(),
            "--isolate-namespaces".into(),
        ],
        &tenancy.listeners(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (nats, all) = rt.block_on(async {
        let nats = async_nats::connect(app.url()).await.unwrap();
        let all = nats.subscribe(">").await.unwrap();
        let mut svc = nats.subscribe("red.svc").await.unwrap();
        nats.flush().await.unwrap();
        let responder = nats.clone();
        tokio::spawn(async move {
            while let Some(msg) = svc.next().await {
                if let Some(reply) = msg.reply {
                    let _ = responder.publish(reply, "pong".into()).await;
                }
            }
        });
        (nats, all)
    });
    let msg = |scenario: &str, subject: &str, prefix: &str| {
        Component::new("app", MSG_GUEST)
            .config("SCENARIO", scenario)
            .config("SUBJECT", subject)
            .config("PREFIX", prefix)
            .config("BODY", prefix)
            .config("TIMEOUT_MS", "500")
    };
    for route in tenancy.routes(&ext) {
        let t = route.transport;
        run(
            msg("publish", "orders", &format!("red-{t}-")),
            "a",
            "same",
            MSG,
            &route.red,
            "published: 1",
        );
        run(
            msg("publish", "orders", &format!("blue-{t}-")),
            "b",
            "same",
            MSG,
            &route.blue,
            "published: 1",
        );
        run(
            msg("publish", "red.orders", &format!("blue-{t}-x")),
            "b",
            "same",
            MSG,
            &route.blue,
            "published: 1",
        );
        run(
            msg("request", "svc", &format!("ask-red-{t}")),
            "a",
            "same",
            MSG,
            &route.red,
            "reply: pong",
        );
        // Blue's requests go out under `blue.`, where red's responder is
        // not (the subscriber to everything hears them and does not answer).
        for subject in ["svc", "red.svc"] {
            let ask = msg("request", subject, &format!("ask-blue-{t}"));
            let asked = host_run(ask, "b", "same", MSG, &route.blue);
            assert!(
                asked.code == Some(1)
                    && asked
                        .stdout
                        .contains(&format!("request on `{subject}`: no reply")),
                "blue's request on `{subject}` over {t}: {asked:#?}"
            );
        }
        eprintln!("messaging over {t}: isolated");
    }
    // The extension flushes each message before its call returns, so the
    // server had routed all of them before this connection's flush: they
    // are in the subscription by the time the flush is answered.
    let seen: Vec<(String, String)> = rt.block_on(async move {
        nats.flush().await.unwrap();
        let mut seen = Vec::new();
        let mut all = all;
        while let Some(Some(msg)) = futures::FutureExt::now_or_never(all.next()) {
            let body = String::from_utf8_lossy(&msg.payload).into_owned();
            seen.push((msg.subject.to_string(), body));
        }
        seen
    });
    for route in ["nats", "tcp", "unix", "ws", "wss"] {
        for (body, subject) in [
            (format!("red-{route}-0"), "red.orders"),
            (format!("blue-{route}-0"), "blue.orders"),
            (format!("blue-{route}-x0"), "blue.red.orders"),
            (format!("ask-red-{route}"), "red.svc"),
            (format!("ask-blue-{route}"), "blue.svc"),
            (format!("ask-blue-{route}"), "blue.red.svc"),
        ] {
            assert!(
                seen.contains(&(subject.to_string(), body.clone())),
                "`{body}` not seen on `{subject}`: {seen:?}"
            );
        }
    }
    let leaked: Vec<_> = seen
        .iter()
        .filter(|(subject, body)| body.contains("blue-") && subject.starts_with("red."))
        .collect();
    assert!(leaked.is_empty(), "blue reached red's subjects: {leaked:?}");
}
