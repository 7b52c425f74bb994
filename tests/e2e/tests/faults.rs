//! Faults under load (docs/RELIABILITY.md): a guest calls in a steady loop
//! (`SCENARIO=steady`) through the host while one real process behind it
//! is faulted: Redis, nats-server or moto restarted, an extension killed
//! with SIGKILL and started again, or frozen for 10 s. Every call has a
//! 2 s deadline; the pass conditions are checked on the guest's own
//! timestamps ([`e2e::steady`]). Also: a rolling restart of two replicas
//! behind one queue group (no call may fail), and 10,000 JetStream
//! messages across three SIGKILLs of messaging-nats.
//!
//! The faults run one at a time ([`serial`]): each is timed, and two at
//! once on a small machine would slow each other's recovery.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::messaging::{ids, Stack, Via, WAIT};
use e2e::steady::{assert_fault_passes, row, Report, Window, SLACK_MS};
use e2e::{TempDir, BLOB_GUEST, KV_GUEST};
use harness::fault::{refuses, unix_ns, Frozen};
use harness::workload::{Component, Workload};
use harness::{Extension, HostProcess, Nats, Redis, S3};

/// Each call's deadline (`--wrpc-timeout`, `--wrpc-idle-timeout` and the
/// route's `timeout:`): a frozen extension costs a call 2 s, not 10.
const DEADLINE: &str = "2s";
const DEADLINE_MS: u64 = 2_000;
/// How long a restarted process stays down.
const DOWN: Duration = Duration::from_secs(1);
/// How long the load runs before a fault.
const BEFORE: Duration = Duration::from_secs(1);
/// How long it runs after a fault's window (more than the 1 s to recover).
const AFTER: Duration = Duration::from_secs(2);
/// How long a frozen extension stays frozen (the 10 s).
const FROZEN: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the suite's one fault slot.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A host running the steady guest, calling until told to stop.
struct Load {
    host: HostProcess,
    ctl: TempDir,
}

impl Load {
    /// The kv guest, `get` after `get` from keyvalue-redis at `target`.
    fn kv(target: &str) -> Self {
        let guest = Component::new("steady", KV_GUEST).config("BUCKET", "faults");
        Self::start(guest, &["wasi:keyvalue"], target)
    }

    /// The blob guest, `container-exists` after `container-exists` from
    /// blobstore-s3 at `target`.
    fn blob(target: &str) -> Self {
        let guest = Component::new("steady", BLOB_GUEST).config("CONTAINER", "faults");
        Self::start(guest, &["wasi:blobstore", "blobstore-s3:admin"], target)
    }

    /// Starts the host and waits until the loop runs, then [`BEFORE`].
    fn start(guest: Component, interfaces: &[&str], target: &str) -> Self {
        let ctl = TempDir::new("ctl").unwrap();
        let guest = guest
            .config("SCENARIO", "steady")
            .config("DEADLINE_MS", DEADLINE_MS)
            .config("SLACK_MS", SLACK_MS)
            .dir("/ctl", &ctl);
        let deadlines = format!("timeout: {DEADLINE}\nidle_timeout: {DEADLINE}");
        let workload = interfaces.iter().fold(
            Workload::new("load").namespace("tests").component(guest),
            |w, interface| w.route(interface, target, &deadlines),
        );
        let args = ["--wrpc-timeout", DEADLINE, "--wrpc-idle-timeout", DEADLINE];
        let host = workload.spawn(&args, &[]).unwrap();
        host.await_stdout("steady: started", Duration::from_secs(60))
            .unwrap();
        sleep(BEFORE);
        Self { host, ctl }
    }

    /// Lets the loop run [`AFTER`] more, stops it, and reads its report;
    /// the same host ran throughout (it exits 0 only now).
    fn finish(self) -> Report {
        sleep(AFTER);
        std::fs::write(self.ctl.join("stop"), b"").unwrap();
        let run = self.host.wait(Duration::from_secs(30)).unwrap();
        assert_eq!(run.code, Some(0), "{run:#?}");
        Report::parse(&run.stdout).unwrap()
    }
}

/// keyvalue-redis on `listen`, using `redis` with a 1 s Redis deadline.
fn keyvalue(redis: &Redis, listen: &str) -> Extension {
    let args = ["--redis-url".into(), redis.url()];
    let args = [&args[..], &["--redis-timeout".into(), "1s".into()]].concat();
    Extension::start("keyvalue-redis", &args, &[listen.to_string()]).unwrap()
}

/// Asserts that `ext`, which the fault spared, still runs as the same process.
#[track_caller]
fn assert_spared(ext: &mut Extension, pid: u32) {
    assert!(ext.is_running(), "the extension was not restarted");
    assert_eq!(ext.pid(), pid, "the extension was not restarted");
}

/// Stops `server` with `stop` (then nothing may listen on `port`), keeps
/// it down [`DOWN`], starts it again with `start`, and returns the fault's
/// window: from just before the stop to when `start` returned it ready.
fn outage<S>(
    server: &mut S,
    port: u16,
    stop: impl FnOnce(&mut S),
    start: impl FnOnce(&mut S) -> anyhow::Result<()>,
) -> Window {
    let start_ns = unix_ns();
    stop(server);
    assert!(
        refuses(port),
        "nothing listens on port {port} while it is down"
    );
    sleep(DOWN);
    start(server).unwrap();
    Window {
        start_ns,
        end_ns: unix_ns(),
    }
}

/// Redis restarted under keyvalue-redis (over TCP): the calls fail while
/// it is down and succeed again once it is back, the extension untouched.
#[test]
fn redis_restarted_under_load() {
    let _serial = serial();
    let mut redis = Redis::start().unwrap();
    let mut ext = keyvalue(&redis, "tcp://127.0.0.1:0");
    let pid = ext.pid();
    let load = Load::kv(ext.address("tcp").unwrap());
    let port = redis.port();
    let window = outage(&mut redis, port, Redis::stop, Redis::restart);
    assert_fault_passes("Redis restarted", &load.finish(), &window);
    assert_spared(&mut ext, pid);
}

/// nats-server restarted while the host and keyvalue-redis talk wRPC over
/// it: both reconnect on their own, and a call in flight when the
/// connection goes fails at once instead of waiting for its deadline.
#[test]
fn nats_server_restarted_under_load() {
    let _serial = serial();
    let mut nats = Nats::start().unwrap();
    let redis = Redis::start().unwrap();
    let mut ext = keyvalue(&redis, &nats.url());
    let pid = ext.pid();
    let load = Load::kv(&nats.url());
    let port = nats.port();
    let window = outage(&mut nats, port, Nats::stop, Nats::restart);
    assert_fault_passes("nats-server restarted", &load.finish(), &window);
    assert_spared(&mut ext, pid);
}

/// moto (S3) restarted under blobstore-s3 (over TCP): the calls fail while
/// it is down and succeed again once it is back.
#[test]
fn moto_restarted_under_load() {
    let _serial = serial();
    let mut s3 = S3::start().unwrap();
    let args = [s3.args(), vec!["--s3-timeout".into(), "1s".into()]].concat();
    let mut ext = Extension::start_with_env(
        &harness::bin("blobstore-s3").unwrap(),
        &args,
        &["tcp://127.0.0.1:0".into()],
        &S3::env(),
    )
    .unwrap();
    let pid = ext.pid();
    let load = Load::blob(ext.address("tcp").unwrap());
    let port = s3.port();
    let window = outage(&mut s3, port, S3::stop, S3::restart);
    assert_fault_passes("moto (S3) restarted", &load.finish(), &window);
    assert_spared(&mut ext, pid);
}

/// keyvalue-redis killed with SIGKILL mid-load and started again on the
/// same address: the host reconnects to the new process by itself.
#[test]
fn extension_sigkilled_and_started_again_under_load() {
    let _serial = serial();
    let redis = Redis::start().unwrap();
    let mut ext = keyvalue(&redis, "tcp://127.0.0.1:0");
    let listen = ext.address("tcp").unwrap().to_string();
    let port: u16 = ext
        .tcp_addr()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let load = Load::kv(&listen);
    let kill = |ext: &mut Extension| {
        ext.kill();
        assert!(!ext.is_running(), "the extension was killed");
    };
    let window = outage(&mut ext, port, kill, |ext| {
        *ext = keyvalue(&redis, &listen);
        Ok(())
    });
    let report = load.finish();
    assert_fault_passes("extension SIGKILLed, started again", &report, &window);
}

/// keyvalue-redis frozen with SIGSTOP for 10 s: the calls meanwhile time
/// out at their 2 s deadline (none hangs), and succeed again after SIGCONT.
#[test]
fn extension_frozen_for_10s_under_load() {
    let _serial = serial();
    let redis = Redis::start().unwrap();
    let ext = keyvalue(&redis, "tcp://127.0.0.1:0");
    let load = Load::kv(ext.address("tcp").unwrap());
    let start_ns = unix_ns();
    let frozen = Frozen::freeze(ext.pid()).unwrap();
    sleep(FROZEN);
    assert_eq!(frozen.state().unwrap(), 'T', "still stopped at the end");
    frozen.thaw().unwrap();
    let window = Window {
        start_ns,
        end_ns: unix_ns(),
    };
    let report = load.finish();
    assert_fault_passes("extension frozen 10 s (SIGSTOP/SIGCONT)", &report, &window);
    let timed_out = report.failures.iter().any(|f| f.err.contains("no answer"));
    assert!(
        timed_out,
        "calls to the frozen extension timed out: {report:#?}"
    );
}

/// Two keyvalue-redis replicas serve one NATS queue group (the default:
/// the extension's name). Under load, one (which has served calls) is
/// stopped with SIGTERM (it drains) and started again, then the other: no
/// call fails, and both new replicas serve calls.
#[test]
fn rolling_restart_of_two_replicas_fails_no_call() {
    let _serial = serial();
    let nats = Nats::start().unwrap();
    let redis = Redis::start().unwrap();
    let first = [keyvalue(&redis, &nats.url()), keyvalue(&redis, &nats.url())];
    let load = Load::kv(&nats.url());
    let mut replicas = Vec::new();
    for old in first {
        assert!(served(&old) > 0.0, "the replica was serving the load");
        let status = old.terminate().unwrap();
        assert!(status.success(), "a replica drains and exits 0: {status}");
        replicas.push(keyvalue(&redis, &nats.url()));
        sleep(BEFORE);
    }
    let report = load.finish();
    println!("{}", row("rolling restart, 2 replicas", &report, None));
    assert_eq!((report.failed, report.hung), (0, 0), "{report:#?}");
    assert!(report.ok > 0, "{report:#?}");
    for replica in &replicas {
        assert!(served(replica) > 0.0, "each new replica served calls");
    }
}

/// How many calls `ext` has served (its `/metrics`).
fn served(ext: &Extension) -> f64 {
    let (_, metrics) = ext.http_get("/metrics").unwrap();
    harness::metric(&metrics, "wrpc_server_calls_total", &[])
}

/// 10,000 messages published to a JetStream stream flow through
/// messaging-nats to the handler component; messaging-nats is killed with
/// SIGKILL three times while they flow (after a quarter, half and three
/// quarters were handled; each kill mid-stream) and started again at once.
/// Every message is handled at least once, and the durable consumer ends
/// with 0 pending and 0 unacknowledged.
#[test]
fn jetstream_10000_messages_across_three_sigkills_of_messaging_nats() {
    let _serial = serial();
    let stack = Stack::start();
    stack.create_stream("FLOW", &["flow.>"]);
    let (_host, target) = stack.handler_host(Via::Tcp, &[], 32);
    let sub = format!(
        "subject=flow.>,handler={target},jetstream=FLOW,durable=flow,max-in-flight=32,timeout=2s,ack-wait=3s"
    );
    let mut ext = stack.extension(std::slice::from_ref(&sub));
    let all = ids("f-", 10_000);
    stack.publish("flow.run", &all, true);
    let mut kills = Vec::new();
    for quarter in 1..=3 {
        let at = quarter * all.len() / 4;
        stack.await_seen(WAIT, "a quarter more handled", |s| s.len() >= at);
        ext.kill();
        assert!(!ext.is_running(), "messaging-nats was killed");
        let handled = stack.counts("seen:").len();
        assert!(
            handled < all.len(),
            "kill {quarter} came mid-stream ({handled} handled)"
        );
        kills.push(handled);
        ext = stack.extension(std::slice::from_ref(&sub));
    }
    let seen = stack.await_seen(WAIT, "every message handled", |s| s.len() == all.len());
    let missing: Vec<&String> = all.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let deadline = Instant::now() + WAIT;
    while stack.consumer_state("FLOW", "flow") != (0, 0) {
        let (pending, unacked) = stack.consumer_state("FLOW", "flow");
        assert!(
            Instant::now() < deadline,
            "still {pending} pending, {unacked} unacknowledged"
        );
        sleep(Duration::from_millis(100));
    }
    let handled: u64 = seen.values().sum();
    println!(
        "| JetStream, 3 SIGKILLs of messaging-nats | {} messages | handled at kills: {kills:?} | {} handlings ({} redelivered) | lost 0 | pending 0, unacknowledged 0 |",
        all.len(),
        handled,
        handled - all.len() as u64
    );
}
