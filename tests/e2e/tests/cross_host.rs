//! A component on host A calls a component's export on host B over wRPC
//! (`exports:` on B, `wrpc:` on A), and one interface goes to different
//! targets for different components of one workload.

use std::process::Command;
use std::time::Duration;

use e2e::{serve, Transport, CONFIG_GUEST, ECHO_GUEST, ECHO_RELAY, ECHO_SERVICE};
use harness::workload::{Component, Workload};
use harness::{example, HostProcess, Nats};

const RUN_LIMIT: Duration = Duration::from_secs(120);
const READY: Duration = Duration::from_secs(60);
const ECHO: &str = "example:echo/echo@0.1.0";
const ECHO_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/echo");

/// Host B: `echo-service` serving `example:echo/echo` at `serve`.
fn host_b(serve: &str) -> (HostProcess, String) {
    let b = Workload::new("b")
        .component(Component::new("svc", ECHO_SERVICE).config("PREFIX", "svc on b"))
        .export(ECHO, serve)
        .spawn(&[], &[])
        .unwrap();
    let exports = b.await_exports(READY).unwrap();
    let addr = exports
        .iter()
        .find(|(i, _)| i == ECHO)
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("{exports:?}"));
    (b, addr)
}

/// `wrpc-ext call ADDR example:echo/echo.echo MESSAGE`: its exit status
/// and what it printed.
fn call(addr: &str, message: &str) -> (bool, String) {
    let out = Command::new(harness::bin("wrpc-ext").unwrap())
        .args([
            "call",
            addr,
            &format!("{ECHO}.echo"),
            message,
            "--wit",
            ECHO_WIT,
        ])
        .output()
        .unwrap();
    let text = if out.status.success() {
        out.stdout
    } else {
        out.stderr
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&text).trim().to_string(),
    )
}

/// Host A's relay calls B's service; B is killed (A's calls fail, A keeps
/// running) and started again at the same address (A's next call succeeds,
/// A never restarted).
fn calls_survive_the_other_hosts_restart(b_serve: &str, a_target: impl Fn(&str) -> String) {
    let (mut b, b_addr) = host_b(b_serve);
    let a = Workload::new("a")
        .component(Component::new("front", ECHO_RELAY))
        .export(ECHO, "tcp://127.0.0.1:0")
        .wrpc_entry(&format!("interface: {ECHO}\ntarget: {}", a_target(&b_addr)))
        .spawn(&[], &[])
        .unwrap();
    let a_addr = a
        .await_exports(READY)
        .unwrap()
        .into_iter()
        .find(|(i, _)| i == ECHO)
        .map(|(_, a)| a)
        .unwrap();
    let a_pid = a.pid();
    assert_eq!(
        call(&a_addr, "one"),
        (true, "\"relay: svc on b #1: one\"".into())
    );

    b.kill();
    assert!(
        harness::proc_status_kib(b.pid(), "VmRSS").is_err(),
        "host B is really gone"
    );
    let (ok, why) = call(&a_addr, "two");
    assert!(!ok, "B is down: {why}");
    assert!(
        why.contains("component `front` trapped") && why.contains("example:echo/echo@0.1.0.echo"),
        "the failure names the call: {why}"
    );

    let (_b, _) = host_b(&b_addr_for_restart(b_serve, &b_addr));
    assert_eq!(
        call(&a_addr, "three"),
        (true, "\"relay: svc on b #1: three\"".into())
    );
    assert_eq!(a.pid(), a_pid, "host A was never restarted");
    assert!(
        harness::proc_status_kib(a_pid, "VmRSS").is_ok(),
        "host A still runs"
    );
}

/// Where B serves again after its restart: the address it had (a TCP port
/// picked at first start is kept; NATS subjects do not change).
fn b_addr_for_restart(first: &str, served_at: &str) -> String {
    if first.starts_with("tcp://") {
        served_at.to_string()
    } else {
        first.to_string()
    }
}

#[test]
fn tcp_calls_survive_the_other_hosts_restart() {
    calls_survive_the_other_hosts_restart("tcp://127.0.0.1:0", |b| b.to_string());
}

#[test]
fn nats_calls_survive_the_other_hosts_restart() {
    let nats = Nats::start().unwrap();
    let url = format!("{}/cross", nats.url());
    calls_survive_the_other_hosts_restart(&url, |_| url.clone());
}

/// One interface, two components, two targets: `components:` on the
/// `wrpc:` entries sends `left`'s calls to the echo extension and
/// `right`'s to host B.
#[test]
fn one_interface_goes_to_a_different_target_per_component() {
    let (_b, b_addr) = host_b("tcp://127.0.0.1:0");
    let ext = serve(Transport::Tcp, &example("echo").unwrap(), &[]);
    let guest =
        |name: &str| Component::new(name, ECHO_GUEST).config("MESSAGE", format!("from {name}"));
    let run = Workload::new("split")
        .component(guest("left"))
        .component(guest("right"))
        .wrpc_entry(&format!(
            "interface: {ECHO}\ncomponents: [left]\ntarget: {}",
            ext.target
        ))
        .wrpc_entry(&format!(
            "interface: {ECHO}\ncomponents: [right]\ntarget: {b_addr}"
        ))
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["echo to split: from left #0", "svc on b #1: from right #0"],
        "{run:#?}"
    );
}

/// Two plugins claiming one import of one component stop the workload in
/// one line naming both; `components:` that do not meet let both serve.
#[test]
fn two_plugins_claiming_one_import_are_refused_naming_both() {
    let workload = |wrpc_components: &str| {
        Workload::new("both")
            .component(Component::new("app", CONFIG_GUEST))
            .component(Component::new("other", CONFIG_GUEST))
            .host_entry("interface: wasi:config\ncomponents: [app]")
            .host("wasi:logging")
            .wrpc_entry(&format!(
                "interface: wasi:config/store\ncomponents: [{wrpc_components}]\ntarget: tcp://127.0.0.1:1\ncheck: false"
            ))
    };
    let run = workload("other, app").run(&[], RUN_LIMIT).unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "nothing ran: {run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:#?}");
    assert!(
        run.stderr.contains(
            "plugins `wrpc` and `config` both claim `wasi:config/store` for component `app`"
        ),
        "{run:#?}"
    );
    // Apart, both serve: `app` reads its config in process, `other`'s
    // calls go to the (unreachable) target and fail.
    let apart = workload("other").run(&[], RUN_LIMIT).unwrap();
    assert!(apart.stdout.contains("all: "), "app ran: {apart:#?}");
    assert!(
        apart.stderr.contains("component `other` trapped")
            && apart.stderr.contains("wasi:config/store@0.2.0-draft.get")
            && apart.stderr.contains("tcp://127.0.0.1:1"),
        "other's call went to its target: {apart:#?}"
    );
}

/// A served export with `pool_size` answers from instances made ahead:
/// once the pool is full, a call takes one and instantiates nothing.
#[test]
fn served_calls_take_pooled_instances() {
    let b = Workload::new("b")
        .component(
            Component::new("svc", ECHO_SERVICE)
                .config("PREFIX", "pooled")
                .pool_size(2),
        )
        .export(ECHO, "tcp://127.0.0.1:0")
        .spawn(&["--http-addr", "127.0.0.1:0"], &[])
        .unwrap();
    let ops = b.http_addr(READY).unwrap();
    let exports = b.await_exports(READY).unwrap();
    let addr = &exports.iter().find(|(i, _)| i == ECHO).unwrap().1;
    let metric = |name: &str, labels: &[(&str, &str)]| {
        let (_, text) = harness::http_get(&ops, "/metrics").unwrap();
        harness::metric(&text, name, labels)
    };
    for n in 1..=3 {
        let deadline = std::time::Instant::now() + READY;
        while metric(
            "host_pool_ready",
            &[("workload", "b"), ("component", "svc")],
        ) < 2.0
        {
            assert!(std::time::Instant::now() < deadline, "the pool fills");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (ok, out) = call(addr, "hi");
        assert!(ok, "{out}");
        assert!(out.contains("pooled"), "{out}");
        let source = |s| metric("host_instances_total", &[("workload", "b"), ("source", s)]);
        assert_eq!(
            (source("pool"), source("new")),
            (f64::from(n), 0.0),
            "call {n}"
        );
    }
    b.terminate(RUN_LIMIT).unwrap();
}
