//! The built-in `logging` and `config` plugins: what `host:` asks for is
//! served in process, only when asked, and each can be switched off.

use std::time::Duration;

use e2e::{assert_success, CONFIG_GUEST};
use harness::workload::{Component, Workload};
use harness::HostRun;

const RUN_LIMIT: Duration = Duration::from_secs(120);

fn guest() -> Component {
    Component::new("reader", CONFIG_GUEST)
        .config("KEYS", "greeting,missing")
        .config("greeting", "hi there")
        .config("count", 3)
        .config("MESSAGE", "line from the guest")
}

fn workload() -> Workload {
    Workload::new("builtins")
        .component(guest())
        .host("wasi:config")
        .host("wasi:logging")
}

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

/// `wasi:config/store` answers from the component's `config` map.
#[test]
fn config_values_come_from_the_components_config() {
    let run = workload().run(&[], RUN_LIMIT).unwrap();
    assert_success(
        &run,
        "get greeting: hi there\nget missing: none\nall: KEYS=greeting,missing, MESSAGE=line from the guest, count=3, greeting=hi there\n",
    );
}

/// Every `wasi:logging` message is one event of the host's log, at its
/// level, naming the workload, the component and the context; info and
/// above show by default, all levels with `RUST_LOG=guest=trace`.
#[test]
fn logging_reaches_the_host_log_with_workload_component_and_level() {
    let lines = |run: &HostRun| -> Vec<serde_json::Value> {
        run.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["fields"]["message"] == "line from the guest")
            .collect()
    };
    let default = workload()
        .spawn(&["--log-format", "json"], &[])
        .unwrap()
        .wait(RUN_LIMIT)
        .unwrap();
    assert_eq!(default.code, Some(0), "{default:#?}");
    let shown = lines(&default);
    let levels: Vec<&str> = shown
        .iter()
        .map(|l| l["level"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(levels, ["INFO", "WARN", "ERROR", "ERROR"], "{default:#?}");

    let all = workload()
        .spawn(&["--log-format", "json"], &[("RUST_LOG", "guest=trace")])
        .unwrap()
        .wait(RUN_LIMIT)
        .unwrap();
    let events = lines(&all);
    let levels: Vec<&str> = events
        .iter()
        .map(|l| l["level"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        levels,
        ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "ERROR"],
        "{all:#?}"
    );
    for event in &events {
        assert_eq!(event["target"], "guest", "{event}");
        assert_eq!(event["fields"]["workload"], "builtins", "{event}");
        assert_eq!(event["fields"]["component"], "reader", "{event}");
        assert_eq!(event["fields"]["context"], "config-guest", "{event}");
    }
    assert_eq!(events[5]["fields"]["critical"], true, "{all:#?}");
}

/// An import the workload does not ask the host to serve is not served,
/// even with the plugin on: the message says how to ask.
#[test]
fn a_builtin_serves_only_what_host_asks_for() {
    let unasked = Workload::new("builtins")
        .component(guest())
        .host("wasi:logging");
    assert_refused(
        &unasked.run(&[], RUN_LIMIT).unwrap(),
        &[
            "component `reader` imports `wasi:config/store@0.2.0-draft`, which nothing on this host provides",
            "declare it under `host:` to serve it in process (plugin `config`)",
        ],
    );
}

/// Each built-in can be switched off by flag or environment; a workload
/// asking for it is then refused in one line naming the entry.
#[test]
fn each_builtin_can_be_switched_off() {
    let by_flag = workload()
        .run(&["--disable-plugin", "logging"], RUN_LIMIT)
        .unwrap();
    assert_refused(
        &by_flag,
        &["`host:` entry `wasi:logging`: no plugin on this host serves it"],
    );
    assert!(
        !by_flag.stderr.contains("`logging`"),
        "it is not listed: {by_flag:#?}"
    );
    let by_env = workload()
        .spawn(&[], &[("HOST_DISABLE_PLUGINS", "wrpc,config")])
        .unwrap()
        .wait(RUN_LIMIT)
        .unwrap();
    assert_refused(
        &by_env,
        &[
            "`host:` entry `wasi:config`: no plugin on this host serves it",
            "`logging` (wasi:logging/logging@0.1.0-draft)",
        ],
    );
    let unknown = workload()
        .run(&["--disable-plugin", "logs"], RUN_LIMIT)
        .unwrap();
    assert_eq!(unknown.code, Some(2), "a usage error: {unknown:#?}");
    assert!(
        unknown.stderr.contains("no built-in plugin `logs` (there are: wrpc, exports, logging, config, keyvalue, blobstore, http)"),
        "{unknown:#?}"
    );
}

/// A plugin without options refuses any, naming it.
#[test]
fn an_unknown_option_is_refused_naming_it() {
    let run = Workload::new("builtins")
        .component(guest())
        .host("wasi:config")
        .host_entry("interface: wasi:logging\nlevel: debug")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_refused(
        &run,
        &["plugin `logging`: `host:` entry `wasi:logging`: unknown option `level` (this plugin takes none)"],
    );
}
