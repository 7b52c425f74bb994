//! In-process links: a component's import served by another component of
//! the same workload, in the same store, with no network and no extension.

use std::process::Command;
use std::time::Duration;

use e2e::{assert_success, BLOBSTORE_FILESYSTEM, BLOB_GUEST, ECHO_GUEST, ECHO_RELAY, ECHO_SERVICE};
use harness::workload::{Component, Workload};
use harness::{HostRun, TempDir};

const RUN_LIMIT: Duration = Duration::from_secs(120);
const ECHO: &str = "example:echo/echo@0.1.0";
const ECHO_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/echo");

/// Exit 1, nothing run, and exactly one line on stderr containing every one of `words`.
#[track_caller]
fn assert_refused(run: &HostRun, words: &[&str]) {
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "nothing may run: {run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:#?}");
    for w in words {
        assert!(run.stderr.contains(w), "`{w}` missing: {run:#?}");
    }
}

fn app(count: u32) -> Component {
    Component::new("app", ECHO_GUEST)
        .config("COUNT", count)
        .config("MESSAGE", "hi")
}

fn service(name: &str) -> Component {
    Component::new(name, ECHO_SERVICE).config("PREFIX", name)
}

/// The echo guest calls the echo service in process: one instance of the
/// service for the run (its call counter goes 1, 2, 3), no `wrpc:` entry,
/// no extension.
#[test]
fn an_import_is_served_by_another_components_export_in_process() {
    let run = Workload::new("linked")
        .component(app(3))
        .component(service("svc"))
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_success(&run, "svc #1: hi #0\nsvc #2: hi #1\nsvc #3: hi #2\n");
}

/// `blobstore-filesystem` exports `wasi:blobstore` on a preopened
/// directory; the blob guest creates a container, streams objects in and
/// out and gets container and body handles back, all through it. The
/// objects really are files in the directory.
#[test]
fn blobstore_resources_cross_between_components_in_process() {
    let data = TempDir::new("linked-blobs").unwrap();
    let workload = |scenario: &str, extra: &[(&str, &str)]| {
        let mut guest = Component::new("app", BLOB_GUEST)
            .config("SCENARIO", scenario)
            .config("CONTAINER", "photos");
        for (k, v) in extra {
            guest = guest.config(k, v);
        }
        Workload::new("blobs")
            .component(guest)
            .component(Component::new("store", BLOBSTORE_FILESYSTEM).dir("/data", &data))
    };
    // The full scenario: create, write, read by ranges, metadata, copy,
    // move, list, delete, and the container's deletion.
    let full = workload("full", &[("SIZE", "3000000")])
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(full.code, Some(0), "{full:#?}");
    assert!(!full.stdout.contains("FAIL"), "{full:#?}");
    assert!(
        !data.join("photos").exists(),
        "the full scenario deletes its container"
    );

    // An object written by one run is a file, read back whole by the next.
    std::fs::create_dir(data.join("photos")).unwrap();
    let write = workload("write", &[("NAME", "cat.raw"), ("SIZE", "1500000")])
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(write.code, Some(0), "{write:#?}");
    let hash = write
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("write: ok "))
        .unwrap_or_else(|| panic!("{write:#?}"))
        .to_string();
    let file = data.join("photos").join("cat.raw");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 1_500_000);
    let read = workload("read", &[("NAME", "cat.raw")])
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(read.code, Some(0), "{read:#?}");
    assert!(
        read.stdout
            .starts_with(&format!("read: ok 1500000 {hash} ")),
        "{read:#?}"
    );
}

/// Two components exporting what a third imports: the start is refused
/// naming both, and `imports:` on the importer picks one.
#[test]
fn an_import_exported_by_two_components_names_both_until_one_is_picked() {
    let ambiguous = Workload::new("two")
        .component(app(1))
        .component(service("left"))
        .component(service("right"));
    assert_refused(
        &ambiguous.run(&[], RUN_LIMIT).unwrap(),
        &[
            "component `app` imports `example:echo/echo@0.1.0`",
            "components `left` and `right` both export",
            "`imports:",
        ],
    );
    let picked = Workload::new("two")
        .component(app(1).import_from(ECHO, "right"))
        .component(service("left"))
        .component(service("right"));
    assert_success(&picked.run(&[], RUN_LIMIT).unwrap(), "right #1: hi #0\n");
}

/// An import no plugin, declaration or component provides is named with
/// its component, before anything runs.
#[test]
fn an_import_nothing_provides_names_the_component_and_the_interface() {
    let alone = Workload::new("alone").component(app(1));
    assert_refused(
        &alone.run(&[], RUN_LIMIT).unwrap(),
        &[
            "component `app` imports `example:echo/echo@0.1.0`, which nothing on this host provides",
            "under `wrpc:`",
        ],
    );
}

/// Two relays importing each other's export: the cycle is named.
#[test]
fn components_importing_from_each_other_are_refused_naming_the_cycle() {
    let cycle = Workload::new("loop")
        .component(app(1).import_from(ECHO, "r1"))
        .component(Component::new("r1", ECHO_RELAY))
        .component(Component::new("r2", ECHO_RELAY));
    assert_refused(
        &cycle.run(&[], RUN_LIMIT).unwrap(),
        &["components import from each other in a cycle: `r1` → `r2` → `r1`"],
    );
}

/// A served export whose component calls another in process: a request
/// that makes the inner component trap fails alone, and so does a
/// component's run that made it trap. The requests after both succeed,
/// each on a store of its own (the service's counter restarts).
#[test]
fn a_trap_in_an_exporter_fails_that_request_only() {
    let host = Workload::new("relayed")
        .component(Component::new("front", ECHO_RELAY))
        .component(service("svc"))
        .component(
            Component::new("app", ECHO_GUEST)
                .config("MESSAGE", "trap")
                .import_from(ECHO, "svc"),
        )
        .export_entry(&format!(
            "interface: {ECHO}\ncomponent: front\nserve: tcp://127.0.0.1:0"
        ))
        .spawn(&[], &[])
        .unwrap();
    let exports = host.await_exports(Duration::from_secs(60)).unwrap();
    // The run of `app` trapped in `svc`, in its own store.
    host.await_stderr("component `app` trapped", Duration::from_secs(60))
        .unwrap();
    let (_, addr) = exports
        .iter()
        .find(|(i, _)| i == ECHO)
        .unwrap_or_else(|| panic!("{exports:?}"));
    let call = |message: &str| {
        Command::new(harness::bin("wrpc-ext").unwrap())
            .args([
                "call",
                addr,
                &format!("{ECHO}.echo"),
                message,
                "--wit",
                ECHO_WIT,
            ])
            .output()
            .unwrap()
    };
    let trapped = call("trap");
    assert!(!trapped.status.success(), "{trapped:?}");
    let why = String::from_utf8_lossy(&trapped.stderr);
    assert!(
        why.contains("component `svc` failed in `example:echo/echo@0.1.0.echo`")
            && why.contains("wasm `unreachable` instruction executed"),
        "{why}"
    );
    for _ in 0..2 {
        let ok = call("hello");
        assert!(ok.status.success(), "{ok:?}");
        assert_eq!(
            String::from_utf8_lossy(&ok.stdout).trim(),
            "\"relay: svc #1: hello\"",
            "a fresh store and instance per request"
        );
    }
    let run = host.terminate(Duration::from_secs(30)).unwrap();
    assert_eq!(run.code, Some(1), "the trapped run's exit code: {run:#?}");
    assert!(
        run.stderr.contains(
            "component `app` trapped: component `svc` failed in `example:echo/echo@0.1.0.echo`"
        ),
        "{run:#?}"
    );
}
