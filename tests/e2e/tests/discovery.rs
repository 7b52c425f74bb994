//! Capability discovery: an sdk-built extension says what it serves (JSON
//! at `/describe`, and over wRPC), and the host asks each `wrpc:` target at
//! workload start, for each instance imported through it, failing early
//! when the target serves something else.

use std::time::Duration;

use e2e::{serve, Transport, ECHO_GUEST, KV_GUEST};
use harness::workload::{Component, Workload};
use harness::{bin, example, Extension, Nats};

const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The stream transports: one extension per address, so its answer is the
/// target's.
macro_rules! per_stream_transport {
    ($($scenario:ident),* $(,)?) => {
        $(mod $scenario {
            #[test] fn tcp() { super::$scenario(e2e::Transport::Tcp) }
            #[test] fn unix() { super::$scenario(e2e::Transport::Unix) }
            #[test] fn ws() { super::$scenario(e2e::Transport::Ws) }
            #[test] fn wss() { super::$scenario(e2e::Transport::Wss) }
        })*
    };
}

per_stream_transport!(a_target_serving_other_interfaces_fails_the_workload_at_start);

/// A key-value workload whose `wrpc:` entry ends with `extra` (mapping lines).
fn kv_manifest(target: &str, extra: &str) -> Workload {
    Workload::new("discovery")
        .namespace("tests")
        .component(
            Component::new("api", KV_GUEST)
                .config("SCENARIO", "expect-error")
                .config("BUCKET", "b"),
        )
        .route("wasi:keyvalue", target, &format!("timeout: 5s\n{extra}"))
}

/// Runs the key-value guest (one `get` expected to fail) routed to `target`.
fn run_kv(target: &str, extra: &str, args: &[&str]) -> harness::HostRun {
    kv_manifest(target, extra).run(args, RUN_LIMIT).unwrap()
}

#[test]
fn describe_lists_the_served_interfaces_listeners_and_wit() {
    let echo = example("echo").unwrap();
    let ext = Extension::start_at(&echo, &[], &["tcp://127.0.0.1:0".to_string()]).unwrap();
    let (status, body) = ext.http_get("/describe").unwrap();
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["name"], "echo");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["interfaces"],
        serde_json::json!([{
            "instance": "example:echo/echo@0.1.0",
            "package": "example:echo",
            "interface": "echo",
            "version": "0.1.0",
            "functions": ["echo"],
        }])
    );
    let tcp = ext.address("tcp").unwrap();
    let listeners: Vec<&str> = doc["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    // The health endpoint and the TCP listener, with the ports bound.
    assert_eq!(
        listeners,
        [format!("http://{}", ext.http_addr()).as_str(), tcp]
    );
    // The WIT that types the interface: the echo package's one file, as is.
    assert_eq!(doc["wit"][0][0][0], "echo.wit");
    assert_eq!(
        doc["wit"][0][0][1],
        include_str!("../../../wit/echo/echo.wit")
    );
}

/// The echo extension is declared as the key-value target: the host asks
/// it, learns it serves only `example:echo/echo`, and stops before running
/// the component, in one line naming the interface, the target and what
/// the extension does serve.
fn a_target_serving_other_interfaces_fails_the_workload_at_start(transport: Transport) {
    let served = serve(transport, &example("echo").unwrap(), &[]);
    let run = run_kv(&served.target, "", &[]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "the component ran: {run:#?}");
    assert_eq!(
        run.stderr,
        format!(
            "host: plugin `wrpc`: `wasi:keyvalue` is routed to {}, but the extension there (echo) does not serve `wrpc:keyvalue/atomics@0.2.0-draft`; it serves example:echo/echo@0.1.0\n",
            served.target
        ),
        "{run:#?}"
    );
}

/// With `check: false` the host does not ask: the component runs and its
/// call reaches the echo extension, which does not serve it, and the guest
/// gets an error value saying so.
#[test]
fn check_false_skips_the_question_and_the_call_says_not_served() {
    let served = serve(Transport::Tcp, &example("echo").unwrap(), &[]);
    let run = run_kv(&served.target, "check: false", &[]);
    assert!(
        run.stdout
            .contains("`wrpc:keyvalue/store@0.2.0-draft.get` is not served by this extension"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("does not serve it"), "{run:#?}");
    assert!(
        served
            .ext
            .log()
            .iter()
            .any(|l| l.contains("call to a function this extension does not serve")),
        "{:?}",
        served.ext.log()
    );
}

/// `--no-check-served` turns the question off for every entry.
#[test]
fn no_check_served_flag_skips_every_question() {
    let served = serve(Transport::Tcp, &example("echo").unwrap(), &[]);
    let run = run_kv(&served.target, "", &["--no-check-served"]);
    assert!(
        run.stdout
            .contains("`wrpc:keyvalue/store@0.2.0-draft.get` is not served by this extension"),
        "{run:#?}"
    );
}

/// Over NATS extensions share a prefix, so the host asks each imported
/// instance's own subject: with the echo extension and the inventory on one
/// prefix, only echo answers for `example:echo/echo`, the run goes ahead,
/// and echo's metrics show the question it answered.
#[test]
fn over_nats_only_an_extension_serving_the_instance_answers() {
    let nats = Nats::start().unwrap();
    let listen = [nats.url()];
    let echo = Extension::start_at(&example("echo").unwrap(), &[], &listen).unwrap();
    let _inventory = Extension::start_at(&bin("inventory").unwrap(), &[], &listen).unwrap();
    let run = Workload::new("echoer")
        .namespace("tests")
        .component(
            Component::new("api", ECHO_GUEST)
                .config("MESSAGE", "hi")
                .config("COUNT", 1),
        )
        .route("example:echo/echo", &nats.url(), "timeout: 5s")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stdout.contains("echo to echoer: hi #0"), "{run:#?}");
    let (_, metrics) = echo.http_get("/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("wrpc_server_calls_total")
                && l.contains("function=\"wrpc-ext:describe\"")
                && l.contains("interface=\"example:echo/echo@0.1.0\"")
                && l.contains("outcome=\"ok\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// Over NATS, nothing answering for an instance cannot be told from an
/// extension not started yet: the start goes ahead and the call fails with
/// the interface's error value, naming the target.
#[test]
fn over_nats_a_prefix_without_the_instance_is_left_to_the_call() {
    let served = serve(Transport::Nats, &example("echo").unwrap(), &[]);
    let run = run_kv(&served.target, "", &[]);
    assert!(!run.stderr.contains("does not serve"), "{run:#?}");
    assert!(run.stdout.contains("nothing is serving it"), "{run:#?}");
}
