//! wasmcloud:messaging end to end: components publish and request through
//! messaging-nats, and its subscriptions reach another component's handler,
//! which the host serves as an export over NATS or TCP. Real nats-server
//! (with JetStream), redis-server (the handler counts deliveries through
//! keyvalue-redis), guest components built from tests/components.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use e2e::messaging::{ids, Stack, Via, WAIT};
use e2e::{MSG_GUEST, MSG_HANDLER};
use harness::workload::{Component, Workload};
use harness::Nats;

/// `over_nats::<scenario>` and `over_tcp::<scenario>`: the handler path.
macro_rules! per_handler_path {
    ($($scenario:ident),* $(,)?) => {
        mod over_nats {
            $(#[test] fn $scenario() { super::$scenario(super::Via::Nats) })*
        }
        mod over_tcp {
            $(#[test] fn $scenario() { super::$scenario(super::Via::Tcp) })*
        }
    };
}

// --- a component publishes, another component's handler receives it -----

fn publish_reaches_another_components_handler(path: Via) {
    let stack = Stack::start();
    let (_host, target) = stack.handler_host(path, &[], 8);
    let _ext = stack.extension(&[format!("subject=demo.>,handler={target}")]);
    let run = stack.run_guest(&[
        ("SCENARIO", "publish"),
        ("SUBJECT", "demo.greetings"),
        ("COUNT", "20"),
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("published: 20"), "{}", run.stdout);
    let seen = stack.await_seen(WAIT, "20 published messages handled", |s| s.len() == 20);
    for id in ids("msg-", 20) {
        assert_eq!(seen.get(&id), Some(&1), "{id}: {seen:?}");
    }
}

fn request_reply_between_two_components(path: Via) {
    let stack = Stack::start();
    let (_host, target) = stack.handler_host(path, &[], 8);
    let _ext = stack.extension(&[format!("subject=demo.>,handler={target}")]);
    let run = stack.run_guest(&[
        ("SCENARIO", "request"),
        ("SUBJECT", "demo.ask"),
        ("BODY", "ping"),
        ("TIMEOUT_MS", "5000"),
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("reply: re:ping"), "{}", run.stdout);
    assert_eq!(stack.counts("seen:").get("ping"), Some(&1));
}

// --- 10,000 messages, a queue group, two host replicas -------------------

fn ten_thousand_messages_once_per_queue_group_across_two_hosts(path: Via) {
    let stack = Stack::start();
    let (_a, target_a) = stack.handler_host(path, &[("REPLICA", "a")], 32);
    let (_b, target_b) = stack.handler_host(path, &[("REPLICA", "b")], 32);
    // Over NATS both hosts serve one subject in one queue group; over TCP
    // each extension replica calls its own host.
    let sub =
        |target: &str| format!("subject=orders.*,queue=workers,max-in-flight=32,handler={target}");
    let _x = stack.extension(&[sub(&target_a)]);
    let _y = stack.extension(&[sub(&target_b)]);
    let all = ids("m-", 10_000);
    stack.publish("orders.new", &all, false);
    let seen = stack.await_seen(Duration::from_secs(240), "10,000 messages handled", |s| {
        s.values().sum::<u64>() >= 10_000
    });
    let missing: Vec<&String> = all.iter().filter(|id| !seen.contains_key(*id)).collect();
    let twice: Vec<(&String, &u64)> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        missing.is_empty(),
        "{} ids never handled, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        twice.is_empty(),
        "{} ids handled more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert_eq!(seen.len(), 10_000);
    let by = stack.counts("by:");
    assert_eq!(by.values().sum::<u64>(), 10_000, "{by:?}");
    assert!(
        by.get("a").is_some_and(|n| *n > 0) && by.get("b").is_some_and(|n| *n > 0),
        "both replicas handle messages: {by:?}"
    );
}

per_handler_path!(
    publish_reaches_another_components_handler,
    request_reply_between_two_components,
    ten_thousand_messages_once_per_queue_group_across_two_hosts,
);

// --- JetStream -------------------------------------------------------------

#[test]
fn jetstream_handles_every_message_across_an_extension_sigkill() {
    let stack = Stack::start();
    stack.create_stream("JOBS", &["jobs.>"]);
    let (_host, target) = stack.handler_host(Via::Tcp, &[("SLEEP_MS", "5")], 16);
    let sub = format!(
        "subject=jobs.>,handler={target},jetstream=JOBS,durable=jobs,max-in-flight=16,timeout=2s,ack-wait=3s"
    );
    let mut ext = stack.extension(std::slice::from_ref(&sub));
    let all = ids("j-", 2000);
    stack.publish("jobs.run", &all, true);
    stack.await_seen(WAIT, "some jobs handled before the kill", |s| {
        s.len() >= 200
    });
    ext.kill();
    assert!(!ext.is_running(), "the extension was killed");
    let at_kill = stack.counts("seen:").len();
    assert!(
        at_kill < all.len(),
        "the kill came mid-stream ({at_kill} of {} handled)",
        all.len()
    );
    let _restarted = stack.extension(&[sub]);
    let seen = stack.await_seen(WAIT, "every job handled after the restart", |s| {
        s.len() == all.len()
    });
    let missing: Vec<&String> = all.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    // Nothing left: every message was acknowledged.
    let deadline = Instant::now() + WAIT;
    loop {
        let (pending, unacked) = stack.consumer_state("JOBS", "jobs");
        if pending == 0 && unacked == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {pending} pending, {unacked} unacknowledged"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn jetstream_redelivers_failures_then_dead_letters_them() {
    let stack = Stack::start();
    stack.create_stream("TASKS", &["tasks.>"]);
    stack.create_stream("DEAD", &["dead.>"]);
    let (host, target) = stack.handler_host(Via::Nats, &[], 8);
    let _ext = stack.extension(&[format!(
        "subject=tasks.>,handler={target},jetstream=TASKS,durable=tasks,max-deliver=3,backoff=100ms,dead-letter=dead.tasks,timeout=5s"
    )]);
    stack.publish(
        "tasks.x",
        &["fail-1".into(), "trap-1".into(), "ok-1".into()],
        true,
    );
    // Each failing message ends in the dead-letter stream after 3 deliveries.
    let url = stack.nats.url();
    let dead = Stack::rt().block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        let js = jetstream::new(client);
        let stream = js.get_stream("DEAD").await.unwrap();
        let deadline = Instant::now() + WAIT;
        let mut dead = Vec::new();
        for seq in 1..=2u64 {
            loop {
                match stream.get_raw_message(seq).await {
                    Ok(msg) => {
                        dead.push(msg);
                        break;
                    }
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(err) => panic!("dead letter #{seq} never arrived: {err}"),
                }
            }
        }
        dead
    });
    let mut bodies: Vec<String> = dead
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["fail-1", "trap-1"]);
    for msg in &dead {
        let h = &msg.headers;
        assert_eq!(
            h.get("Messaging-Original-Subject").map(|v| v.as_str()),
            Some("tasks.x")
        );
        assert_eq!(h.get("Messaging-Deliveries").map(|v| v.as_str()), Some("3"));
        assert_eq!(h.get("Messaging-Stream").map(|v| v.as_str()), Some("TASKS"));
        let error = h
            .get("Messaging-Error")
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        if msg.payload.starts_with(b"fail") {
            assert!(error.contains("refusing `fail-1`"), "{error}");
        } else {
            assert!(error.contains("trapped"), "{error}");
        }
    }
    // Exactly max-deliver attempts each, and the good one once; nothing left.
    let seen = stack.counts("seen:");
    assert_eq!(seen.get("fail-1"), Some(&3), "{seen:?}");
    assert_eq!(seen.get("trap-1"), Some(&3), "{seen:?}");
    assert_eq!(seen.get("ok-1"), Some(&1), "{seen:?}");
    assert_eq!(stack.consumer_state("TASKS", "tasks"), (0, 0));
    // The host said which component trapped where, in one line.
    let run = host.terminate(Duration::from_secs(30)).unwrap();
    assert_eq!(
        run.code,
        Some(0),
        "the host drains and exits 0 on SIGTERM: {}",
        run.stderr
    );
    assert!(
        run.stderr.lines().any(|l| l.contains("component `handler` trapped in `wasmcloud:messaging/handler@0.2.0.handle-message`: wasm trap: wasm `unreachable` instruction executed")),
        "{}",
        run.stderr
    );
}

#[test]
fn handler_concurrency_stays_within_the_exports_limit() {
    let stack = Stack::start();
    stack.create_stream("SLOW", &["slow.>"]);
    // The subscription would run 8 at once; the host's export allows 3.
    let (_host, target) = stack.handler_host(Via::Tcp, &[("SLEEP_MS", "150")], 3);
    let _ext = stack.extension(&[format!(
        "subject=slow.>,handler={target},jetstream=SLOW,durable=slow,max-in-flight=8,timeout=5s"
    )]);
    let all = ids("s-", 30);
    stack.publish("slow.x", &all, true);
    stack.await_seen(WAIT, "30 slow messages handled", |s| s.len() == all.len());
    let deadline = Instant::now() + WAIT;
    let intervals = loop {
        let iv = stack.intervals();
        if iv.len() == all.len() {
            break iv;
        }
        assert!(Instant::now() < deadline, "{} intervals recorded", iv.len());
        std::thread::sleep(Duration::from_millis(100));
    };
    // The most calls running at one instant (each interval lies within its call).
    let mut events: Vec<(u128, i32)> = intervals
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
    events.sort();
    let (mut now, mut max) = (0, 0);
    for (_, step) in events {
        now += step;
        max = max.max(now);
    }
    assert_eq!(
        max, 3,
        "the handler ran {max} at once; the export allows 3 and 8 were offered"
    );
}

// --- shutdown ----------------------------------------------------------------

/// Waits until `n` deliveries have started (`seen:` counts at handler entry).
fn await_started(stack: &Stack, n: u64) {
    stack.await_seen(WAIT, "deliveries started", |s| s.values().sum::<u64>() >= n);
}

#[test]
fn sigterm_lets_jetstream_messages_in_flight_finish_then_exits_0() {
    let stack = Stack::start();
    stack.create_stream("DRAIN", &["drain.>"]);
    let (_host, target) = stack.handler_host(Via::Tcp, &[("SLEEP_MS", "1500")], 8);
    let sub = format!(
        "subject=drain.>,handler={target},jetstream=DRAIN,durable=drain,max-in-flight=2,timeout=5s"
    );
    let ext = stack.extension(std::slice::from_ref(&sub));
    let all = ids("d-", 6);
    stack.publish("drain.x", &all, true);
    await_started(&stack, 2);
    let status = ext.terminate().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "messaging-nats exits 0 after draining"
    );
    // The two in flight finished (their handler ran to the end) and were
    // acknowledged; nothing else was taken.
    let finished = stack.intervals().len();
    assert_eq!(finished, 2, "the messages in flight at SIGTERM finished");
    assert_eq!(stack.consumer_state("DRAIN", "drain"), (4, 0));
    // A new replica handles the rest; nothing twice.
    let _next = stack.extension(&[sub]);
    let seen = stack.await_seen(WAIT, "the rest handled", |s| s.len() == all.len());
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

#[test]
fn sigterm_gives_back_jetstream_messages_still_running_after_the_grace_period() {
    let stack = Stack::start();
    stack.create_stream("SLOWDRAIN", &["slowdrain.>"]);
    let (_host, target) = stack.handler_host(Via::Tcp, &[("SLEEP_MS", "4000")], 8);
    // A long ack-wait: a message given back is redelivered at once, not
    // after the ack-wait runs out.
    let sub = format!(
        "subject=slowdrain.>,handler={target},jetstream=SLOWDRAIN,durable=slowdrain,max-in-flight=1,timeout=8s,ack-wait=60s"
    );
    let ext = stack.extension_with_grace(std::slice::from_ref(&sub), "500ms");
    stack.publish("slowdrain.x", &["g-1".into()], true);
    await_started(&stack, 1);
    let status = ext.terminate().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(stack.intervals().is_empty(), "the handler had not finished");
    let _next = stack.extension(&[sub]);
    // Given back (a negative acknowledgement), it is redelivered at once;
    // left unacknowledged, it would wait for the 60 s ack-wait.
    let seen = stack.await_seen(
        Duration::from_secs(20),
        "the message redelivered before its ack-wait",
        |s| s.get("g-1") == Some(&2),
    );
    assert_eq!(seen.get("g-1"), Some(&2));
}

#[test]
fn sigterm_on_the_host_finishes_the_call_in_flight_then_exits_0() {
    let stack = Stack::start();
    stack.create_stream("HOSTDRAIN", &["hostdrain.>"]);
    let (host, target) = stack.handler_host(Via::Nats, &[("SLEEP_MS", "1500")], 8);
    let ext = stack.extension(&[format!(
        "subject=hostdrain.>,handler={target},jetstream=HOSTDRAIN,durable=hostdrain,timeout=10s"
    )]);
    stack.publish("hostdrain.x", &["h-1".into()], true);
    await_started(&stack, 1);
    let run = host.terminate(Duration::from_secs(30)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // The call ran to the end and its result reached the extension, which
    // acknowledged it: nothing pending, nothing failed.
    assert_eq!(stack.intervals().len(), 1, "the handler finished");
    let deadline = Instant::now() + WAIT;
    while stack.consumer_state("HOSTDRAIN", "hostdrain") != (0, 0) {
        assert!(
            Instant::now() < deadline,
            "the message was never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !ext.log()
            .iter()
            .any(|l| l.contains("failed") || l.contains("unreachable")),
        "{:?}",
        ext.log()
    );
}

/// A JetStream consumer's ack-wait follows the handler's real deadline. With
/// `--handler-timeout 45s` and no `timeout=`, a handler that takes 37 s
/// (longer than the built-in 30 s + 5 s the ack-wait used to be, whatever
/// the flag said) runs once: NATS does not redeliver the message while it
/// is being handled, and it is acknowledged once.
#[test]
fn a_handler_slower_than_the_default_timeout_is_not_redelivered_while_it_runs() {
    let stack = Stack::start();
    stack.create_stream("LONG", &["long.>"]);
    let (_host, target) = stack.handler_host_within(Via::Tcp, &[("SLEEP_MS", "37000")], 4, "60s");
    let _ext = stack.extension_with_args(
        &[format!(
            "subject=long.>,handler={target},jetstream=LONG,durable=long,max-in-flight=4"
        )],
        &["--handler-timeout", "45s"],
    );
    let info = stack.consumer_info("LONG", "long");
    assert_eq!(info.config.ack_wait, Duration::from_secs(50));
    stack.publish("long.x", &["slow-1".to_string()], true);
    // Done once the handler recorded its run and NATS has the acknowledgement.
    let deadline = Instant::now() + WAIT;
    while stack.intervals().is_empty() || stack.consumer_state("LONG", "long") != (0, 0) {
        assert!(Instant::now() < deadline, "not handled within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (start, end) = stack.intervals()[0];
    assert!(
        end - start >= 37_000_000_000,
        "the handler ran {} ms, not longer than the old 35 s ack-wait",
        (end - start) / 1_000_000
    );
    assert_eq!(
        stack.counts("seen:").get("slow-1"),
        Some(&1),
        "handled once"
    );
    let info = stack.consumer_info("LONG", "long");
    assert_eq!(info.num_redelivered, 0, "{info:?}");
    assert_eq!(info.delivered.consumer_sequence, 1, "{info:?}");
}

/// An explicit `ack-wait` at or below the handler's deadline is refused at
/// start (exit 2), in one line naming both: the deadline here comes from
/// `--handler-timeout`, which the subscription's own parsing cannot see.
#[test]
fn an_ack_wait_within_the_handler_timeout_is_refused() {
    let nats = Nats::start().unwrap();
    let out = std::process::Command::new(harness::bin("messaging-nats").unwrap())
        .args([
            "--nats-url",
            &nats.url(),
            "--handler-timeout",
            "60s",
            "--subscribe",
            "subject=jobs.>,handler=tcp://127.0.0.1:1,jetstream=JOBS,durable=jobs,ack-wait=45s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "`ack-wait` (45s) must be longer than the handler's deadline (60s, --handler-timeout)"
        ),
        "{stderr}"
    );
}

// --- bad input ---------------------------------------------------------------

#[test]
fn an_invalid_subscription_subject_is_refused_in_one_line() {
    let nats = Nats::start().unwrap();
    let out = std::process::Command::new(harness::bin("messaging-nats").unwrap())
        .args([
            "--nats-url",
            &nats.url(),
            "--subscribe",
            "subject=orders..new,handler=tcp://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("subject `orders..new` has an empty token"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_handler_keeps_jetstream_messages_until_it_serves() {
    let stack = Stack::start();
    stack.create_stream("WAITING", &["waiting.>"]);
    // Nothing serves the handler yet: no NATS responders.
    let target = format!("{}/handlers", stack.nats.url());
    let ext = stack.extension(&[format!(
        "subject=waiting.>,handler={target},jetstream=WAITING,durable=waiting,max-deliver=1,backoff=200ms,dead-letter=dead.waiting"
    )]);
    stack.publish("waiting.x", &["w-1".into()], true);
    let deadline = Instant::now() + WAIT;
    while !ext
        .log()
        .iter()
        .any(|l| l.contains("handler unreachable at nats://") && l.contains("retrying"))
    {
        assert!(
            Instant::now() < deadline,
            "no log line about the unreachable handler: {:?}",
            ext.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stack.counts("seen:").is_empty(), "nothing handled it yet");
    // Still there, though delivered more than max-deliver times: an
    // unreachable handler does not use up deliveries.
    let (_host, served) = stack.handler_host(Via::Nats, &[], 4);
    assert!(served.starts_with(&target), "{served}");
    let seen = stack.await_seen(WAIT, "the waiting message handled", |s| {
        s.contains_key("w-1")
    });
    assert_eq!(seen.get("w-1"), Some(&1));
}

#[test]
fn a_consumer_call_to_an_unreachable_extension_is_an_error_value() {
    let run = Workload::new("publisher")
        .component(
            Component::new("publisher", MSG_GUEST)
                .config("SCENARIO", "expect-error")
                .config("SUBJECT", "demo.x"),
        )
        .wrpc_entry("interface: wasmcloud:messaging\ntarget: tcp://127.0.0.1:1\ntimeout: 2s")
        .run(&[], Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        run.code,
        Some(0),
        "the guest got an error value, not a trap: {}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("error: wasmcloud:messaging/consumer@0.2.0.publish: extension unreachable at tcp://127.0.0.1:1"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_export_the_component_lacks_fails_the_workload_in_one_line() {
    let run = Workload::new("handlers")
        .component(Component::new("handler", MSG_HANDLER))
        .wrpc_entry("interface: wasmcloud:messaging\ntarget: tcp://127.0.0.1:1")
        .wrpc_entry("interface: wasi:keyvalue\ntarget: tcp://127.0.0.1:1")
        .export("wasmcloud:messaging/handlr@0.2.0", "tcp://127.0.0.1:0")
        .run(&[], Duration::from_secs(30))
        .unwrap();
    assert_eq!(run.code, Some(1));
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].contains("export `wasmcloud:messaging/handlr@0.2.0`: no component exports it")
            && lines[0].contains("did you mean `wasmcloud:messaging/handler@0.2.0`?"),
        "{}",
        lines[0]
    );
}
