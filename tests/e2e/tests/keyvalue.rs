//! The kv guest against keyvalue-redis, through the host and its wRPC plugin,
//! with real nats-server and redis-server. Each scenario is written once and
//! run per transport (`<transport>::<scenario>`).

use std::time::Duration;

use e2e::{
    assert_success, per_transport, pooled_call, raw_nats, serve_with_options, unserved_target,
    RawConn, Served, Transport, KV_GUEST,
};
use harness::workload::{Component, Workload};
use harness::{run_host, HostRun, Nats, Redis, Tls};

/// A hang guard for each host run, far above any deadline used here.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Redis, and keyvalue-redis serving on one transport.
struct Stack {
    redis: Redis,
    served: Served,
}

impl Stack {
    fn start(transport: Transport) -> Self {
        Self::start_with(transport, &[])
    }

    fn start_with(transport: Transport, extra: &[&str]) -> Self {
        Self::start_listening(transport, extra, "")
    }

    /// Like [`Stack::start_with`], with listener `options` on the URL.
    fn start_listening(transport: Transport, extra: &[&str], options: &str) -> Self {
        let redis = Redis::start().unwrap();
        let mut args = vec![
            "--redis-url".to_string(),
            redis.url(),
            "--redis-timeout".into(),
            "1s".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let served = serve_with_options(
            transport,
            &harness::bin("keyvalue-redis").unwrap(),
            &args,
            &[],
            options,
        );
        Self { redis, served }
    }

    /// Runs the guest as workload `workload`, routed by the host's default target.
    fn run(&self, workload: &str, scenario: &str, bucket: &str) -> HostRun {
        self.run_in("tests", workload, scenario, bucket)
    }

    /// Like [`Stack::run`], in namespace `namespace`.
    fn run_in(&self, namespace: &str, workload: &str, scenario: &str, bucket: &str) -> HostRun {
        let args = ["--wrpc-target", self.served.target.as_str()];
        manifest_in(namespace, workload, scenario, bucket)
            .wrpc("wasi:keyvalue")
            .run(&args, RUN_LIMIT)
            .unwrap()
    }
}

/// The kv guest running `scenario` on `bucket`, with no `wrpc:` entry yet.
fn manifest(workload: &str, scenario: &str, bucket: &str) -> Workload {
    manifest_in("tests", workload, scenario, bucket)
}

fn manifest_in(namespace: &str, workload: &str, scenario: &str, bucket: &str) -> Workload {
    Workload::new(workload).namespace(namespace).component(
        Component::new("api", KV_GUEST)
            .config("SCENARIO", scenario)
            .config("BUCKET", bucket),
    )
}

per_transport!(
    roundtrip,
    stalled_caller,
    large_value,
    extension_not_running,
    extension_silent,
    redis_outage,
    extension_killed_mid_call,
);

/// A caller that starts a `get` and never finishes sending its parameters
/// blocks nobody: the next callers' `get`s are served meanwhile. The stalled
/// call is confirmed in flight first (NATS: the extension's handshake reply;
/// stream transports: the extension answered the pooled preface, so a task
/// is serving that connection when the partial call arrives).
fn stalled_caller(transport: Transport) {
    let stack = Stack::start(transport);
    // `get(bucket, key)` whose bucket string claims 5 bytes but carries 3.
    let partial_params = b"\x05buc";
    let _stalled: Box<dyn std::any::Any> = match transport {
        Transport::Nats => {
            let subject = "wrpc.0.0.1.wrpc:keyvalue/store@0.2.0-draft.get";
            let mut commands = format!(
                "SUB stall.> 1\r\nPUB {subject} stall.reply {}\r\n",
                partial_params.len()
            )
            .into_bytes();
            commands.extend_from_slice(partial_params);
            commands.extend_from_slice(b"\r\n");
            // Wait for the extension's handshake reply: the stalled call is in.
            Box::new(raw_nats(
                &stack.served.nats.as_ref().unwrap().url(),
                &commands,
                "MSG stall.reply",
            ))
        }
        _ => {
            let mut conn = RawConn::connect(&stack.served.target).unwrap();
            conn.handshake().unwrap();
            let mut call = pooled_call("wrpc:keyvalue/store@0.2.0-draft", "get");
            // One root frame (DATA, path length 0) announcing more bytes than it sends.
            call.extend_from_slice(&[2, 0, 8]);
            call.extend_from_slice(partial_params);
            conn.send(&call).unwrap();
            Box::new(conn)
        }
    };
    assert_success(&stack.run("busy", "full", "open"), "atomics: ok");
}

/// A value of 3 MiB, three times NATS's default `max_payload`, round-trips.
fn large_value(transport: Transport) {
    let stack = Stack::start(transport);
    assert_success(&stack.run("large", "big", "blobs"), "big: ok 3145728 bytes");
}

/// With `--isolate-namespaces` and a NATS listener that trusts headers
/// (`namespace_from=headers`: only trusted hosts may publish), the namespace
/// the host sends keeps two workloads apart even in a bucket of the same name.
#[test]
fn namespace_isolation_nats() {
    let stack = Stack::start_listening(
        Transport::Nats,
        &["--isolate-namespaces"],
        "namespace_from=headers",
    );
    assert_success(
        &stack.run_in("red", "writer", "full", "shared"),
        "atomics: ok",
    );
    assert_success(
        &stack.run_in("blue", "reader", "isolated", "shared"),
        "isolated: ok",
    );
    // Same namespace, same bucket: the keys are shared.
    let same = stack.run_in("red", "reader", "isolated", "shared");
    assert!(
        same.stdout.contains("another bucket's key is visible"),
        "{same:#?}"
    );
}

/// Over `tcp://` with mutual TLS and `namespace_from=cert`, a call's
/// namespace is the organization of the workload's client certificate, not
/// what its manifest (and so its header) claims: certificates for `red` and
/// `blue` keep two workloads apart in one bucket, and a workload that claims
/// `red` while holding blue's certificate lands in blue's keys.
#[test]
fn namespace_isolation_from_client_certificates() {
    let tls = Tls::generate().unwrap();
    let red = tls.client("red", "/CN=host-red/O=red").unwrap();
    let blue = tls.client("blue", "/CN=host-blue/O=blue").unwrap();
    let redis = Redis::start().unwrap();
    let listen = format!(
        "tcp://127.0.0.1:0?tls_cert={}&tls_key={}&tls_ca={}&namespace_from=cert",
        tls.cert_file().display(),
        tls.key_file().display(),
        tls.ca_file().display()
    );
    let ext = harness::Extension::start(
        "keyvalue-redis",
        &[
            "--redis-url".into(),
            redis.url(),
            "--isolate-namespaces".into(),
        ],
        &[listen],
    )
    .unwrap();
    let addr = ext.address("tcp").unwrap();
    assert!(addr.ends_with("?tls=required"), "{addr}");
    let base = addr.split('?').next().unwrap();
    let target = |(cert, key): &(std::path::PathBuf, std::path::PathBuf)| {
        format!(
            "{base}?tls_ca={}&tls_cert={}&tls_key={}",
            tls.ca_file().display(),
            cert.display(),
            key.display()
        )
    };
    let run = |cert, namespace: &str, workload: &str, scenario: &str| {
        manifest_in(namespace, workload, scenario, "shared")
            .wrpc("wasi:keyvalue")
            .run(&["--wrpc-target", &target(cert)], RUN_LIMIT)
            .unwrap()
    };
    assert_success(&run(&red, "red", "writer", "full"), "atomics: ok");
    assert_success(&run(&blue, "blue", "reader", "isolated"), "isolated: ok");
    // Claiming red's namespace with blue's certificate reaches blue's keys
    // (the marker `isolated` just wrote), not red's.
    let claimed = run(&blue, "red", "liar", "isolated");
    assert!(
        claimed.stdout.contains("another bucket's key is visible"),
        "{claimed:#?}"
    );
    // Without a client certificate the listener admits nothing.
    let anonymous = manifest_in("red", "anon", "isolated", "shared")
        .wrpc("wasi:keyvalue")
        .run(
            &[
                "--wrpc-target",
                &format!("{base}?tls_ca={}", tls.ca_file().display()),
            ],
            RUN_LIMIT,
        )
        .unwrap();
    assert_ne!(anonymous.code, Some(0), "{anonymous:#?}");
    assert!(
        anonymous.stderr.contains("CertificateRequired"),
        "{anonymous:#?}"
    );
}

/// `--isolate-namespaces` on a listener that names no trusted source for a
/// call's namespace would sort every caller into whatever it claims: the
/// extension refuses to start, naming the listener and the options.
#[test]
fn isolation_needs_a_namespace_source_on_every_listener() {
    let redis = Redis::start().unwrap();
    let out = std::process::Command::new(harness::bin("keyvalue-redis").unwrap())
        .args(["--redis-url", &redis.url(), "--isolate-namespaces"])
        .args(["--listen", "tcp://127.0.0.1:0?namespace=blue"])
        .args(["--listen", "tcp://127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--isolate-namespaces needs every listener")
            && stderr.contains("tcp://127.0.0.1:0 does not")
            && stderr.contains("namespace_from=cert"),
        "{stderr}"
    );
}

/// Every store/atomics/batch call with checked values, then a second workload
/// with another bucket that must not see the first one's keys.
fn roundtrip(transport: Transport) {
    let stack = Stack::start(transport);
    let first = stack.run("first", "full", "alpha");
    assert_success(&first, "atomics: ok");
    assert!(first.stdout.contains("list-keys: 1202 keys"), "{first:#?}");
    let second = stack.run("second", "isolated", "beta");
    assert_success(&second, "isolated: ok");
    // The first bucket kept its own marker.
    let again = stack.run("first", "isolated", "alpha");
    assert_eq!(again.code, Some(1), "{again:#?}");
    assert!(
        again.stdout.contains("another bucket's key is visible"),
        "{again:#?}"
    );

    if transport != Transport::Nats {
        // Garbage on the extension's socket is dropped; serving goes on.
        let mut conn = RawConn::connect(&stack.served.target).unwrap();
        conn.send(b"\xffGET / HTTP/1.1\r\n\r\n\x00\x01garbage")
            .unwrap();
        assert!(
            conn.closed_within(Duration::from_secs(5)),
            "garbage must lose its connection"
        );
        assert_success(&stack.run("third", "full", "gamma"), "atomics: ok");
    }
    let status = stack.served.ext.terminate().unwrap();
    assert!(
        status.success(),
        "SIGTERM should drain and exit 0, got {status}"
    );
}

/// Nothing serves the interface: the guest gets an error value naming the
/// interface and the target, not a trap or a hang.
fn extension_not_running(transport: Transport) {
    let nats = Nats::start().unwrap();
    let target = unserved_target(transport, &nats);
    let run = manifest("orphan", "expect-error", "b")
        .route("wasi:keyvalue", &target, "timeout: 5s")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_success(&run, "error: other: wasi:keyvalue/store@0.2.0-draft.get");
    assert!(
        run.stdout
            .contains(&format!("extension unreachable at {target}")),
        "{run:#?}"
    );
}

/// Something accepts the call but never answers: the declared deadline ends it.
fn extension_silent(transport: Transport) {
    let nats = Nats::start().unwrap();
    let dir = e2e::TempDir::new("silent").unwrap();
    let (target, _silent) = e2e::silent_target(transport, &nats, &dir);
    let run = manifest("patient", "expect-error", "b")
        .route("wasi:keyvalue", &target, "timeout: 1s")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_success(&run, &format!("no answer from {target} within 1s"));
}

/// Redis stops under a running extension: calls return error values quickly
/// and `/readyz` says why. Redis comes back: the very first call succeeds,
/// without a restart of the extension and without any retry by the caller.
///
/// Before Redis returns, the test waits until the connection manager's
/// background reconnect attempts have all failed (two attempts, at most
/// 500 ms apart, each refused at once): the manager then holds a failed
/// connection, and keyvalue-redis must not hand that stale failure to the
/// first call (it retries a command that was refused before being sent).
fn redis_outage(transport: Transport) {
    let mut stack = Stack::start(transport);
    assert_success(&stack.run("counter", "counter", "visits"), "visit number 1");
    stack.redis.stop();
    let down = stack.run("counter", "expect-error", "visits");
    assert_success(&down, "error: other: redis");
    let (status, body) = stack.served.ext.http_get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("FAIL backend: "), "{body}");
    let (_, metrics) = stack.served.ext.http_get("/metrics").unwrap();
    assert!(
        harness::metric(
            &metrics,
            "wrpc_backend_errors_total",
            &[("backend", "redis")]
        ) >= 1.0,
        "the failed call counts as a backend error: {metrics}"
    );
    std::thread::sleep(Duration::from_secs(2));
    stack.redis.restart().unwrap();
    // Redis lost its data (no persistence): the counter starts over.
    let first = stack.run("counter", "counter", "visits");
    assert_success(&first, "visit number 1");
    assert_eq!(stack.served.ext.http_get("/readyz").unwrap().0, 200);
}

/// The extension is killed (SIGKILL) while it is serving the guest's call:
/// over a connection the guest reads that the connection was lost mid-call,
/// at once; over NATS nothing can tell, so the call's deadline ends it.
///
/// The call is held inside Redis (`CLIENT PAUSE … WRITE` parks the
/// extension's INCRBY) and the kill comes only once Redis lists that parked
/// command, so the call is known to be in flight.
fn extension_killed_mid_call(transport: Transport) {
    let mut stack = Stack::start(transport);
    let redis_cli = |args: &[&str]| -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &stack.redis.port().to_string()])
            .args(args)
            .output()
            .expect("redis-cli (run scripts/install.sh)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        redis_cli(&["CLIENT", "PAUSE", "60000", "WRITE"]).trim(),
        "OK"
    );
    let host = manifest("victim", "counter", "visits")
        .route("wasi:keyvalue", &stack.served.target, "timeout: 5s")
        .spawn(&[], &[])
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !redis_cli(&["CLIENT", "LIST"])
        .lines()
        .any(|l| l.contains("flags=b") && l.contains("cmd=incrby"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never reached Redis"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stack.served.ext.kill();
    let run = host.wait(RUN_LIMIT).unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    let expected = match transport {
        Transport::Nats => format!("no answer from {} within 5s", stack.served.target),
        _ => "connection to the extension lost mid-call".to_string(),
    };
    assert!(
        run.stdout
            .contains("FAIL: increment: other: wasi:keyvalue/atomics@0.2.0-draft.increment")
            && run.stdout.contains(&expected),
        "expected `{expected}`:\n{run:#?}"
    );
}

/// `rediss://` with a private CA (`--redis-ca-file`): the whole scenario over TLS to Redis.
#[test]
fn redis_over_tls() {
    let redis = Redis::start_tls(harness::Tls::generate().unwrap()).unwrap();
    let ca = redis.ca_file().unwrap();
    let args = vec![
        "--redis-url".to_string(),
        redis.url(),
        "--redis-ca-file".into(),
        ca.display().to_string(),
    ];
    let ext =
        harness::Extension::start("keyvalue-redis", &args, &["tcp://127.0.0.1:0".into()]).unwrap();
    let target = ext.address("tcp").unwrap().to_string();
    let run = manifest("tls", "full", "secure")
        .wrpc("wasi:keyvalue")
        .run(&["--wrpc-target", &target], RUN_LIMIT)
        .unwrap();
    assert_success(&run, "atomics: ok");
}

#[test]
fn undeclared_import_fails_at_load() {
    let run = Workload::new("bare")
        .component(Component::new("api", KV_GUEST))
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr
            .contains("component `api` imports `wasi:keyvalue/")
            && run.stderr.contains("nothing on this host provides"),
        "{run:#?}"
    );
    assert!(run.stdout.is_empty(), "nothing may run: {run:#?}");
}

/// The manifest's text is the subject here (the line and column of the
/// bad target), so it stays YAML.
#[test]
fn malformed_manifest_names_line_and_column() {
    let manifest = "name: broken\ncomponents:\n  - name: api\n    file: ./guest.wasm\nwrpc:\n  - interface: wasi:keyvalue\n    target: udp://127.0.0.1:1\n";
    let run = run_host(manifest, KV_GUEST.as_ref(), &[], RUN_LIMIT).unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains("unsupported scheme `udp`")
            && run.stderr.contains("line 6 column 5")
            && run.stderr.lines().count() == 1,
        "{run:#?}"
    );
}

#[test]
fn unknown_default_target_is_a_usage_error() {
    let run = Workload::new("x")
        .component(Component::new("api", KV_GUEST))
        .wrpc("wasi:keyvalue")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains("`wasi:keyvalue` has no target"),
        "{run:#?}"
    );
}
