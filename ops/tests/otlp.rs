//! The span exporter against real OTLP receivers (harness::collector):
//! OTLP/HTTP protobuf and gRPC, plain and TLS, with headers, a full queue
//! and flush.

use std::time::{Duration, Instant};

use harness::collector::{Collector, Span};
use ops::otlp::{Config, Handle, Headers, Protocol, BATCH, DROPPED, INTERVAL, QUEUE};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;
use transport::TraceContext;

const WAIT: Duration = Duration::from_secs(10);

fn config(collector: &Collector, protocol: Protocol) -> Config {
    let mut config = Config::new(collector.endpoint().parse().unwrap());
    config.protocol = protocol;
    if let Some(ca) = collector.ca_file() {
        config.certificate = Some(ca.to_str().unwrap().parse().unwrap());
    }
    config
}

/// The exporter's layer as a subscriber, kept (as a binary keeps its
/// global one) while the test flushes.
struct Exporting {
    handle: Handle,
    dispatch: Dispatch,
}

impl Exporting {
    fn start(config: Config) -> Self {
        let layer = ops::otlp::layer(config, "svc").unwrap();
        let handle = layer.handle();
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        Self { handle, dispatch }
    }

    fn flush(&self) -> bool {
        self.handle.flush(WAIT)
    }
}

/// Runs `spans` calls with the exporter's layer as the subscriber: each
/// opens and closes one span as the transport does for a served call,
/// continuing `caller` (a `traceparent`).
fn serve_calls(config: Config, caller: &TraceContext, spans: usize) -> Exporting {
    let exporting = Exporting::start(config);
    tracing::dispatcher::with_default(&exporting.dispatch, || {
        for _ in 0..spans {
            let span = caller.child();
            let _call = tracing::info_span!(
                "call",
                function = "i.f",
                trace_id = %span.trace_id(),
                span_id = %span.span_id(),
                parent_id = caller.span_id(),
                outcome = "ok",
            )
            .entered();
        }
    });
    exporting
}

fn assert_one_child_of(spans: &[Span], caller: &TraceContext) {
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.service, "svc");
    assert_eq!(span.name, "call");
    assert_eq!(span.trace_id, caller.trace_id());
    assert_eq!(span.parent_id.as_deref(), Some(caller.span_id().as_str()));
    assert_ne!(span.span_id, caller.span_id());
}

fn delivers_with_the_trace_id_from_traceparent(collector: &Collector, protocol: Protocol) {
    let caller =
        TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    let exporting = serve_calls(config(collector, protocol), &caller, 1);
    assert!(exporting.flush(), "flushed");
    assert_one_child_of(&collector.spans(), &caller);
}

#[test]
fn http_protobuf_delivers_the_span_with_the_trace_id_from_traceparent() {
    let collector = Collector::http();
    delivers_with_the_trace_id_from_traceparent(&collector, Protocol::HttpProtobuf);
    let exports = collector.exports();
    assert_eq!(exports[0].path, "/v1/traces");
    assert_eq!(exports[0].headers["content-type"], "application/x-protobuf");
}

#[test]
fn grpc_delivers_the_span_with_the_trace_id_from_traceparent() {
    let collector = Collector::grpc();
    delivers_with_the_trace_id_from_traceparent(&collector, Protocol::Grpc);
    assert_eq!(
        collector.exports()[0].headers["content-type"],
        "application/grpc"
    );
}

#[test]
fn https_with_the_collectors_ca_delivers_over_http_protobuf() {
    let collector = Collector::https();
    delivers_with_the_trace_id_from_traceparent(&collector, Protocol::HttpProtobuf);
}

#[test]
fn https_with_the_collectors_ca_delivers_over_grpc() {
    let collector = Collector::grpcs();
    delivers_with_the_trace_id_from_traceparent(&collector, Protocol::Grpc);
}

#[test]
fn https_without_the_collectors_ca_delivers_nothing() {
    let collector = Collector::https();
    let mut config = config(&collector, Protocol::HttpProtobuf);
    config.certificate = None;
    let exporting = serve_calls(config, &TraceContext::root(), 1);
    assert!(exporting.flush(), "flushed");
    assert!(collector.exports().is_empty());
}

#[test]
fn configured_headers_arrive_on_the_receiver() {
    let headers: Headers = "authorization=Bearer%20s3cret,x-tenant=blue"
        .parse()
        .unwrap();
    for (collector, protocol) in [
        (Collector::http(), Protocol::HttpProtobuf),
        (Collector::grpc(), Protocol::Grpc),
    ] {
        let mut config = config(&collector, protocol);
        config.headers = headers.clone();
        let exporting = serve_calls(config, &TraceContext::root(), 1);
        assert!(exporting.flush(), "flushed");
        let exports = collector.exports();
        assert_eq!(exports.len(), 1, "{protocol:?}");
        assert_eq!(exports[0].headers["authorization"], "Bearer s3cret");
        assert_eq!(exports[0].headers["x-tenant"], "blue");
    }
}

#[test]
fn flush_delivers_what_is_queued_before_the_interval() {
    let collector = Collector::http();
    let caller = TraceContext::root();
    let start = Instant::now();
    let exporting = serve_calls(config(&collector, Protocol::HttpProtobuf), &caller, 3);
    assert!(exporting.flush(), "flushed");
    assert!(start.elapsed() < INTERVAL, "{:?}", start.elapsed());
    let spans = collector.spans();
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert!(spans.iter().all(|s| s.trace_id == caller.trace_id()));
}

#[test]
fn spans_without_w3c_ids_are_not_exported() {
    let collector = Collector::http();
    let exporting = Exporting::start(config(&collector, Protocol::HttpProtobuf));
    tracing::dispatcher::with_default(&exporting.dispatch, || {
        let _plain = tracing::info_span!("work", item = 1).entered();
    });
    assert!(exporting.flush(), "flushed");
    assert!(collector.exports().is_empty());
}

/// While the collector holds the first request, the queue fills: what does
/// not fit is dropped and counted in `wrpc_otlp_spans_dropped_total`; the
/// rest arrives once the collector answers.
#[test]
fn spans_beyond_a_full_queue_are_dropped_and_counted() {
    let collector = Collector::http();
    collector.hold();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let sent = QUEUE + BATCH + 100;
    let exporting = metrics::with_local_recorder(&recorder, || {
        serve_calls(
            config(&collector, Protocol::HttpProtobuf),
            &TraceContext::root(),
            sent,
        )
    });
    let dropped: usize = metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{DROPPED} ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    // The exporter's thread took one batch at most before it was held.
    assert!(
        (sent - QUEUE - BATCH..=sent - QUEUE).contains(&dropped),
        "{dropped} dropped"
    );
    collector.release();
    assert!(exporting.flush(), "flushed");
    assert_eq!(collector.spans().len(), sent - dropped);
}
