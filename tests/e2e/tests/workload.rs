//! What the host refuses at load, before anything runs, and what it keeps
//! secret: identities that cannot travel in a header, durations out of
//! range, `wrpc:` entries that match no import, and NATS credentials.

use std::time::Duration;

use e2e::{assert_refused, assert_success, KV_GUEST};
use harness::workload::{Component, Workload};
use harness::{run_host, Extension, HostRun, Nats, Redis};

const RUN_LIMIT: Duration = Duration::from_secs(120);

fn run(manifest: &str, args: &[&str]) -> HostRun {
    run_host(manifest, KV_GUEST.as_ref(), args, RUN_LIMIT).unwrap()
}

/// The kv workload as YAML text, for the tests about the text itself (a
/// value's escapes, the line an error names); `wrpc` is the lines under
/// `wrpc:`.
fn kv_manifest(name: &str, namespace: &str, component: &str, wrpc: &str) -> String {
    format!(
        "name: {name}\nnamespace: {namespace}\ncomponents:\n  - name: {component}\n    file: ./guest.wasm\n    config: {{ SCENARIO: counter, BUCKET: b }}\nwrpc:\n{wrpc}"
    )
}

/// Workload `c` in namespace `d`: the kv guest counting visits, with no
/// `wrpc:` entry yet.
fn kv_workload() -> Workload {
    Workload::new("c").namespace("d").component(
        Component::new("api", KV_GUEST)
            .config("SCENARIO", "counter")
            .config("BUCKET", "b"),
    )
}

/// A newline in the workload name, namespace or a component name used to
/// panic the host at its first NATS call (async-nats asserts header values);
/// now the manifest is refused where the value is, in one line.
#[test]
fn identities_that_cannot_travel_are_refused_at_load() {
    let wrpc = "  - wasi:keyvalue\n";
    for (manifest, field) in [
        (
            kv_manifest("\"count\\ner\"", "demo", "api", wrpc),
            "`name` contains a newline",
        ),
        (
            kv_manifest("counter", "\"de\\rmo\"", "api", wrpc),
            "`namespace` contains a carriage return",
        ),
        (
            kv_manifest("counter", "demo", "\"a\\npi\"", wrpc),
            "component `name` contains a newline",
        ),
    ] {
        let run = run(&manifest, &["--wrpc-target", "nats://127.0.0.1:1"]);
        assert_refused(&run, &[field, "line "]);
    }
}

/// Deadlines saturate instead of overflowing: a huge timeout is refused with
/// its maximum named (it used to panic in the router, exit 101), and a
/// duration without a number is named as such.
#[test]
fn durations_out_of_range_are_refused() {
    let entry = |t: &str| {
        format!("  - interface: wasi:keyvalue\n    target: tcp://127.0.0.1:1\n    timeout: {t}\n")
    };
    let run1 = run(
        &kv_manifest("c", "d", "api", &entry("18446744073709551615s")),
        &[],
    );
    assert_refused(&run1, &["too long for a duration", "line 8"]);
    let run2 = run(&kv_manifest("c", "d", "api", &entry("4000d")), &[]);
    assert_refused(&run2, &["longer than the maximum"]);
    let run3 = run(&kv_manifest("c", "d", "api", &entry("fast")), &[]);
    assert_refused(&run3, &["`fast` is not a duration"]);
    let run4 = run(
        &kv_manifest("c", "d", "api", "  - wasi:keyvalue\n"),
        &[
            "--wrpc-target",
            "tcp://127.0.0.1:1",
            "--wrpc-timeout",
            "99999999999999999999s",
        ],
    );
    assert_eq!(run4.code, Some(2), "a bad flag is a usage error: {run4:#?}");
}

/// A `wrpc:` entry that matches no import is named with the closest import,
/// before the import it failed to cover is reported as unprovided.
#[test]
fn unmatched_declarations_name_the_closest_import() {
    let typo = kv_workload().wrpc("wasi:keyvaleu");
    assert_refused(
        &typo
            .run(&["--wrpc-target", "tcp://127.0.0.1:1"], RUN_LIMIT)
            .unwrap(),
        &["`wrpc:` entry `wasi:keyvaleu` matches no import of any component (did you mean `wasi:keyvalue`?)"],
    );
    let version = kv_workload()
        .wrpc("wasi:keyvalue")
        .wrpc_entry("interface: wasi:keyvalue/store@0.2.0\ntarget: tcp://127.0.0.1:1");
    assert_refused(
        &version
            .run(&["--wrpc-target", "tcp://127.0.0.1:1"], RUN_LIMIT)
            .unwrap(),
        &[
            "`wasi:keyvalue/store@0.2.0`",
            "did you mean `wasi:keyvalue/store@0.2.0-draft`?",
        ],
    );
}

/// `nats://user:password@host` keeps its credentials (they used to be
/// dropped): the extension and the host both authenticate with them, and no
/// message ever shows the password.
#[test]
fn nats_credentials_are_used_and_never_shown() {
    let nats = Nats::start_with(&["--user", "wrpc", "--pass", "s3cret-pass"]).unwrap();
    let redis = Redis::start().unwrap();
    // Credentials come in the environment, never on a command line.
    let url = format!("nats://wrpc:s3cret-pass@127.0.0.1:{}", nats.port());
    let _ext = Extension::start_with_env(
        &harness::bin("keyvalue-redis").unwrap(),
        &["--redis-url".into(), redis.url()],
        &[],
        &[("WRPC_LISTEN", url.as_str())],
    )
    .unwrap();
    let with_target = |target: &str| {
        kv_workload()
            .wrpc("wasi:keyvalue")
            .spawn(&[], &[("WRPC_TARGET", target)])
            .unwrap()
            .wait(RUN_LIMIT)
            .unwrap()
    };
    assert_success(&with_target(&url), "visit number 1");
    let wrong = format!("nats://wrpc:wrong-pass@127.0.0.1:{}", nats.port());
    let refused = with_target(&wrong);
    assert_refused(
        &refused,
        &["cannot connect to NATS at nats://wrpc:***@127.0.0.1:"],
    );
    assert!(!refused.stderr.contains("wrong-pass"), "{refused:#?}");
}

/// A token can come from the environment (`?token_env=VAR`) instead of the
/// manifest; the URL shown names the variable, never its value.
#[test]
fn nats_token_from_the_environment() {
    let nats = Nats::start_with(&["--auth", "t0ken-value"]).unwrap();
    let redis = Redis::start().unwrap();
    let listen = format!("nats://t0ken-value@127.0.0.1:{}", nats.port());
    let _ext = Extension::start_with_env(
        &harness::bin("keyvalue-redis").unwrap(),
        &["--redis-url".into(), redis.url()],
        &[],
        &[("WRPC_LISTEN", listen.as_str())],
    )
    .unwrap();
    let target = format!("nats://127.0.0.1:{}?token_env=KV_TEST_TOKEN", nats.port());
    let workload = kv_workload().route("wasi:keyvalue", &target, "");
    let ok = workload
        .spawn(&[], &[("KV_TEST_TOKEN", "t0ken-value")])
        .unwrap()
        .wait(RUN_LIMIT)
        .unwrap();
    assert_success(&ok, "visit number 1");
    let unset = workload.run(&[], RUN_LIMIT).unwrap();
    assert_refused(
        &unset,
        &["`token_env=KV_TEST_TOKEN`: environment variable KV_TEST_TOKEN is not set"],
    );
}

/// NATS over TLS with a private CA (`?tls_ca=FILE`, which requires TLS):
/// the extension serves and the host calls through a TLS-only nats-server.
#[test]
fn nats_over_tls_with_a_private_ca() {
    let tls = harness::Tls::generate().unwrap();
    let cert = tls.cert_file().display().to_string();
    let key = tls.key_file().display().to_string();
    let nats = Nats::start_with(&["--tls", "--tlscert", &cert, "--tlskey", &key]).unwrap();
    let redis = Redis::start().unwrap();
    let url = format!(
        "nats://127.0.0.1:{}?tls_ca={}",
        nats.port(),
        tls.ca_file().display()
    );
    let _ext = Extension::start(
        "keyvalue-redis",
        &["--redis-url".into(), redis.url()],
        std::slice::from_ref(&url),
    )
    .unwrap();
    let ok = kv_workload()
        .route("wasi:keyvalue", &url, "")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_success(&ok, "visit number 1");
    // Without the CA the server's certificate is not trusted.
    let untrusted = format!("nats://127.0.0.1:{}?tls=required", nats.port());
    let refused = kv_workload()
        .route("wasi:keyvalue", &untrusted, "")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_refused(&refused, &["cannot connect to NATS at", "?tls=required"]);
}

/// An interface with resources cannot travel generically (a remote handle
/// would pin one server and is never dropped there): routing one is refused
/// at start, in one line naming the interface and the resource, before the
/// component runs. (`wasi:io` stands for any such interface here.)
#[test]
fn an_interface_with_resources_is_refused_naming_the_resource() {
    let run = Workload::new("counter")
        .namespace("demo")
        .component(
            Component::new("api", KV_GUEST)
                .config("SCENARIO", "counter")
                .config("BUCKET", "b"),
        )
        .wrpc("wasi:keyvalue")
        .wrpc_entry("interface: wasi:io/error\ntarget: tcp://127.0.0.1:1\ncheck: false")
        .run(&["--wrpc-target", "tcp://127.0.0.1:1"], RUN_LIMIT)
        .unwrap();
    assert_refused(
        &run,
        &[
            "cannot route `wasi:io/error@",
            "for component `api`",
            "it defines resource `error`",
        ],
    );
}
