//! Hostile peers against keyvalue-redis: lengths declared far beyond the
//! limits (a 4 GiB frame, a 4 GiB name, a list of 4 billion strings), garbage,
//! a caller sending one byte a second, and 10,000 idle connections.
//!
//! In each, the offending connection (or NATS call) is dropped with one log
//! line naming what it broke, the extension's peak resident memory (`VmHWM`
//! of the process) stays within a fixed margin of what it was before the
//! attack, and a normal call made meanwhile succeeds.

use std::time::{Duration, Instant};

use e2e::{assert_success, pooled_call, raw_nats, RawConn, TempDir, KV_GUEST};
use harness::workload::{Component, Workload};
use harness::{Extension, Nats, Redis};

const RUN_LIMIT: Duration = Duration::from_secs(120);
const GET: (&str, &str) = ("wrpc:keyvalue/store@0.2.0-draft", "get");
const GET_MANY: (&str, &str) = ("wrpc:keyvalue/batch@0.2.0-draft", "get-many");
/// How much the peak resident set may grow during an attack that is refused
/// before anything it declares is allocated. (Before the limits, two 4 GiB
/// frames took keyvalue-redis from 13 MiB to 2,091 MiB.)
const MARGIN_KIB: u64 = 32 * 1024;

/// Workload `name`: the kv guest running `scenario` on `bucket`, routed by
/// the host's default target.
fn kv_workload(name: &str, scenario: &str, bucket: &str) -> Workload {
    Workload::new(name)
        .component(
            Component::new("api", KV_GUEST)
                .config("SCENARIO", scenario)
                .config("BUCKET", bucket),
        )
        .wrpc("wasi:keyvalue")
}

/// keyvalue-redis on TCP, a Unix socket, a WebSocket and NATS at once.
struct Stack {
    _redis: Redis,
    nats: Nats,
    ext: Extension,
    _dir: TempDir,
}

impl Stack {
    fn start(extra: &[&str]) -> Self {
        let redis = Redis::start().unwrap();
        let nats = Nats::start().unwrap();
        let dir = TempDir::new("hostile").unwrap();
        let mut args = vec!["--redis-url".to_string(), redis.url()];
        args.extend(extra.iter().map(|a| a.to_string()));
        let listen = [
            "tcp://127.0.0.1:0".to_string(),
            format!("unix://{}/kv.sock", dir.path().display()),
            "ws://127.0.0.1:0/wrpc".to_string(),
            nats.url(),
        ];
        let ext = Extension::start("keyvalue-redis", &args, &listen).unwrap();
        Self {
            _redis: redis,
            nats,
            ext,
            _dir: dir,
        }
    }

    fn target(&self, scheme: &str) -> String {
        self.ext.address(scheme).unwrap().to_string()
    }

    /// A whole keyvalue scenario over TCP: succeeds, or the test fails.
    fn normal_call(&self) {
        let run = kv_workload("bystander", "counter", "calm")
            .run(&["--wrpc-target", &self.target("tcp")], RUN_LIMIT)
            .unwrap();
        assert_success(&run, "visit number");
    }

    /// The peak resident set, after one normal call warmed everything up.
    fn warm_peak(&self) -> u64 {
        self.normal_call();
        self.ext.peak_rss_kib().unwrap()
    }

    #[track_caller]
    fn assert_peak_within_margin(&self, before: u64) {
        let after = self.ext.peak_rss_kib().unwrap();
        assert!(
            after <= before + MARGIN_KIB,
            "peak RSS grew from {before} KiB to {after} KiB"
        );
    }

    /// Waits (up to 5 s) for a log line containing every one of `words`.
    #[track_caller]
    fn assert_logged(&self, words: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.ext.log();
            if log.iter().any(|l| words.iter().all(|w| l.contains(w))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {words:?}:\n{}",
                log.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn name(s: &str) -> Vec<u8> {
    let mut out = vec![u8::try_from(s.len()).unwrap()];
    out.extend_from_slice(s.as_bytes());
    out
}

/// The plain (upstream) call header: version 0, instance, function.
fn plain_header((instance, func): (&str, &str)) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(name(instance));
    out.extend(name(func));
    out
}

const U32_MAX_LEB: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

/// Two connections on each stream transport, each declaring a 4 GiB frame
/// after a valid header (one plain, one pooled): both dropped.
#[test]
fn frames_declaring_4_gib() {
    let stack = Stack::start(&[]);
    let before = stack.warm_peak();
    let mut conns = Vec::new();
    for scheme in ["tcp", "unix", "ws"] {
        let mut plain = RawConn::connect(&stack.target(scheme)).unwrap();
        let mut bytes = plain_header(GET);
        bytes.push(0); // the root path
        bytes.extend(U32_MAX_LEB);
        bytes.extend_from_slice(b"\x01b");
        plain.send(&bytes).unwrap();
        conns.push(plain);
        let mut pooled = RawConn::connect(&stack.target(scheme)).unwrap();
        pooled.handshake().unwrap();
        let mut bytes = pooled_call(GET.0, GET.1);
        bytes.extend([2, 0]); // DATA, root path
        bytes.extend(U32_MAX_LEB);
        pooled.send(&bytes).unwrap();
        conns.push(pooled);
    }
    stack.normal_call();
    for conn in &mut conns {
        assert!(
            conn.closed_within(Duration::from_secs(5)),
            "a 4 GiB frame must lose its connection"
        );
    }
    stack.assert_logged(&["4294967295 bytes", "max-frame limit"]);
    stack.assert_peak_within_margin(before);
}

/// An instance name declaring 4 GiB on each stream transport: dropped.
#[test]
fn names_declaring_4_gib() {
    let stack = Stack::start(&[]);
    let before = stack.warm_peak();
    for scheme in ["tcp", "unix", "ws"] {
        let mut conn = RawConn::connect(&stack.target(scheme)).unwrap();
        let mut bytes = vec![0];
        bytes.extend(U32_MAX_LEB);
        bytes.extend_from_slice(b"wrpc:");
        conn.send(&bytes).unwrap();
        assert!(conn.closed_within(Duration::from_secs(5)), "{scheme}");
    }
    stack.normal_call();
    stack.assert_logged(&["instance name declares 4294967295 bytes", "max-name limit"]);
    stack.assert_peak_within_margin(before);
}

/// A `get-many` whose key list declares 4 billion strings in 6 bytes: over a
/// stream transport and over NATS the call is refused before the list is
/// allocated (upstream's decoder would reserve 96 GiB and abort).
#[test]
fn list_declaring_4_billion_elements() {
    let stack = Stack::start(&[]);
    let before = stack.warm_peak();
    let mut params = name("b");
    params.extend(U32_MAX_LEB);
    let mut conn = RawConn::connect(&stack.target("tcp")).unwrap();
    conn.handshake().unwrap();
    let mut bytes = pooled_call(GET_MANY.0, GET_MANY.1);
    bytes.extend([2, 0, u8::try_from(params.len()).unwrap()]);
    bytes.extend(&params);
    conn.send(&bytes).unwrap();
    assert!(conn.closed_within(Duration::from_secs(5)));
    let subject = format!("wrpc.0.0.1.{}.{}", GET_MANY.0, GET_MANY.1);
    let mut commands = format!(
        "SUB bomb.> 1\r\nPUB {subject} bomb.reply {}\r\n",
        params.len()
    )
    .into_bytes();
    commands.extend(&params);
    commands.extend_from_slice(b"\r\n");
    // The extension answers the handshake, then refuses the parameters.
    let _nats = raw_nats(&stack.nats.url(), &commands, "MSG bomb.reply");
    stack.normal_call();
    stack.assert_logged(&["4294967295 elements", "max-list limit"]);
    assert!(
        stack
            .ext
            .log()
            .iter()
            .filter(|l| l.contains("max-list limit"))
            .count()
            >= 2,
        "both the TCP and the NATS call are refused:\n{}",
        stack.ext.log().join("\n")
    );
    stack.assert_peak_within_margin(before);
}

/// Bytes that are not wRPC at all, on each stream transport: dropped.
#[test]
fn garbage() {
    let stack = Stack::start(&[]);
    let before = stack.warm_peak();
    // A fixed pseudo-random sequence, starting like an HTTP request.
    let mut x: u32 = 0x2545_f491;
    let mut bytes = b"GET / HTTP/1.1\r\n".to_vec();
    bytes.extend((0..65_536).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x.to_le_bytes()[0]
    }));
    for scheme in ["tcp", "unix", "ws"] {
        let mut conn = RawConn::connect(&stack.target(scheme)).unwrap();
        let _ = conn.send(&bytes);
        assert!(conn.closed_within(Duration::from_secs(5)), "{scheme}");
    }
    stack.normal_call();
    stack.assert_logged(&["not wRPC"]);
    stack.assert_peak_within_margin(before);
}

/// A caller sending its call header one byte a second loses its connection
/// at the header deadline; a normal call made meanwhile is served.
#[test]
fn one_byte_a_second() {
    let stack = Stack::start(&["--header-timeout", "3s"]);
    let before = stack.warm_peak();
    let header = plain_header(GET);
    let mut conn = RawConn::connect(&stack.target("tcp")).unwrap();
    let started = Instant::now();
    let bystander = std::thread::scope(|s| {
        let mut closed_after = None;
        let mut normal = None;
        for (i, byte) in header.iter().cycle().take(20).enumerate() {
            if i == 1 {
                normal = Some(s.spawn(|| stack.normal_call()));
            }
            if conn.send(&[*byte]).is_err() || conn.closed_within(Duration::from_secs(1)) {
                closed_after = Some(started.elapsed());
                break;
            }
        }
        normal.unwrap().join().unwrap();
        closed_after
    });
    let closed_after = bystander.expect("the slow caller was never dropped");
    assert!(
        closed_after >= Duration::from_secs(2),
        "dropped after {closed_after:?}, before its deadline"
    );
    stack.assert_logged(&["no call header within 3s"]);
    stack.assert_peak_within_margin(before);
}

/// 10,000 connections that never send a byte: all accepted (the extension
/// holds their sockets), memory stays bounded, and a normal call is served.
#[test]
fn ten_thousand_idle_connections() {
    const IDLE: usize = 10_000;
    // The test process needs a socket per connection too.
    let mut limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current = limit.maximum;
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
    assert!(
        limit.current.is_none_or(|n| n > IDLE as u64 + 1000),
        "the open-files limit is too low for this test: {limit:?}"
    );
    let stack = Stack::start(&[]);
    let before = stack.warm_peak();
    let before_fds = open_fds(stack.ext.pid());
    let addr = stack.ext.tcp_addr().unwrap().to_string();
    let conns: Vec<std::net::TcpStream> = (0..IDLE)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // Every connection was accepted, not just queued by the kernel.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(stack.ext.pid()) < before_fds + IDLE {
        assert!(
            Instant::now() < deadline,
            "only {} of {IDLE} connections accepted",
            open_fds(stack.ext.pid()) - before_fds
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stack.normal_call();
    let peak = stack.ext.peak_rss_kib().unwrap();
    eprintln!("peak RSS: {before} KiB before, {peak} KiB with {IDLE} idle connections");
    assert!(
        peak <= before + 64 * 1024,
        "{IDLE} idle connections took the peak from {before} KiB to {peak} KiB"
    );
    drop(conns);
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// A guest `set`s a 3 MiB value through the host to keyvalue-redis started
/// with `--max-frame 1048576`: the guest's error names the extension's
/// limit and its value (not "Broken pipe"), and the extension still serves.
fn value_over_max_frame_names_the_limit(scheme: &str) {
    let stack = Stack::start(&["--max-frame", "1048576"]);
    let target = if scheme == "nats" {
        stack.nats.url()
    } else {
        stack.target(scheme)
    };
    let run = kv_workload("big", "big", "limits")
        .run(&["--wrpc-target", &target], RUN_LIMIT)
        .unwrap();
    assert!(
        run.code != Some(0)
            && run.stdout.contains("FAIL: set big")
            && run.stdout.contains("max-frame limit of 1048576"),
        "the guest must read which limit it broke:\n{run:#?}"
    );
    stack.normal_call();
}

#[test]
fn value_over_max_frame_names_the_limit_tcp() {
    value_over_max_frame_names_the_limit("tcp");
}

#[test]
fn value_over_max_frame_names_the_limit_unix() {
    value_over_max_frame_names_the_limit("unix");
}

#[test]
fn value_over_max_frame_names_the_limit_ws() {
    value_over_max_frame_names_the_limit("ws");
}

#[test]
fn value_over_max_frame_names_the_limit_nats() {
    value_over_max_frame_names_the_limit("nats");
}
