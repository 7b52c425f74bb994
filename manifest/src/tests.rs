use core::time::Duration;

use super::*;

const GOOD: &str = r#"
name: counter
namespace: demo
components:
  - name: api
    file: ./counter.wasm
    config: { greeting: hello, count: 3 }
wrpc:
  - wasi:keyvalue
  - interface: example:echo/echo
    target: tcp://127.0.0.1:7762
    timeout: 5s
"#;

#[test]
fn parses_short_and_long_entries() {
    let w = Workload::parse(GOOD).unwrap();
    assert_eq!(w.namespace, "demo");
    assert_eq!(w.components[0].config["count"], Scalar("3".into()));
    let d = &w.wrpc;
    assert_eq!(d[0].interface.to_string(), "wasi:keyvalue");
    assert_eq!(d[0].target, None);
    assert_eq!(
        d[1].target.as_ref().unwrap().to_string(),
        "tcp://127.0.0.1:7762"
    );
    assert_eq!(d[1].timeout, Some(Duration::from_secs(5)));
}

#[test]
fn errors_carry_line_and_column() {
    let err = Workload::parse("name: x\ncomponents:\n  - name: a\n    file: [\n").unwrap_err();
    assert!(err.location().is_some(), "{err}");
    let bad_target = GOOD.replace("tcp://127.0.0.1:7762", "udp://x:1");
    let err = Workload::parse(&bad_target).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("unsupported scheme `udp`") && msg.contains("line 10"),
        "{msg}"
    );
    let bad_iface = GOOD.replace("- wasi:keyvalue", "- keyvalue");
    let msg = Workload::parse(&bad_iface).unwrap_err().to_string();
    assert!(
        msg.contains("`keyvalue` is not an interface name") && msg.contains("line 9"),
        "{msg}"
    );
    let unknown = GOOD.replace("namespace: demo", "namespce: demo");
    let msg = Workload::parse(&unknown).unwrap_err().to_string();
    assert!(msg.contains("unknown field `namespce`"), "{msg}");
}

#[test]
fn header_unsafe_identities_are_refused_with_their_position() {
    let newline = GOOD.replace("name: counter", "name: \"count\\ner\"");
    let msg = Workload::parse(&newline).unwrap_err().to_string();
    assert!(
        msg.contains("`name` contains a newline") && msg.contains("line 2"),
        "{msg}"
    );
    let ns = GOOD.replace("namespace: demo", "namespace: \"a\\rb\"");
    let msg = Workload::parse(&ns).unwrap_err().to_string();
    assert!(
        msg.contains("`namespace` contains a carriage return"),
        "{msg}"
    );
    let comp = GOOD.replace("- name: api", "- name: \"caf\u{e9}\"");
    let msg = Workload::parse(&comp).unwrap_err().to_string();
    assert!(msg.contains("component `name` contains"), "{msg}");
}

#[test]
fn durations_are_bounded_and_named() {
    let huge = GOOD.replace("timeout: 5s", "timeout: 18446744073709551615s");
    let msg = Workload::parse(&huge).unwrap_err().to_string();
    assert!(
        (msg.contains("maximum") || msg.contains("too long")) && msg.contains("line 10"),
        "{msg}"
    );
    let fast = GOOD.replace("timeout: 5s", "timeout: fast");
    let msg = Workload::parse(&fast).unwrap_err().to_string();
    assert!(msg.contains("`fast` is not a duration"), "{msg}");
    let zero = GOOD.replace("timeout: 5s", "timeout: 0s");
    assert!(Workload::parse(&zero)
        .unwrap_err()
        .to_string()
        .contains("greater than zero"));
    let idle = GOOD.replace("timeout: 5s", "timeout: 5s\n    idle_timeout: 2m");
    let w = Workload::parse(&idle).unwrap();
    assert_eq!(w.wrpc[1].idle_timeout, Some(Duration::from_secs(120)));
}

#[test]
fn targets_keep_credentials_but_never_show_them() {
    let creds = GOOD.replace(
        "tcp://127.0.0.1:7762",
        "nats://user:s3cret@127.0.0.1:4222/p",
    );
    let w = Workload::parse(&creds).unwrap();
    let target = w.wrpc[1].target.clone().unwrap();
    assert_eq!(target.to_string(), "nats://user:***@127.0.0.1:4222/p");
    assert!(!format!("{w:?}").contains("s3cret"));
}

const EXPORTS: &str = r#"
exports:
  - interface: wasmcloud:messaging/handler@0.2.0
    serve: nats://127.0.0.1:4222/handlers
    max_concurrency: 4
    timeout: 2s
  - interface: example:echo/echo
    component: api
    serve: tcp://127.0.0.1:0
"#;

#[test]
fn exports_parse_with_defaults() {
    let w = Workload::parse(&format!("{GOOD}{EXPORTS}")).unwrap();
    w.validate().unwrap();
    assert_eq!(w.exports.len(), 2);
    assert_eq!(w.exports[0].max_concurrency, 4);
    assert_eq!(w.exports[0].timeout, Duration::from_secs(2));
    assert_eq!(w.exports[0].component, None);
    assert_eq!(w.exports[1].component.as_deref(), Some("api"));
    assert_eq!(w.exports[1].max_concurrency, DEFAULT_EXPORT_CONCURRENCY);
    assert_eq!(w.exports[1].timeout, DEFAULT_EXPORT_TIMEOUT);
    assert_eq!(w.exports[1].serve.to_string(), "tcp://127.0.0.1:0");
}

#[test]
fn bad_exports_are_named() {
    let text = format!("{GOOD}{EXPORTS}");
    let zero = text.replace("max_concurrency: 4", "max_concurrency: 0");
    let msg = Workload::parse(&zero).unwrap_err().to_string();
    assert!(
        msg.contains("`max_concurrency` must be at least 1"),
        "{msg}"
    );
    let package = text.replace("example:echo/echo", "example:echo");
    let msg = Workload::parse(&package).unwrap_err().to_string();
    assert!(msg.contains("`example:echo` is a package"), "{msg}");
    let udp = text.replace("tcp://127.0.0.1:0", "udp://127.0.0.1:0");
    let msg = Workload::parse(&udp).unwrap_err().to_string();
    assert!(msg.contains("unsupported scheme `udp`"), "{msg}");
    let missing = text.replace("component: api", "component: apx");
    let w = Workload::parse(&missing).unwrap();
    let msg = w.validate().unwrap_err();
    assert!(msg.contains("names component `apx`"), "{msg}");
    let unknown = text.replace("timeout: 2s", "timeuot: 2s");
    let msg = Workload::parse(&unknown).unwrap_err().to_string();
    assert!(msg.contains("unknown field `timeuot`"), "{msg}");
}

#[test]
fn validation_names_the_problem() {
    let w = Workload::parse(&GOOD.replace("file: ./counter.wasm", "image: r/x:1")).unwrap();
    assert_eq!(w.validate(), Ok(()), "an image instead of a file");
    let both = GOOD.replace(
        "file: ./counter.wasm",
        "file: ./counter.wasm\n    image: r/x:1",
    );
    let w = Workload::parse(&both).unwrap();
    assert!(w
        .validate()
        .unwrap_err()
        .contains("exactly one of `file` or `image`"));
    let twice = format!("{GOOD}  - wasi:keyvalue\n");
    let w = Workload::parse(&twice).unwrap();
    assert!(w.validate().unwrap_err().contains("declared twice"));
}

const PLUGINS: &str = r#"
name: shop
components:
  - name: api
    file: api.wasm
    dirs: { /data: ./data }
    imports:
      - interface: wasi:blobstore
        component: files
  - name: files
    file: files.wasm
  - name: worker
    file: worker.wasm
host:
  - wasi:logging
  - interface: wasi:keyvalue
    components: [api]
    path: ./kv.json
    max_bytes: 1048576
wrpc:
  - interface: wasi:keyvalue
    components: [worker]
    target: tcp://127.0.0.1:7761
  - interface: example:echo/echo
    components: [api]
    target: tcp://127.0.0.1:7762
  - interface: example:echo/echo
    components: [worker]
    target: tcp://127.0.0.1:7763
"#;

#[test]
fn host_entries_keep_their_plugin_options() {
    let w = Workload::parse(PLUGINS).unwrap();
    w.validate().unwrap();
    assert_eq!(w.host[0].interface.to_string(), "wasi:logging");
    assert!(w.host[0].options.is_empty());
    let kv = &w.host[1];
    assert_eq!(kv.components.as_deref(), Some(&["api".to_string()][..]));
    assert_eq!(kv.options["path"], serde_yaml::Value::from("./kv.json"));
    assert_eq!(kv.options["max_bytes"], serde_yaml::Value::from(1_048_576));
    assert!(kv.covers("api", "wasi:keyvalue/store@0.2.0-draft"));
    assert!(!kv.covers("worker", "wasi:keyvalue/store@0.2.0-draft"));
    let api = w.component("api").unwrap();
    assert_eq!(api.dirs["/data"], std::path::PathBuf::from("./data"));
    assert_eq!(api.imports[0].component, "files");
}

#[test]
fn option_paths_of_a_loaded_manifest_are_relative_to_it() {
    let dir = std::env::temp_dir().join(format!("manifest-base-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.yaml");
    std::fs::write(&path, PLUGINS).unwrap();
    let w = Workload::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let kv = &w.host[1];
    assert_eq!(kv.resolve("./kv.json"), dir.join("./kv.json"));
    assert_eq!(
        kv.resolve("/abs/kv.json"),
        std::path::PathBuf::from("/abs/kv.json")
    );
    let parsed = Workload::parse(PLUGINS).unwrap();
    assert_eq!(
        parsed.host[1].resolve("kv.json"),
        std::path::PathBuf::from("kv.json")
    );
}

#[test]
fn one_interface_routes_per_component() {
    let w = Workload::parse(PLUGINS).unwrap();
    let to = |component: &str| {
        w.wrpc
            .iter()
            .find(|d| d.covers(component, "example:echo/echo"))
            .and_then(|d| d.target.as_ref())
            .map(ToString::to_string)
    };
    assert_eq!(to("api").as_deref(), Some("tcp://127.0.0.1:7762"));
    assert_eq!(to("worker").as_deref(), Some("tcp://127.0.0.1:7763"));
    assert_eq!(to("files"), None);

    let meet = PLUGINS.replace(
        "components: [worker]\n    target: tcp://127.0.0.1:7763",
        "components: [worker, api]\n    target: tcp://127.0.0.1:7763",
    );
    let msg = Workload::parse(&meet).unwrap().validate().unwrap_err();
    assert_eq!(msg, "`example:echo/echo` is declared twice under `wrpc:`");
}

#[test]
fn one_interface_routes_per_label() {
    let labelled = PLUGINS.replace(
        "components: [worker]
    target: tcp://127.0.0.1:7763",
        "components: [worker, api]
    label: backup
    target: tcp://127.0.0.1:7763",
    );
    let w = Workload::parse(&labelled).unwrap();
    w.validate().unwrap();
    let backup = w.wrpc.iter().find(|d| d.label.is_some()).unwrap();
    assert_eq!(backup.label.as_deref(), Some("backup"));
    assert!(
        !backup.covers("api", "example:echo/echo"),
        "a labelled entry leaves the unlabelled import alone"
    );

    let twice = labelled.replace(
        "components: [api]
    target: tcp://127.0.0.1:7762",
        "components: [api]
    label: backup
    target: tcp://127.0.0.1:7762",
    );
    let msg = Workload::parse(&twice).unwrap().validate().unwrap_err();
    assert_eq!(
        msg,
        "`example:echo/echo` is declared twice under `wrpc:` with label `backup`"
    );
}

#[test]
fn unknown_components_in_entries_are_named() {
    for (from, to, expected) in [
        (
            "components: [api]\n    path",
            "components: [apx]\n    path",
            "`host:` entry `wasi:keyvalue` names component `apx`",
        ),
        (
            "components: [worker]\n    target: tcp://127.0.0.1:7761",
            "components: [wrker]\n    target: tcp://127.0.0.1:7761",
            "`wrpc:` entry `wasi:keyvalue` names component `wrker`",
        ),
        (
            "component: files",
            "component: fils",
            "component `api`: import `wasi:blobstore` names component `fils`",
        ),
        (
            "component: files",
            "component: api",
            "component `api`: import `wasi:blobstore` names the component itself",
        ),
    ] {
        let text = PLUGINS.replace(from, to);
        assert_ne!(text, PLUGINS, "{from}");
        let msg = Workload::parse(&text).unwrap().validate().unwrap_err();
        assert!(msg.contains(expected), "{msg}");
    }
    let bad = PLUGINS.replace("  - wasi:logging", "  - interface: 3");
    let msg = Workload::parse(&bad).unwrap_err().to_string();
    assert!(msg.contains("`interface` must be a string"), "{msg}");
}
