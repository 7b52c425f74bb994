//! The blob guest against blobstore-s3, through the host and its wRPC
//! plugin, with a real S3-compatible server (moto) and nats-server. Each
//! scenario is written once and run per transport (`<transport>::<scenario>`);
//! what the extension left in S3 is checked with a client of the test's own.

use std::time::{Duration, Instant};

use e2e::s3::Direct;
use e2e::{assert_success, per_transport, serve_with_env, Served, Transport, BLOB_GUEST};
use harness::workload::{Component, Workload};
use harness::{HostRun, S3};

/// A hang guard for each host run, far above any deadline used here.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The extension's idle timeout for a streamed body, short so that the
/// stall tests are quick.
const EXT_IDLE: &str = "2s";

/// S3, and blobstore-s3 serving on one transport.
struct Stack {
    s3: S3,
    served: Served,
}

impl Stack {
    fn start(transport: Transport) -> Self {
        Self::start_with_idle(transport, EXT_IDLE)
    }

    /// With the extension's idle timeout `idle`.
    fn start_with_idle(transport: Transport, idle: &str) -> Self {
        let s3 = S3::start().unwrap();
        let mut args = s3.args();
        args.extend(["--stream-idle-timeout".into(), idle.into()]);
        args.extend(["--s3-timeout".into(), "2s".into()]);
        let served = serve_with_env(
            transport,
            &harness::bin("blobstore-s3").unwrap(),
            &args,
            &S3::env(),
        );
        Self { s3, served }
    }

    /// A workload of one guest per `(name, config)`, routed to the extension
    /// with the given deadlines.
    fn manifest(
        &self,
        components: &[(&str, &[(&str, &str)])],
        timeout: &str,
        idle: &str,
    ) -> Workload {
        let mut w = Workload::new("blobs").namespace("tests");
        for (name, config) in components {
            let mut c = Component::new(name, BLOB_GUEST);
            for (k, v) in *config {
                c = c.config(k, v);
            }
            w = w.component(c);
        }
        let target = &self.served.target;
        for interface in ["wasi:blobstore", "blobstore-s3:admin"] {
            w = w.route(
                interface,
                target,
                &format!("timeout: {timeout}\nidle_timeout: {idle}"),
            );
        }
        w
    }

    /// Runs one guest with `config`.
    fn run(&self, config: &[(&str, &str)]) -> HostRun {
        self.run_with(config, "10s", "10s")
    }

    fn run_with(&self, config: &[(&str, &str)], timeout: &str, idle: &str) -> HostRun {
        self.manifest(&[("blob", config)], timeout, idle)
            .run(&[], RUN_LIMIT)
            .unwrap()
    }

    fn direct(&self) -> Direct {
        Direct::new(&self.s3)
    }

    /// Waits (at most 30 s) for the extension to log `line`, e.g. that it
    /// aborted an upload: the event a check after it relies on.
    #[track_caller]
    fn await_log(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.served.ext.log().iter().any(|l| l.contains(line)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the extension never logged `{line}`; its log:\n{}",
            self.served.ext.log().join("\n")
        );
    }
}

per_transport!(
    full_lifecycle,
    guest_trap_mid_write_leaves_nothing,
    host_killed_mid_write_leaves_nothing,
    stalled_write_hits_the_idle_deadline,
    moving_transfer_outlives_the_call_timeout,
    s3_outage_then_recovery,
);

/// Containers, 0 B / 1 KiB / 64 MiB objects written and read back whole and
/// by ranges (SHA-256), metadata, copy, move, listing, deletes, clear.
fn full_lifecycle(transport: Transport) {
    let stack = Stack::start(transport);
    let run = stack.run(&[("SCENARIO", "full"), ("CONTAINER", "lifecycle")]);
    assert_success(&run, "full: ok");
}

/// Creates `container` and writes nothing else; returns the direct client.
fn with_container(stack: &Stack, container: &str) -> Direct {
    let direct = stack.direct();
    direct.create_bucket(container);
    direct
}

/// S3 holds no object of `bucket`, whole or partial, and no open upload.
fn assert_nothing_stored(direct: &Direct, bucket: &str) {
    assert_eq!(
        direct.keys(bucket),
        Vec::<String>::new(),
        "no object, whole or partial"
    );
    assert_eq!(
        direct.uploads(bucket),
        Vec::<(String, String)>::new(),
        "no upload left open"
    );
}

/// The guest traps after writing 20 MiB of a 64 MiB object: the host drops
/// the unfinished value, the extension aborts the multipart upload, and S3
/// holds neither the object nor any part of it.
fn guest_trap_mid_write_leaves_nothing(transport: Transport) {
    let stack = Stack::start(transport);
    let direct = with_container(&stack, "traps");
    let run = stack.run(&[
        ("SCENARIO", "write"),
        ("CONTAINER", "traps"),
        ("NAME", "half"),
        ("SIZE", "67108864"),
        ("ABORT", "trap"),
        ("ABORT_AFTER", "20971520"),
    ]);
    assert_ne!(run.code, Some(0), "the guest trapped: {run:#?}");
    assert!(run.stderr.contains("trapping mid-write"), "{run:#?}");
    stack.await_log("aborted multipart upload");
    assert_nothing_stored(&direct, "traps");
}

/// The host is killed (SIGKILL) with 20 MiB of a 64 MiB object written: the
/// extension sees the caller go (connection lost, or over NATS the body's
/// idle timeout) and aborts; S3 holds nothing of it.
fn host_killed_mid_write_leaves_nothing(transport: Transport) {
    let stack = Stack::start(transport);
    let direct = with_container(&stack, "kills");
    let manifest = stack.manifest(
        &[(
            "blob",
            &[
                ("SCENARIO", "write"),
                ("CONTAINER", "kills"),
                ("NAME", "half"),
                ("SIZE", "67108864"),
                ("ABORT", "hang"),
                ("ABORT_AFTER", "20971520"),
            ],
        )],
        "10s",
        "10s",
    );
    let mut host = manifest.spawn(&[], &[]).unwrap();
    host.await_stdout("written ", Duration::from_secs(120))
        .unwrap();
    host.kill();
    stack.await_log("aborted multipart upload");
    assert_nothing_stored(&direct, "kills");
}

/// A body that stops moving (the guest sleeps 6 s between 1 MiB chunks,
/// three times the extension's idle timeout) fails with the idle deadline;
/// nothing is stored.
fn stalled_write_hits_the_idle_deadline(transport: Transport) {
    let stack = Stack::start(transport);
    let direct = with_container(&stack, "stalls");
    let run = stack.run(&[
        ("SCENARIO", "write"),
        ("CONTAINER", "stalls"),
        ("NAME", "slow"),
        ("SIZE", "16777216"),
        ("CHUNK", "8388608"),
        ("PAUSE_MS", "6000"),
        ("EXPECT_ERROR", "1"),
    ]);
    assert_success(&run, "error: write:");
    assert!(
        run.stdout.contains("idle") || run.stdout.contains("no progress"),
        "the error names the idle deadline: {run:#?}"
    );
    assert_nothing_stored(&direct, "stalls");
}

/// A transfer that keeps moving takes longer than the call timeout (1 s)
/// both ways and is not cut off: 8 MiB written in 512 KiB chunks 300 ms
/// apart, then read back at most 64 KiB at a time, 20 ms apart. (The idle timeouts
/// are 10 s here: a slow reader releases its writer in bursts, as TCP
/// reopens its window.)
fn moving_transfer_outlives_the_call_timeout(transport: Transport) {
    let stack = Stack::start_with_idle(transport, "10s");
    with_container(&stack, "moving");
    let started = Instant::now();
    let run = stack.run_with(
        &[
            ("SCENARIO", "write"),
            ("CONTAINER", "moving"),
            ("NAME", "steady"),
            ("SIZE", "8388608"),
            ("CHUNK", "524288"),
            ("PAUSE_MS", "300"),
        ],
        "1s",
        "10s",
    );
    assert_success(&run, "write: ok ");
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the write took twice the call timeout"
    );
    let hash = run
        .stdout
        .split("write: ok ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let started = Instant::now();
    let run = stack.run_with(
        &[
            ("SCENARIO", "read"),
            ("CONTAINER", "moving"),
            ("NAME", "steady"),
            ("CHUNK", "65536"),
            ("PAUSE_MS", "20"),
        ],
        "1s",
        "10s",
    );
    assert_success(&run, &format!("read: ok 8388608 {hash}"));
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the read took twice the call timeout"
    );
}

/// With S3 down, calls return error values (the extension's S3 timeout is
/// 2 s, the call's deadline 10 s); once S3 is back on the same port, the
/// very next call succeeds, with nothing restarted.
fn s3_outage_then_recovery(transport: Transport) {
    let mut stack = Stack::start(transport);
    with_container(&stack, "outage");
    assert_success(
        &stack.run(&[("SCENARIO", "exists"), ("CONTAINER", "outage")]),
        "exists: true",
    );
    stack.s3.stop();
    let run = stack.run(&[
        ("SCENARIO", "exists"),
        ("CONTAINER", "outage"),
        ("EXPECT_ERROR", "1"),
    ]);
    assert_success(&run, "error: container-exists:");
    assert!(run.stdout.contains("S3 is unreachable"), "{run:#?}");
    stack.s3.restart().unwrap();
    // moto keeps nothing across a restart: the bucket is gone, and saying so
    // is the success.
    assert_success(
        &stack.run(&[("SCENARIO", "exists"), ("CONTAINER", "outage")]),
        "exists: false",
    );
}

/// 2,500 objects listed through the cursor over every transport: each name
/// exactly once (`BATCH` 97 never divides a page), then skipped and counted.
#[test]
fn listing_2500_objects_over_every_transport() {
    for transport in [
        Transport::Nats,
        Transport::Tcp,
        Transport::Unix,
        Transport::Ws,
        Transport::Wss,
    ] {
        let stack = Stack::start(transport);
        let direct = with_container(&stack, "many");
        let names: Vec<String> = (0..2500).map(|i| format!("obj-{i:05}")).collect();
        direct.put_objects("many", &names);
        let run = stack.run(&[
            ("SCENARIO", "list"),
            ("CONTAINER", "many"),
            ("EXPECT", "2500"),
            ("BATCH", "97"),
            ("SKIP", "1000"),
        ]);
        assert_success(&run, "list: ok 2500");
    }
}

/// Over NATS, one guest reading a 32 MiB object slowly does not hold up
/// another guest's calls on the same connection: the second finishes its
/// 100 calls while the first is still reading, and both succeed.
#[test]
fn nats_slow_transfer_does_not_stall_other_calls() {
    let stack = Stack::start(Transport::Nats);
    with_container(&stack, "shared");
    let run = stack.run(&[
        ("SCENARIO", "write"),
        ("CONTAINER", "shared"),
        ("NAME", "big"),
        ("SIZE", "33554432"),
    ]);
    assert_success(&run, "write: ok ");
    let hash = run
        .stdout
        .split("write: ok ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let manifest = stack.manifest(
        &[
            (
                "slow",
                &[
                    ("SCENARIO", "read"),
                    ("CONTAINER", "shared"),
                    ("NAME", "big"),
                    ("CHUNK", "262144"),
                    ("PAUSE_MS", "25"),
                ],
            ),
            (
                "quick",
                &[
                    ("SCENARIO", "ops"),
                    ("CONTAINER", "shared"),
                    ("NAME", "big"),
                    ("COUNT", "100"),
                ],
            ),
        ],
        "10s",
        "10s",
    );
    let run = manifest.run(&[], RUN_LIMIT).unwrap();
    assert_success(&run, &format!("read: ok 33554432 {hash}"));
    assert_success(&run, "ops: ok");
    let field = |prefix: &str, key: &str| -> u128 {
        let line = run.stdout.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap()
            .parse()
            .unwrap()
    };
    let slow_end = field("read: ok", "end_ns=");
    let quick_end = field("ops: ok", "end_ns=");
    assert!(
        quick_end < slow_end,
        "the quick guest finished after the slow transfer: {run:#?}"
    );
}
