//! What operators see, end to end with real processes: `/metrics` counts
//! the calls made (host and extension, by interface, function and outcome),
//! `/readyz` names each listener and follows the NATS connection, and a
//! caller's W3C trace continues through the host into the extension.

use std::time::{Duration, Instant};

use e2e::MSG_HANDLER;
use harness::collector::Collector;
use harness::workload::{Component, Workload};
use harness::{http_get, metric, Extension, HostProcess, Nats, Redis};
use sdk::messaging::{handle_message, BrokerMessage, HANDLER};
use sdk::{Outbound, OutboundOptions, TraceContext};

const WAIT: Duration = Duration::from_secs(30);

/// Redis, NATS and keyvalue-redis on TCP, logging JSON at debug for the
/// transport (one `call served` line per call, inside its span).
struct Stack {
    nats: Nats,
    _redis: Redis,
    kv: Extension,
}

impl Stack {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`Stack::start`], keyvalue-redis with `extra` flags.
    fn start_with(extra: &[&str]) -> Self {
        let nats = Nats::start().unwrap();
        let redis = Redis::start().unwrap();
        let mut args = vec![
            "--redis-url".to_string(),
            redis.url(),
            "--log-format".into(),
            "json".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_string()));
        let kv = Extension::start_with_env(
            &harness::bin("keyvalue-redis").unwrap(),
            &args,
            &["tcp://127.0.0.1:0".into()],
            &[("RUST_LOG", "warn,transport=debug")],
        )
        .unwrap();
        Self {
            nats,
            _redis: redis,
            kv,
        }
    }

    /// A host serving the handler component (`BUCKET: ops` and `config`)
    /// over TCP, with its own health endpoint; returns it, the handler's
    /// address and the endpoint.
    fn handler_host(&self, config: &[(&str, &str)]) -> (HostProcess, String, String) {
        self.handler_host_with(config, &[])
    }

    /// Like [`Stack::handler_host`], the host with `extra` flags.
    fn handler_host_with(
        &self,
        config: &[(&str, &str)],
        extra: &[&str],
    ) -> (HostProcess, String, String) {
        let mut handler = Component::new("handler", MSG_HANDLER).config("BUCKET", "ops");
        for (k, v) in config {
            handler = handler.config(k, v);
        }
        let workload = Workload::new("ops")
            .component(handler)
            .route(
                "wasi:keyvalue",
                &format!("tcp://{}", self.kv.tcp_addr().unwrap()),
                "",
            )
            .route(
                "wasmcloud:messaging",
                &format!("{}/ext", self.nats.url()),
                "",
            )
            .export(HANDLER, "tcp://127.0.0.1:0");
        let mut args = vec!["--http-addr", "127.0.0.1:0", "--log-format", "json"];
        args.extend(extra);
        let host = workload
            .spawn(&args, &[("RUST_LOG", "warn,transport=debug")])
            .unwrap();
        let served = host.await_exports(WAIT).unwrap();
        let addr = served.first().expect("an export").1.clone();
        let http = host.http_addr(WAIT).unwrap();
        (host, addr, http)
    }
}

/// Calls the handler at `addr` once per body, each with `headers`.
fn deliver(addr: &str, bodies: &[&str], headers: &[(String, String)]) -> Vec<Result<(), String>> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let target = addr.parse().unwrap();
        let outbound = Outbound::connect(
            &target,
            "ops-test",
            &[sdk::messaging::WIT],
            OutboundOptions::default(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        for body in bodies {
            let msg = BrokerMessage {
                subject: "ops.test".into(),
                body: body.as_bytes().to_vec().into(),
                reply_to: None,
            };
            out.push(
                match handle_message(&outbound, headers.to_vec(), &msg).await {
                    Ok(result) => result,
                    Err(err) => Err(format!("transport: {err:#}")),
                },
            );
        }
        out
    })
}

fn scrape(addr: &str) -> String {
    let (status, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Five good messages, one the handler fails (an error value: the call
/// itself succeeds) and one that traps (the call fails): the host counts
/// 6 ok and 1 error for its export and the key-value calls it made; the
/// extension counts the same key-value calls as served.
#[test]
fn metrics_count_each_call_by_interface_function_and_outcome() {
    let stack = Stack::start();
    let (host, addr, http) = stack.handler_host(&[]);
    let before = scrape(stack.kv.http_addr());
    let outcomes = deliver(
        &addr,
        &["m1", "m2", "m3", "m4", "m5", "fail-1", "trap-1"],
        &[],
    );
    assert!(outcomes[..5].iter().all(Result::is_ok), "{outcomes:?}");
    assert!(
        matches!(&outcomes[5], Err(e) if !e.starts_with("transport")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[6], Err(e) if e.starts_with("transport")),
        "{outcomes:?}"
    );

    let host_metrics = scrape(&http);
    let served = |outcome: &str| {
        metric(
            &host_metrics,
            "wrpc_server_calls_total",
            &[
                ("interface", HANDLER),
                ("function", "handle-message"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(served("ok"), 6.0, "{host_metrics}");
    assert_eq!(served("error"), 1.0, "{host_metrics}");
    assert_eq!(
        metric(
            &host_metrics,
            "wrpc_server_call_duration_seconds_count",
            &[("interface", HANDLER), ("function", "handle-message")],
        ),
        7.0,
        "{host_metrics}"
    );
    assert_eq!(
        metric(
            &host_metrics,
            "wrpc_server_calls_in_flight",
            &[("function", "handle-message")]
        ),
        0.0,
        "{host_metrics}"
    );
    // Every message was counted in Redis (`seen:<body>`) before the handler
    // decided its fate: 7 increments, each a call to keyvalue-redis.
    let target = format!("tcp://{}", stack.kv.tcp_addr().unwrap());
    let made = metric(
        &host_metrics,
        "wrpc_client_calls_total",
        &[
            ("function", "increment"),
            ("target", &target),
            ("outcome", "ok"),
        ],
    );
    assert_eq!(made, 7.0, "{host_metrics}");

    let kv_metrics = scrape(stack.kv.http_addr());
    let kv_served = |text: &str| {
        metric(
            text,
            "wrpc_server_calls_total",
            &[("function", "increment"), ("outcome", "ok")],
        )
    };
    assert_eq!(
        kv_served(&kv_metrics) - kv_served(&before),
        7.0,
        "{kv_metrics}"
    );
    assert!(kv_metrics.contains("# TYPE wrpc_server_call_duration_seconds histogram"));
    drop(host);
}

/// `/readyz` lists every listener by address: ready with TCP and NATS up;
/// NATS stops and the NATS listener fails by name (TCP still ok); NATS
/// returns and the extension is ready again, unrestarted.
#[test]
fn readyz_names_each_listener_and_follows_the_nats_connection() {
    let mut nats = Nats::start().unwrap();
    let redis = Redis::start().unwrap();
    let kv = Extension::start(
        "keyvalue-redis",
        &[
            "--redis-url".into(),
            redis.url(),
            "--nats-url".into(),
            nats.url(),
        ],
        &["tcp://127.0.0.1:0".into()],
    )
    .unwrap();
    let tcp = kv.address("tcp").unwrap().to_string();
    let (status, body) = kv.http_get("/readyz").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(body.contains(&format!("ok listener {tcp}\n")), "{body}");
    assert!(body.contains("ok listener nats://"), "{body}");
    assert!(body.contains("ok backend\n"), "{body}");

    nats.stop();
    let down = wait_for(&kv, |status, body| {
        status == 503 && body.contains("FAIL listener nats://")
    });
    assert!(down.contains(&format!("ok listener {tcp}\n")), "{down}");
    assert_eq!(
        http_get(kv.http_addr(), "/healthz").unwrap().0,
        200,
        "still alive"
    );

    nats.restart().unwrap();
    let up = wait_for(&kv, |status, _| status == 200);
    assert!(up.contains("ok listener nats://"), "{up}");
}

/// `ready` on stdout means the listeners are bound and take calls, not that
/// the backend answers (docs/WRITING-AN-EXTENSION.md, section 5): started
/// while its Redis is down, keyvalue-redis prints `ready`, `/readyz`
/// answers 503 naming the backend and `keyvalue-redis healthcheck` (what
/// scripts/demo.sh waits on) exits 1; once Redis is up, both say ready.
#[test]
fn ready_on_stdout_is_bound_and_readyz_is_the_backend_too() {
    let mut redis = Redis::start().unwrap();
    redis.stop();
    let kv = Extension::start(
        "keyvalue-redis",
        &["--redis-url".into(), redis.url()],
        &["tcp://127.0.0.1:0".into()],
    )
    .unwrap();
    // `Extension::start` returned: `ready` was the last line on its stdout.
    let (status, body) = kv.http_get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("FAIL backend"), "{body}");
    let probe = || {
        std::process::Command::new(harness::bin("keyvalue-redis").unwrap())
            .args(["healthcheck", kv.http_addr()])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(probe(), Some(1));

    redis.restart().unwrap();
    wait_for(&kv, |status, _| status == 200);
    assert_eq!(probe(), Some(0));
}

/// Polls `/readyz` until `cond` holds (NATS' reconnects take their own
/// time), for at most 30 s; returns the body that satisfied it.
fn wait_for(ext: &Extension, cond: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut last = (0, String::new());
    while Instant::now() < deadline {
        last = ext.http_get("/readyz").unwrap();
        if cond(last.0, &last.1) {
            return last.1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("/readyz never matched; last: {} {}", last.0, last.1);
}

/// The JSON log lines of `log` for served calls of `function`: their
/// span's (trace_id, span_id, parent_id).
fn served_spans(log: &[String], function: &str) -> Vec<(String, String, Option<String>)> {
    let field = |line: &str, name: &str| {
        let key = format!("\"{name}\":\"");
        let start = line.find(&key)? + key.len();
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_string())
    };
    log.iter()
        .filter(|l| l.contains("call served"))
        .filter(|l| field(l, "function").is_some_and(|f| f.ends_with(&format!(".{function}"))))
        .filter_map(|l| {
            Some((
                field(l, "trace_id")?,
                field(l, "span_id")?,
                field(l, "parent_id"),
            ))
        })
        .collect()
}

/// A caller sends a `traceparent`: the host's export call continues its
/// trace, each key-value call the component makes is a new span of it
/// (sent as `traceparent`), and keyvalue-redis continues it in its span.
/// Without one, the host starts a trace of its own for the call.
#[test]
fn a_callers_trace_continues_through_the_host_into_the_extension() {
    let stack = Stack::start();
    let (host, addr, _) = stack.handler_host(&[("REPLICA", "r1")]);
    let caller = TraceContext::root();
    let headers = vec![("traceparent".to_string(), caller.to_string())];
    assert_eq!(deliver(&addr, &["traced"], &headers), vec![Ok(())]);
    assert_eq!(deliver(&addr, &["untraced"], &[]), vec![Ok(())]);
    let host_run = host.terminate(WAIT).unwrap();
    let host_log: Vec<String> = host_run.stderr.lines().map(str::to_string).collect();

    let host_spans = served_spans(&host_log, "handle-message");
    assert_eq!(host_spans.len(), 2, "{}", host_run.stderr);
    let (trace, host_span, parent) = &host_spans[0];
    assert_eq!(
        *trace,
        caller.trace_id(),
        "the host continues the caller's trace"
    );
    assert_eq!(parent.as_deref(), Some(caller.span_id().as_str()));
    let (own_trace, _, no_parent) = &host_spans[1];
    assert_ne!(*own_trace, caller.trace_id());
    assert_eq!(
        *no_parent, None,
        "without a caller's trace the host starts one"
    );

    // Two increments per message (`seen:` and `by:`): two spans of the
    // caller's trace at keyvalue-redis, each with its own id, both children
    // of the host's span for the handler call.
    let kv_spans = served_spans(&stack.kv.log(), "increment");
    let traced: Vec<_> = kv_spans
        .iter()
        .filter(|(t, _, _)| *t == caller.trace_id())
        .collect();
    assert_eq!(traced.len(), 2, "{kv_spans:?}");
    assert_ne!(traced[0].1, traced[1].1);
    for (_, span, parent) in &traced {
        assert_eq!(
            parent.as_ref(),
            Some(host_span),
            "a child of the host's span"
        );
        assert_ne!(span, host_span);
    }
    let own: Vec<_> = kv_spans.iter().filter(|(t, _, _)| t == own_trace).collect();
    assert_eq!(
        own.len(),
        2,
        "the host's own trace reaches the extension: {kv_spans:?}"
    );
}

/// Runs one call through the host into keyvalue-redis, both exporting to
/// `collector` with `flags`, stops both, and checks what arrived: each
/// binary's spans under its service name, with the ids that travelled in
/// `traceparent` (the host's handler span is the caller's child, each
/// key-value span the host span's child). Nothing is awaited after the
/// processes exit: the spans arrive because each flushes on exit. Returns
/// the export requests, for checks of their own.
fn spans_reach(collector: &Collector, flags: &[&str]) -> Vec<harness::collector::Export> {
    let mut otlp = vec!["--otlp-endpoint", collector.endpoint()];
    otlp.extend(flags);
    let stack = Stack::start_with(&otlp);
    let (host, addr, _) = stack.handler_host_with(&[], &otlp);
    let caller = TraceContext::root();
    let headers = vec![("traceparent".to_string(), caller.to_string())];
    assert_eq!(deliver(&addr, &["exported"], &headers), vec![Ok(())]);
    host.terminate(WAIT).unwrap();
    assert!(stack.kv.terminate().unwrap().success());

    let spans = collector.spans();
    let host_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.service == "host" && s.trace_id == caller.trace_id())
        .collect();
    assert_eq!(host_spans.len(), 1, "{spans:?}");
    assert_eq!(host_spans[0].name, "call");
    assert_eq!(
        host_spans[0].parent_id.as_deref(),
        Some(caller.span_id().as_str())
    );
    let kv_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.service == "keyvalue-redis" && s.trace_id == caller.trace_id())
        .collect();
    assert!(!kv_spans.is_empty(), "{spans:?}");
    for span in kv_spans {
        assert_eq!(
            span.parent_id.as_ref(),
            Some(&host_spans[0].span_id),
            "{span:?}"
        );
    }
    collector.exports()
}

/// With `--otlp-endpoint`, the host and keyvalue-redis send their spans to
/// an OTLP/HTTP protobuf collector (`POST /v1/traces`), with the ids that
/// travelled in `traceparent`, and flush them on exit.
#[test]
fn spans_reach_an_otlp_collector_with_the_ids_on_the_wire() {
    let collector = Collector::http();
    let exports = spans_reach(&collector, &[]);
    assert!(exports.iter().all(|e| e.path == "/v1/traces"));
}

/// With `--otlp-protocol grpc` and `--otlp-headers`, the same spans reach
/// an OTLP/gRPC collector, each export carrying the configured header.
#[test]
fn spans_reach_an_otlp_grpc_collector_with_the_configured_headers() {
    let collector = Collector::grpc();
    let flags = [
        "--otlp-protocol",
        "grpc",
        "--otlp-headers",
        "authorization=Bearer%20e2e",
    ];
    let exports = spans_reach(&collector, &flags);
    for export in exports {
        assert_eq!(export.headers["authorization"], "Bearer e2e");
    }
}
