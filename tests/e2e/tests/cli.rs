//! `wrpc-ext call` and `wrpc-ext describe` against real extensions on every
//! transport: keyvalue-redis with a real redis-server, typed by the WIT in
//! `wit/wrpc-keyvalue` or by what the extension describes, and the sdk's
//! echo example with caller headers.
//!
//! Uses the built `wrpc-ext`, `keyvalue-redis`, `inventory` and `echo`
//! example binaries: `cargo build -p wrpc-ext -p keyvalue-redis -p inventory
//! && cargo build -p sdk --examples` first.

use std::process::Command;

use e2e::{per_transport, serve, unserved_target, Served, Transport};
use harness::{example, Nats, Redis};

const KV_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/wrpc-keyvalue");
const ECHO_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/echo");
const INVENTORY_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/inventory");
const STOCK: &str = "example:inventory/stock@0.1.0";
const STORE: &str = "wrpc:keyvalue/store@0.2.0-draft";
const ATOMICS: &str = "wrpc:keyvalue/atomics@0.2.0-draft";
const BATCH: &str = "wrpc:keyvalue/batch@0.2.0-draft";

per_transport!(
    keyvalue_calls,
    echo_with_headers,
    a_function_the_extension_lacks,
    unreachable_target
);

/// What one run of `wrpc-ext` did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Exit 0 and exactly `stdout`.
    #[track_caller]
    fn prints(&self, stdout: &str) {
        assert!(
            self.code == Some(0) && self.stdout == stdout && self.stderr.is_empty(),
            "expected success printing {stdout:?}\n{self:#?}"
        );
    }

    /// Exit `code`, nothing on stdout, one line on stderr; returns the line.
    #[track_caller]
    fn fails(&self, code: i32) -> &str {
        assert!(
            self.code == Some(code)
                && self.stdout.is_empty()
                && self.stderr.lines().count() == 1
                && self.stderr.ends_with('\n'),
            "expected exit {code} with one line on stderr\n{self:#?}"
        );
        self.stderr.trim_end()
    }
}

fn wrpc_ext(args: &[&str]) -> Run {
    let out = Command::new(harness::bin("wrpc-ext").unwrap())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `wrpc-ext call TARGET FUNC ARGS… --wit wit/wrpc-keyvalue --json`.
fn kv(target: &str, func: &str, args: &[&str]) -> Run {
    let mut all = vec!["call", target, func];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--wit", KV_WIT, "--json"]);
    wrpc_ext(&all)
}

/// Redis, and keyvalue-redis serving on one transport.
struct Stack {
    _redis: Redis,
    served: Served,
}

impl Stack {
    fn start(transport: Transport) -> Self {
        let redis = Redis::start().unwrap();
        let args = ["--redis-url".to_string(), redis.url()];
        let served = serve(transport, &harness::bin("keyvalue-redis").unwrap(), &args);
        Self {
            _redis: redis,
            served,
        }
    }
}

/// set, get (text and binary), increment, a batch, discovery; a bad argument
/// is a usage error naming the parameter; an interface the extension does
/// not serve fails the call in one line.
fn keyvalue_calls(transport: Transport) {
    let stack = Stack::start(transport);
    let target = stack.served.target.as_str();
    let get = format!("{STORE}.get");
    let set = format!("{STORE}.set");
    let increment = format!("{ATOMICS}.increment");

    kv(target, &set, &["b", "greeting", r#""hello""#]).prints("{\"ok\":null}\n");
    kv(target, &get, &["b", "greeting"]).prints("{\"ok\":\"hello\"}\n");
    kv(target, &get, &["b", "absent"]).prints("{\"ok\":null}\n");
    // Bytes that are not UTF-8 go in and come back as base64.
    kv(target, &set, &["b", "raw", r#"{"base64":"AP8="}"#]).prints("{\"ok\":null}\n");
    kv(target, &get, &["b", "raw"]).prints("{\"ok\":{\"base64\":\"AP8=\"}}\n");
    kv(target, &increment, &["b", "n", "5"]).prints("{\"ok\":5}\n");
    kv(target, &increment, &["b", "n", "37"]).prints("{\"ok\":42}\n");
    kv(
        target,
        &format!("{BATCH}.get-many"),
        &["b", r#"["greeting","n","absent"]"#],
    )
    .prints("{\"ok\":[[\"greeting\",\"hello\"],[\"n\",\"42\"],null]}\n");
    // Indented by default.
    wrpc_ext(&["call", target, &get, "b", "greeting", "--wit", KV_WIT])
        .prints("{\n  \"ok\": \"hello\"\n}\n");

    // Without --wit, the signatures come from the extension's description.
    wrpc_ext(&["call", target, &get, "b", "n", "--json"]).prints("{\"ok\":\"42\"}\n");
    let described = wrpc_ext(&["describe", target, "--json"]);
    assert_eq!(described.code, Some(0), "{described:#?}");
    let description: serde_json::Value = serde_json::from_str(&described.stdout).unwrap();
    assert_eq!(description["name"], "keyvalue-redis", "{described:#?}");
    assert!(description.get("wit").is_none(), "{described:#?}");

    // Usage errors (exit 2) name the parameter and the place in its value.
    assert_eq!(
        kv(target, &increment, &["b", "n", "-1"]).fails(2),
        "wrpc-ext: parameter 3 (delta): expected u64, got -1"
    );
    assert_eq!(
        kv(
            target,
            &format!("{BATCH}.set-many"),
            &["b", r#"[["a","x"],["b",300]]"#]
        )
        .fails(2),
        "wrpc-ext: parameter 2 (key-values): [1][1]: expected list<u8> \
         (a string, an array of bytes or {\"base64\": \"…\"}), got 300"
    );
    assert_eq!(
        kv(target, &format!("{STORE}.fetch"), &["b", "k"]).fails(2),
        format!(
            "wrpc-ext: `{STORE}` has no function `fetch` \
             (it has: delete, exists, get, list-keys, set)"
        )
    );
    assert_eq!(
        kv(target, &get, &["b"]).fails(2),
        format!("wrpc-ext: `{STORE}.get` takes 2 arguments (bucket: string, key: string), got 1")
    );
    // Nothing was written by the refused calls.
    kv(target, &get, &["b", "a"]).prints("{\"ok\":null}\n");

    // An interface in the WIT that the extension does not serve.
    let unserved = wrpc_ext(&[
        "call",
        target,
        "example:echo/echo@0.1.0.echo",
        "hi",
        "--wit",
        ECHO_WIT,
    ]);
    let expected = match transport {
        Transport::Nats => "nothing is serving it (no NATS responders)",
        _ => "the extension failed the call: `example:echo/echo@0.1.0.echo` is not served by this extension",
    };
    assert_eq!(
        unserved.fails(1),
        format!(
            "wrpc-ext: `example:echo/echo@0.1.0.echo` via {}: {expected}",
            shown(target)
        )
    );
}

/// A target as the transport prints it (options in its own order).
fn shown(target: &str) -> String {
    target.parse::<transport::Endpoint>().unwrap().to_string()
}

/// The sdk's echo example, typed by its own description, sees the caller
/// headers given with `--header`.
fn echo_with_headers(transport: Transport) {
    let served = serve(transport, &example("echo").unwrap(), &[]);
    let echo = "example:echo/echo@0.1.0.echo";
    wrpc_ext(&[
        "call",
        &served.target,
        echo,
        "hello there",
        "--header",
        "wrpc-workload=cli-test",
        "--header",
        "wrpc-namespace=tests",
    ])
    .prints("\"echo to cli-test: hello there\"\n");
    wrpc_ext(&["call", &served.target, echo, r#""quoted""#, "--json"])
        .prints("\"echo to anonymous: quoted\"\n");
    assert_eq!(
        wrpc_ext(&[
            "call",
            &served.target,
            echo,
            "x",
            "--header",
            "wrpc-workload"
        ])
        .fails(2),
        "wrpc-ext: --header `wrpc-workload`: expected NAME=VALUE"
    );
}

/// A WIT newer than the extension: `shout` is in the caller's interface but
/// the echo extension does not serve it. Every transport says so in the
/// same line; over NATS, where nothing subscribes to the function, the
/// client learns it by asking the instance's `wrpc-ext:describe`.
fn a_function_the_extension_lacks(transport: Transport) {
    let served = serve(transport, &example("echo").unwrap(), &[]);
    let dir = std::env::temp_dir().join(format!(
        "cli-newer-wit-{}-{transport:?}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let wit = std::fs::read_to_string(format!("{ECHO_WIT}/echo.wit"))
        .unwrap()
        .replace(
            "    echo: func(message: string) -> string;\n",
            "    echo: func(message: string) -> string;\n    shout: func(message: string) -> string;\n",
        );
    assert!(wit.contains("shout"), "{wit}");
    std::fs::write(dir.join("echo.wit"), wit).unwrap();
    let shout = "example:echo/echo@0.1.0.shout";
    let run = wrpc_ext(&[
        "call",
        &served.target,
        shout,
        "hi",
        "--wit",
        dir.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        run.fails(1),
        format!(
            "wrpc-ext: `{shout}` via {}: the extension failed the call: `{shout}` is not served by this extension",
            shown(&served.target)
        )
    );
    // The function it does serve still answers.
    wrpc_ext(&["call", &served.target, "example:echo/echo@0.1.0.echo", "hi"])
        .prints("\"echo to anonymous: hi\"\n");
}

/// Nothing serves the target: exit 1 with one line. On a stream transport
/// nothing listens there, which the line says, the same with and without
/// `--wit`; over NATS nobody answers the call.
fn unreachable_target(transport: Transport) {
    let nats = Nats::start().unwrap();
    let target = unserved_target(transport, &nats);
    let get = format!("{STORE}.get");
    let with_wit = kv(&target, &get, &["b", "k"]).fails(1).to_string();
    let without = wrpc_ext(&["call", &target, &get, "b", "k", "--timeout", "5s"])
        .fails(1)
        .to_string();
    let why = match transport {
        Transport::Nats => {
            let prefix = format!("wrpc-ext: `{get}` via {}: ", shown(&target));
            assert!(with_wit.starts_with(&prefix), "{with_wit}");
            assert!(
                without.starts_with(&format!(
                    "wrpc-ext: {} did not describe itself (",
                    shown(&target)
                )) && without.ends_with("); pass --wit PATH with the interface's WIT"),
                "{without}"
            );
            return;
        }
        Transport::Unix => "no such socket",
        _ => "connection refused",
    };
    let expected = format!("wrpc-ext: nothing listens at {} ({why})", shown(&target));
    assert_eq!(with_wit, expected);
    assert_eq!(without, expected);
}

/// `wrpc-ext` pointed at servers that are not wRPC, both bound by real
/// processes: a redis-server and an extension's HTTP endpoint
/// (`/metrics`). `call` (with and without `--wit`) and `describe` fail at
/// once in one line saying so, with what the server answered.
#[test]
fn a_server_that_is_not_wrpc_is_named_as_such() {
    let redis = Redis::start().unwrap();
    let served = serve(Transport::Tcp, &example("echo").unwrap(), &[]);
    let cases = [
        (
            format!("tcp://127.0.0.1:{}", redis.port()),
            "it answered `-ERR unknown command",
            "(the Redis protocol, RESP)",
        ),
        (
            format!("tcp://{}", served.ext.http_addr()),
            "it answered `HTTP/1.1 400 Bad Request` (an HTTP server)",
            "(an HTTP server)",
        ),
    ];
    let get = format!("{STORE}.get");
    for (target, answered, looks_like) in &cases {
        let prefix = format!("wrpc-ext: {target} is not a wRPC server: {answered}");
        for run in [
            kv(target, &get, &["b", "k"]),
            wrpc_ext(&["call", target, &get, "b", "k"]),
            wrpc_ext(&["describe", target]),
        ] {
            let line = run.fails(1);
            assert!(
                line.starts_with(&prefix) && line.ends_with(looks_like),
                "{line}"
            );
        }
    }
}

/// A target that accepts and never answers: `--timeout` bounds the whole
/// command, which fails in one line.
#[test]
fn silent_target_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    let started = std::time::Instant::now();
    let run = kv(
        &target,
        &format!("{STORE}.get"),
        &["b", "k", "--timeout", "1s"],
    );
    let elapsed = started.elapsed();
    assert_eq!(
        run.fails(1),
        format!("wrpc-ext: `{STORE}.get` via {target}: its deadline passed")
    );
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "took {elapsed:?}"
    );
    // Without --wit, the description is what times out.
    let run = wrpc_ext(&[
        "call",
        &target,
        &format!("{STORE}.get"),
        "b",
        "k",
        "--timeout",
        "1s",
    ]);
    assert_eq!(
        run.fails(1),
        format!(
            "wrpc-ext: {target} did not describe itself (its deadline passed); \
             pass --wit PATH with the interface's WIT"
        )
    );
    drop(listener);
}

/// Two extensions on one NATS prefix: without `--wit`, each call reads the
/// WIT from the extension serving the called instance (the general
/// `describe` could be answered by either).
#[test]
fn without_wit_over_a_shared_nats_prefix_each_instance_describes_itself() {
    let nats = Nats::start().unwrap();
    let listen = [nats.url()];
    let _echo = harness::Extension::start_at(&example("echo").unwrap(), &[], &listen).unwrap();
    let _inventory =
        harness::Extension::start_at(&harness::bin("inventory").unwrap(), &[], &listen).unwrap();
    let target = nats.url();
    for _ in 0..3 {
        wrpc_ext(&[
            "call",
            &target,
            "example:echo/echo@0.1.0.echo",
            "hi",
            "--json",
        ])
        .prints("\"echo to anonymous: hi\"\n");
        wrpc_ext(&[
            "call",
            &target,
            "example:inventory/stock@0.1.0.list",
            "--json",
        ])
        .prints("[]\n");
    }
}

/// Arguments as WIT values (`"…"` strings, `some(…)`, a list of tuples)
/// next to JSON and bare words, over TCP: the inventory example and
/// keyvalue-redis. A WIT value that does not fit is a usage error naming
/// the parameter and the place in its value.
#[test]
fn wit_style_arguments() {
    let served = serve(Transport::Tcp, &harness::bin("inventory").unwrap(), &[]);
    let target = served.target.as_str();
    let stock = |func: &str, args: &[&str]| {
        let func = format!("{STOCK}.{func}");
        let mut all = vec!["call", target, &func];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--wit", INVENTORY_WIT, "--json"]);
        wrpc_ext(&all)
    };
    stock("restock", &["apple", "5"]).prints("{\"ok\":5}\n");
    stock("reserve", &[r#""apple""#, "9"]).prints(
        "{\"err\":{\"insufficient\":{\"item\":\"apple\",\"requested\":9,\"available\":5}}}\n",
    );
    // `\u{…}` is WIT's escape, not JSON's.
    stock("reserve", &[r#""\u{61}pple""#, "2"]).prints("{\"ok\":1}\n");
    stock("get", &["apple"]).prints("{\"ok\":{\"name\":\"apple\",\"on-hand\":5,\"reserved\":2}}\n");
    assert_eq!(
        stock("reserve", &["apple", "some(2)"]).fails(2),
        "wrpc-ext: parameter 2 (quantity): expected u32, got some(2)"
    );
    assert_eq!(
        stock("release", &["1 )"]).fails(2),
        "wrpc-ext: parameter 1 (reservation): at column 3: unexpected `)` after the value"
    );

    let stack = Stack::start(Transport::Tcp);
    let target = stack.served.target.as_str();
    kv(
        target,
        &format!("{BATCH}.set-many"),
        &["w", r#"[("a", "x"), ("b", [121])]"#],
    )
    .prints("{\"ok\":null}\n");
    kv(
        target,
        &format!("{BATCH}.get-many"),
        &["w", r#"["a", "b", "c",]"#],
    )
    .prints("{\"ok\":[[\"a\",\"x\"],[\"b\",\"y\"],null]}\n");
    let list_keys = format!("{STORE}.list-keys");
    for cursor in ["some(0)", "none", "null"] {
        let run = kv(target, &list_keys, &["w", cursor]);
        assert!(run.code == Some(0) && run.stderr.is_empty(), "{run:#?}");
        let mut printed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        printed["ok"]["keys"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|k| k.as_str().map(String::from));
        assert_eq!(
            printed,
            serde_json::json!({"ok": {"keys": ["a", "b"], "cursor": null}}),
            "{cursor}: {run:#?}"
        );
    }
    assert_eq!(
        kv(
            target,
            &format!("{BATCH}.set-many"),
            &["w", r#"[("a", "x"), ("b", 'y')]"#]
        )
        .fails(2),
        "wrpc-ext: parameter 2 (key-values): [1][1]: expected list<u8> \
         (a string in double quotes or a list of bytes), got 'y'"
    );
    assert_eq!(
        kv(target, &list_keys, &["w", "some(-1)"]).fails(2),
        "wrpc-ext: parameter 2 (cursor): some: expected u64, got -1"
    );
}

/// `new --world` naming a world the WIT does not define: exit 2, one line
/// listing the worlds it does define; nothing is created.
#[test]
fn new_with_an_unknown_world_lists_the_worlds() {
    let dir = std::env::temp_dir().join(format!("new-unknown-world-{}", std::process::id()));
    let sdk = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");
    let run = wrpc_ext(&[
        "new",
        "stock",
        "--wit",
        INVENTORY_WIT,
        "--world",
        "nope",
        "--sdk-path",
        sdk,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let line = run.fails(2);
    assert_eq!(
        line,
        "wrpc-ext: no world `nope`; the worlds of example:inventory@0.1.0 are: extension, client"
    );
    assert!(!dir.exists());
}

/// A standalone scaffold has tokio, with its `time` feature, among its
/// `[dependencies]` (the tutorial bounds backend calls with
/// `tokio::time::timeout`), and no `[dev-dependencies]` of its own.
/// (`scripts/check-scaffold.sh` builds, tests and lints such a crate.)
#[test]
fn new_puts_tokio_in_the_dependencies() {
    let dir = std::env::temp_dir().join(format!("new-tokio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sdk = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");
    let run = wrpc_ext(&[
        "new",
        "stock",
        "--wit",
        INVENTORY_WIT,
        "--world",
        "extension",
        "--sdk-path",
        sdk,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let deps = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or_default();
    assert!(
        deps.lines()
            .any(|l| l.starts_with("tokio = ") && l.contains("\"time\"")),
        "{manifest}"
    );
    assert!(!manifest.contains("[dev-dependencies]"), "{manifest}");
}
