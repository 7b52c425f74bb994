//! Labelled imports (`import primary: example:echo/echo;` in WIT: WASI 0.3's
//! `(implements ..)` names) routed per label: a `wrpc:` entry with `label:`
//! takes that label's calls, one without takes the unlabelled import's and
//! every label without an entry of its own.

use std::time::Duration;

use e2e::{assert_refused, serve, Transport, ECHO_SERVICE, LABEL_GUEST};
use harness::workload::{Component, Workload};
use harness::{example, HostProcess};

const RUN_LIMIT: Duration = Duration::from_secs(120);
const READY: Duration = Duration::from_secs(60);
const ECHO: &str = "example:echo/echo@0.1.0";

/// A second host whose `echo-service` serves `example:echo/echo` over TCP.
fn service_host() -> (HostProcess, String) {
    let host = Workload::new("b")
        .component(Component::new("svc", ECHO_SERVICE).config("PREFIX", "svc on b"))
        .export(ECHO, "tcp://127.0.0.1:0")
        .spawn(&[], &[])
        .unwrap();
    let exports = host.await_exports(READY).unwrap();
    let addr = exports
        .iter()
        .find(|(i, _)| i == ECHO)
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("{exports:?}"));
    (host, addr)
}

fn app() -> Component {
    Component::new("app", LABEL_GUEST).config("MESSAGE", "hi")
}

/// The unlabelled entry sends the plain import and `primary` (which has no
/// entry of its own) to the echo extension; `label: backup` sends
/// `backup` to the other host.
#[test]
fn each_label_goes_to_its_own_target() {
    let (_b, b_addr) = service_host();
    let ext = serve(Transport::Tcp, &example("echo").unwrap(), &[]);
    let run = Workload::new("labels")
        .component(app())
        .wrpc_entry(&format!("interface: {ECHO}\ntarget: {}", ext.target))
        .wrpc_entry(&format!(
            "interface: {ECHO}\nlabel: backup\ntarget: {b_addr}"
        ))
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:#?}");
    assert_eq!(lines[0], "plain: echo to labels: hi", "{run:#?}");
    assert_eq!(lines[1], "primary: echo to labels: hi", "{run:#?}");
    assert!(
        lines[2].starts_with("backup: svc on b #") && lines[2].ends_with(": hi"),
        "{run:#?}"
    );
}

/// Every import through its own label's entry: two labels to two targets,
/// the unlabelled import to a third (the same extension as `primary`, by a
/// separate entry).
#[test]
fn labelled_entries_alone_route_only_their_labels() {
    let (_b, b_addr) = service_host();
    let ext = serve(Transport::Tcp, &example("echo").unwrap(), &[]);
    let run = Workload::new("labels")
        .component(app().config("CALLS", "backup,primary,plain"))
        .wrpc_entry(&format!(
            "interface: {ECHO}\nlabel: primary\ntarget: {}",
            ext.target
        ))
        .wrpc_entry(&format!(
            "interface: {ECHO}\nlabel: backup\ntarget: {b_addr}"
        ))
        .run(&[], RUN_LIMIT)
        .unwrap();
    // The unlabelled import has no entry: nothing provides it.
    assert_refused(
        &run,
        &[
            "component `app` imports `example:echo/echo@0.1.0`",
            "nothing on this host provides",
        ],
    );
    let run = Workload::new("labels")
        .component(app().config("CALLS", "backup,primary,plain"))
        .wrpc_entry(&format!(
            "interface: {ECHO}\nlabel: primary\ntarget: {}",
            ext.target
        ))
        .wrpc_entry(&format!(
            "interface: {ECHO}\nlabel: backup\ntarget: {b_addr}"
        ))
        .wrpc_entry(&format!("interface: {ECHO}\ntarget: {b_addr}"))
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:#?}");
    assert!(lines[0].starts_with("backup: svc on b #"), "{run:#?}");
    assert_eq!(lines[1], "primary: echo to labels: hi", "{run:#?}");
    assert!(lines[2].starts_with("plain: svc on b #"), "{run:#?}");
}

/// An entry for a label no component imports is refused in one line
/// naming the labelled imports there are.
#[test]
fn a_label_nothing_imports_is_refused_naming_the_labels() {
    let run = Workload::new("labels")
        .component(app())
        .wrpc_entry(&format!(
            "interface: {ECHO}\ntarget: tcp://127.0.0.1:1\ncheck: false"
        ))
        .wrpc_entry(&format!(
            "interface: {ECHO}\nlabel: standby\ntarget: tcp://127.0.0.1:1\ncheck: false"
        ))
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_refused(
        &run,
        &[
            "label `standby` matches no labelled import",
            "primary (example:echo/echo@0.1.0)",
            "backup (example:echo/echo@0.1.0)",
        ],
    );
}
