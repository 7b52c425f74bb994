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

use e2e::{assert_success, BLOB_GUEST, KV_GUEST};
use harness::workload::{Component, Workload};
use harness::{Extension, Nats, Redis, TempDir, Tls, S3};

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
/// routing `interfaces` to `target`; asserts it printed `expect`.
fn run(
    component: Component,
    name: &str,
    claimed: &str,
    interfaces: &[&str],
    target: &str,
    expect: &str,
) {
    let mut workload = Workload::new(name).namespace(claimed).component(component);
    for interface in interfaces {
        workload = workload.route(interface, target, "");
    }
    assert_success(&workload.run(&[], LIMIT).unwrap(), expect);
}

const KV: &[&str] = &["wasi:keyvalue"];
const BLOB: &[&str] = &["wasi:blobstore", "blobstore-s3:admin"];

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
        run(kv("seed"), "victim", "same", KV, &route.red, "seed: ok");
        run(
            kv("intrude"),
            "intruder",
            "same",
            KV,
            &route.blue,
            "intrude: ok",
        );
        run(kv("intact"), "victim", "same", KV, &route.red, "intact: ok");
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
        run(blob("seed"), "victim", "same", BLOB, &route.red, "seed: ok");
        run(
            blob("intrude"),
            "intruder",
            "same",
            BLOB,
            &route.blue,
            "intrude: ok",
        );
        run(
            blob("intact"),
            "victim",
            "same",
            BLOB,
            &route.red,
            "intact: ok",
        );
        eprintln!("blobstore over {t}: isolated");
    }
}
