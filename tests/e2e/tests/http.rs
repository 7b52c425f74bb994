//! HTTP in and out: components exporting a `wasi:http` handler answer
//! requests on the host's listener (`--http-listen`), routed by `Host`
//! header and path prefix, under limits and a deadline; their outgoing
//! requests reach only the hosts their workload allows.

use std::time::Duration;

use e2e::http::{request, send, send_h2, Connection, Reply, Upstream};
use e2e::{HTTP_COUNTER, HTTP_P3};
use harness::workload::{Component, Workload};
use harness::HostProcess;

const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(30);

fn counter() -> Workload {
    Workload::new("counter")
        .component(Component::new("api", HTTP_COUNTER).config("GREETING", "the counter"))
        .host("wasi:keyvalue")
}

/// Starts `workload` on a host listening for HTTP on a free port.
fn serve(workload: &Workload, more: &[&str]) -> (HostProcess, String) {
    let mut args = vec!["--http-listen", "127.0.0.1:0"];
    args.extend_from_slice(more);
    let host = workload.spawn(&args, &[]).unwrap();
    let addr = host.http_listen(START_LIMIT).unwrap();
    host.await_stdout("ready\n", START_LIMIT).unwrap();
    (host, addr)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[track_caller]
fn assert_reply(reply: &Reply, status: u16, body: &str) {
    assert_eq!(reply.status, status, "{reply:?} ({})", reply.text());
    assert_eq!(reply.text(), body, "{reply:?}");
}

/// `GET /count` increments a counter in the embedded keyvalue, over one
/// kept-alive connection; every answer is the component's.
#[test]
fn counter_counts_in_the_embedded_keyvalue_over_one_connection() {
    let (host, addr) = serve(&counter().http(""), &[]);
    rt().block_on(async {
        let mut conn = Connection::open(&addr).await.unwrap();
        for n in 1..=3 {
            let reply = conn.send(request("localhost", "/count", "")).await.unwrap();
            assert_reply(&reply, 200, &format!("count: {n}\n"));
            assert_eq!(reply.headers["x-component"], "http-counter");
        }
        let reply = conn.send(request("localhost", "/hello", "")).await.unwrap();
        assert_reply(&reply, 200, "hello from the counter\n");
        let reply = send_h2(&addr, request("localhost", "/count", ""))
            .await
            .unwrap();
        assert_reply(&reply, 200, "count: 4\n");
    });
    let run = host.terminate(STOP_LIMIT).unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
}

/// Only requests for the route's hosts and path prefix reach the workload
/// (on a segment boundary); the host answers the others with 404.
#[test]
fn requests_are_routed_by_host_header_and_path_prefix() {
    let workload = counter().http("hosts: [counter.test, '*.apps.test']\npath: /api");
    let (host, addr) = serve(&workload, &[]);
    rt().block_on(async {
        for (host, path, status) in [
            ("counter.test", "/api/count", 200),
            ("Counter.Test:8080", "/api/hello", 200),
            ("x.apps.test", "/api", 404),
            ("other.test", "/api/count", 404),
            ("counter.test", "/apix/count", 404),
            ("counter.test", "/count", 404),
        ] {
            let reply = send(&addr, request(host, path, "")).await.unwrap();
            assert_eq!(reply.status, status, "{host} {path}: {}", reply.text());
            if status == 404 && path != "/api" {
                assert!(
                    reply.text().starts_with("no workload answers host"),
                    "{}",
                    reply.text()
                );
                assert!(reply.headers.get("x-component").is_none());
            }
        }
    });
    host.terminate(STOP_LIMIT).unwrap();
}

/// A trap is a 500 naming the component and a log line naming it; the
/// next request, in a fresh instance, succeeds.
#[test]
fn a_trap_is_a_500_and_a_log_line_naming_the_component() {
    let (host, addr) = serve(&counter().http(""), &["--log-format", "json"]);
    rt().block_on(async {
        let reply = send(&addr, request("localhost", "/trap", ""))
            .await
            .unwrap();
        assert_eq!(reply.status, 500, "{}", reply.text());
        assert!(
            reply
                .text()
                .contains("component `api` of workload `counter` failed"),
            "{}",
            reply.text()
        );
        let reply = send(&addr, request("localhost", "/count", ""))
            .await
            .unwrap();
        assert_reply(&reply, 200, "count: 1\n");
    });
    host.await_stderr("HTTP handler trapped", START_LIMIT)
        .unwrap();
    let run = host.terminate(STOP_LIMIT).unwrap();
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("HTTP handler trapped"))
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(event["fields"]["component"], "api", "{line}");
    assert_eq!(event["fields"]["workload"], "counter", "{line}");
    assert!(line.contains("unreachable"), "the trap's reason: {line}");
}

/// A request still unanswered at the route's deadline gets 504 naming it.
#[test]
fn a_request_past_its_deadline_gets_504() {
    let (host, addr) = serve(&counter().http("timeout: 1s"), &[]);
    rt().block_on(async {
        let reply = send(&addr, request("localhost", "/sleep?ms=20000", ""))
            .await
            .unwrap();
        assert_eq!(reply.status, 504, "{}", reply.text());
        assert!(
            reply.text().contains("did not answer within 1s"),
            "{}",
            reply.text()
        );
        let reply = send(&addr, request("localhost", "/count", ""))
            .await
            .unwrap();
        assert_reply(&reply, 200, "count: 1\n");
    });
    host.terminate(STOP_LIMIT).unwrap();
}

/// A declared body past `max_request_bytes` gets 413 before the component
/// runs; headers past the listener's limit get 431.
#[test]
fn oversized_bodies_and_headers_are_refused() {
    let (host, addr) = serve(&counter().http("max_request_bytes: 1024"), &[]);
    rt().block_on(async {
        let reply = send(&addr, request("localhost", "/echo", vec![b'x'; 4096]))
            .await
            .unwrap();
        assert_eq!(reply.status, 413, "{}", reply.text());
        assert!(
            reply.text().contains("limit of 1024 bytes"),
            "{}",
            reply.text()
        );
        let reply = send(&addr, request("localhost", "/echo", vec![b'y'; 1000]))
            .await
            .unwrap();
        assert_reply(&reply, 200, &"y".repeat(1000));
        let mut big = request("localhost", "/count", "");
        big.headers_mut()
            .insert("x-big", "z".repeat(100 * 1024).parse().unwrap());
        let reply = send(&addr, big).await.unwrap();
        assert_eq!(reply.status, 431, "{}", reply.text());
    });
    let run = host.terminate(STOP_LIMIT).unwrap();
    assert!(
        !run.stdout.contains("count:"),
        "nothing past the limits ran"
    );
}

/// A WASI 0.3 `wasi:http/handler` answers, and echoes a body.
#[test]
fn a_wasi_p3_handler_answers_and_echoes() {
    let workload = Workload::new("p3")
        .component(Component::new("svc", HTTP_P3))
        .http("");
    let (host, addr) = serve(&workload, &[]);
    rt().block_on(async {
        let reply = send(&addr, request("localhost", "/hello", ""))
            .await
            .unwrap();
        assert_reply(&reply, 200, "hello from p3\n");
        assert_eq!(reply.headers["x-component"], "http-p3");
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let reply = send(&addr, request("localhost", "/echo", body.clone()))
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        assert!(
            reply.body == body,
            "echoed {} of {} bytes",
            reply.body.len(),
            body.len()
        );
    });
    host.terminate(STOP_LIMIT).unwrap();
}

/// A workload with `http:` on a host without a listener does not start,
/// in one line naming the flag.
#[test]
fn an_http_route_needs_a_listener() {
    let run = counter().http("").run(&[], START_LIMIT).unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("--http-listen"), "{run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:#?}");
}

/// SIGTERM lets a request in flight finish; the host then exits 0.
#[test]
fn sigterm_drains_a_request_in_flight() {
    let (host, addr) = serve(&counter().http(""), &["--shutdown-grace", "20s"]);
    let runtime = rt();
    let in_flight = runtime.spawn({
        let addr = addr.clone();
        async move { send(&addr, request("localhost", "/sleep?ms=1500", "")).await }
    });
    host.await_stdout("sleeping 1500 ms", START_LIMIT).unwrap();
    let pid = host.pid().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let reply = runtime.block_on(in_flight).unwrap().unwrap();
    assert_reply(&reply, 200, "slept 1500\n");
    let run = host.wait(STOP_LIMIT).unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
}

/// Outgoing requests reach the hosts the workload's `allow` list names; any
/// other is refused with `HTTP-request-denied` before a connection is made,
/// and a workload without a list sends nothing out.
#[test]
fn outgoing_requests_reach_only_allowed_hosts() {
    use std::sync::atomic::Ordering;
    let runtime = rt();
    let (allowed, other) = runtime.block_on(async {
        (
            Upstream::start("upstream ok\n").await.unwrap(),
            Upstream::start("must not be reached\n").await.unwrap(),
        )
    });
    let entry = format!(
        "interface: wasi:http/outgoing-handler\nallow: [\"{}\"]",
        allowed.addr
    );
    let (host, addr) = serve(&counter().http("").host_entry(&entry), &[]);
    let (bare, bare_addr) = serve(&counter().http(""), &[]);
    runtime.block_on(async {
        let fetch = |url: &str| request("localhost", &format!("/fetch?url=http://{url}/x"), "");
        let reply = send(&addr, fetch(&allowed.addr)).await.unwrap();
        assert_reply(&reply, 200, "status: 200\nupstream ok\n");
        let reply = send(&addr, fetch(&other.addr)).await.unwrap();
        assert_eq!(reply.status, 502, "{}", reply.text());
        assert!(
            reply.text().contains("HttpRequestDenied"),
            "{}",
            reply.text()
        );
        let reply = send(&bare_addr, fetch(&allowed.addr)).await.unwrap();
        assert!(
            reply.text().contains("HttpRequestDenied"),
            "{}",
            reply.text()
        );
    });
    assert_eq!(
        allowed.received.load(Ordering::SeqCst),
        1,
        "only the allowed call arrived"
    );
    assert_eq!(
        other.received.load(Ordering::SeqCst),
        0,
        "refused before connecting"
    );
    host.terminate(STOP_LIMIT).unwrap();
    bare.terminate(STOP_LIMIT).unwrap();
}

/// A 64 MiB body streams through the component and back while the host's
/// resident memory grows by far less than the body.
#[test]
fn bodies_stream_through_in_bounded_memory() {
    use futures::StreamExt as _;
    const SIZE: usize = 64 << 20;
    const CHUNK: usize = 64 << 10;
    let (host, addr) = serve(&counter().http("max_request_bytes: 1073741824"), &[]);
    let pid = host.pid();
    let before = harness::proc_status_kib(pid, "VmRSS").unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let done = std::sync::Arc::clone(&done);
        move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(harness::proc_status_kib(pid, "VmRSS").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        }
    });
    let echoed = rt().block_on(async {
        let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let chunks = futures::stream::iter(0..SIZE / CHUNK).map(|i| {
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(bytes::Bytes::from(
                vec![(i % 251) as u8; CHUNK],
            )))
        });
        let req = http::Request::post("/echo")
            .header("host", "localhost")
            .body(http_body_util::StreamBody::new(chunks))
            .unwrap();
        let response = tokio::time::timeout(e2e::http::EXCHANGE_LIMIT, send.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let (mut total, mut sum) = (0usize, 0u64);
        while let Some(frame) = tokio::time::timeout(
            e2e::http::EXCHANGE_LIMIT,
            http_body_util::BodyExt::frame(&mut body),
        )
        .await
        .unwrap()
        {
            if let Ok(data) = frame.unwrap().into_data() {
                total += data.len();
                sum += data.iter().map(|b| u64::from(*b)).sum::<u64>();
            }
        }
        (total, sum)
    });
    let expected: u64 = (0..SIZE / CHUNK)
        .map(|i| (i % 251) as u64 * CHUNK as u64)
        .sum();
    assert_eq!(echoed, (SIZE, expected), "every byte came back");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    assert!(peak > 0, "the host's memory was sampled");
    assert!(
        peak.saturating_sub(before) < 32 * 1024,
        "the host grew by {} KiB echoing {} KiB",
        peak.saturating_sub(before),
        SIZE / 1024
    );
    host.terminate(STOP_LIMIT).unwrap();
}

/// With `pool_size`, requests are answered by instances made ahead: once
/// the pool is full, a request takes one from it and instantiates nothing.
#[test]
fn pooled_instances_answer_requests() {
    let workload = Workload::new("pooled")
        .component(Component::new("api", HTTP_COUNTER).pool_size(2))
        .host("wasi:keyvalue")
        .http("");
    let (host, addr) = serve(&workload, &["--http-addr", "127.0.0.1:0"]);
    let ops = host.http_addr(START_LIMIT).unwrap();
    let metric = |name: &str, labels: &[(&str, &str)]| {
        let (_, text) = harness::http_get(&ops, "/metrics").unwrap();
        harness::metric(&text, name, labels)
    };
    let runtime = rt();
    for n in 1..=3 {
        let deadline = std::time::Instant::now() + START_LIMIT;
        while metric(
            "host_pool_ready",
            &[("workload", "pooled"), ("component", "api")],
        ) < 2.0
        {
            assert!(std::time::Instant::now() < deadline, "the pool fills");
            std::thread::sleep(Duration::from_millis(10));
        }
        let reply = runtime
            .block_on(send(&addr, request("localhost", "/count", "")))
            .unwrap();
        assert_reply(&reply, 200, &format!("count: {n}\n"));
        let from_pool = metric(
            "host_instances_total",
            &[("workload", "pooled"), ("source", "pool")],
        );
        let new = metric(
            "host_instances_total",
            &[("workload", "pooled"), ("source", "new")],
        );
        assert_eq!((from_pool, new), (f64::from(n), 0.0), "request {n}");
    }
    host.terminate(STOP_LIMIT).unwrap();
}
