//! The optional OpenTelemetry exporter: every span that carries a W3C
//! `trace_id` and `span_id` (the transport's `call` spans, the host's `run`
//! spans) is sent to a collector as OTLP/HTTP JSON (`POST
//! {endpoint}/v1/traces`), with the ids the spans carry on the wire, so
//! the trace a collector shows is the one `traceparent` describes.
//!
//! Spans are queued (at most [`QUEUE`]; more are dropped and counted in
//! `wrpc_otlp_spans_dropped_total`) and sent by one thread in batches of
//! at most [`BATCH`], at least every [`INTERVAL`]. Plain `http://` only:
//! the usual set-up is a collector agent next to the process.

use core::fmt::Write as _;
use core::time::Duration;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Most spans waiting to be sent.
pub const QUEUE: usize = 8192;
/// Most spans in one request.
pub const BATCH: usize = 512;
/// Longest a finished span waits before it is sent.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a request to the collector may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Spans dropped because the queue was full or the collector refused them.
pub const DROPPED: &str = "wrpc_otlp_spans_dropped_total";

/// An endpoint the exporter cannot use.
#[derive(Debug, thiserror::Error)]
#[error("--otlp-endpoint `{endpoint}`: {reason}")]
pub struct EndpointError {
    /// The value given.
    pub endpoint: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Where spans go: a collector's OTLP/HTTP base URL (`http://HOST:PORT`,
/// optionally with a path prefix).
#[derive(Clone, Debug)]
pub struct Endpoint {
    authority: String,
    path: String,
}

impl core::str::FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| EndpointError {
            endpoint: s.to_string(),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(s).map_err(|e| fail(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(fail(
                "only http:// is supported (send to a collector agent next to the process)",
            ));
        }
        let host = url.host_str().ok_or_else(|| fail("no host"))?;
        let port = url.port().unwrap_or(4318);
        let base = url.path().trim_end_matches('/');
        Ok(Self {
            authority: format!("{host}:{port}"),
            path: format!("{base}/v1/traces"),
        })
    }
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// A finished span, as it is sent.
#[derive(Clone, Debug, Default)]
struct SpanData {
    name: &'static str,
    trace_id: String,
    span_id: String,
    parent_id: Option<String>,
    attributes: Vec<(String, String)>,
    error: bool,
    start_ns: u128,
    end_ns: u128,
}

/// Collects a span's W3C ids and its other fields as attributes.
struct Fields<'a>(&'a mut SpanData);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn core::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.record(field, s.trim_matches('"').to_string());
    }
}

impl Fields<'_> {
    fn record(&mut self, field: &Field, value: String) {
        let span = &mut *self.0;
        match field.name() {
            "trace_id" => span.trace_id = value,
            "span_id" => span.span_id = value,
            "parent_id" => span.parent_id = Some(value),
            "outcome" => {
                span.error = value != "ok";
                span.attributes.push(("outcome".into(), value));
            }
            name => span.attributes.push((name.to_string(), value)),
        }
    }
}

/// The layer that queues finished spans for the exporter thread.
pub struct OtlpLayer {
    queue: SyncSender<SpanData>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let has_ids =
            attrs.fields().field("trace_id").is_some() && attrs.fields().field("span_id").is_some();
        let Some(span) = ctx.span(id).filter(|_| has_ids) else {
            return;
        };
        let mut data = SpanData {
            name: attrs.metadata().name(),
            start_ns: now_ns(),
            ..SpanData::default()
        };
        attrs.record(&mut Fields(&mut data));
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
                values.record(&mut Fields(data));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(mut data) = span.extensions_mut().remove::<SpanData>() else {
            return;
        };
        if data.trace_id.is_empty() || data.span_id.is_empty() {
            return;
        }
        data.end_ns = now_ns();
        if self.queue.try_send(data).is_err() {
            metrics::counter!(DROPPED).increment(1);
        }
    }
}

/// The running exporter, for [`flush`].
struct Exporter {
    flush: SyncSender<SyncSender<()>>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Starts the exporter thread sending to `endpoint` as service `service`
/// (`service.name`) and returns the layer that feeds it.
pub fn layer(endpoint: Endpoint, service: &str) -> OtlpLayer {
    let (queue, spans) = mpsc::sync_channel(QUEUE);
    let (flush, flushes) = mpsc::sync_channel(1);
    let service = service.to_string();
    let _ = std::thread::Builder::new()
        .name("otlp-exporter".into())
        .spawn(move || export(&endpoint, &service, &spans, &flushes));
    let _ = EXPORTER.set(Exporter { flush });
    OtlpLayer { queue }
}

/// Sends every span finished so far, waiting at most `limit`. A no-op
/// without an exporter. Call it before the process exits.
pub fn flush(limit: Duration) {
    let Some(exporter) = EXPORTER.get() else {
        return;
    };
    let (done, wait) = mpsc::sync_channel(1);
    if exporter.flush.try_send(done).is_ok() {
        let _ = wait.recv_timeout(limit);
    }
}

fn export(
    endpoint: &Endpoint,
    service: &str,
    spans: &Receiver<SpanData>,
    flushes: &Receiver<SyncSender<()>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut warned = false;
    loop {
        let deadline = std::time::Instant::now() + INTERVAL;
        let mut flush = None;
        let mut closed = false;
        while batch.len() < BATCH {
            if let Ok(done) = flushes.try_recv() {
                flush = Some(done);
                break;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            // Short waits, so a flush is seen within 50 ms.
            match spans.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(span) => batch.push(span),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if flush.is_some() {
            while let Ok(span) = spans.try_recv() {
                batch.push(span);
                if batch.len() == BATCH {
                    send_logged(endpoint, service, &mut batch, &mut warned);
                }
            }
        }
        send_logged(endpoint, service, &mut batch, &mut warned);
        if let Some(done) = flush {
            let _ = done.try_send(());
        }
        if closed {
            return;
        }
    }
}

/// Sends `batch` (emptying it); the first failure in a row is logged.
fn send_logged(endpoint: &Endpoint, service: &str, batch: &mut Vec<SpanData>, warned: &mut bool) {
    if batch.is_empty() {
        return;
    }
    let body = encode(service, batch);
    match post(endpoint, &body) {
        Ok(()) => *warned = false,
        Err(why) => {
            metrics::counter!(DROPPED).increment(batch.len() as u64);
            if !*warned {
                tracing::warn!(target: "ops::otlp", "cannot send spans to {endpoint}: {why}");
                *warned = true;
            }
        }
    }
    batch.clear();
}

fn post(endpoint: &Endpoint, body: &str) -> Result<(), String> {
    let addr: SocketAddr = endpoint
        .authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("resolves to no address")?;
    let mut stream =
        TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        endpoint.path,
        endpoint.authority,
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    match line.split(' ').nth(1) {
        Some(status) if status.starts_with('2') => Ok(()),
        Some(status) => Err(format!("the collector answered HTTP {status}")),
        None => Err("no HTTP answer".into()),
    }
}

/// An `ExportTraceServiceRequest` in OTLP's JSON form.
fn encode(service: &str, spans: &[SpanData]) -> String {
    use serde_json::json;
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let spans: Vec<_> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "name": s.name,
                // SERVER for a served call, INTERNAL for a run.
                "kind": if s.name == "call" { 2 } else { 1 },
                "startTimeUnixNano": s.start_ns.to_string(),
                "endTimeUnixNano": s.end_ns.to_string(),
                "attributes": s.attributes.iter().map(|(k, v)| attr(k, v)).collect::<Vec<_>>(),
                "status": {"code": if s.error { 2 } else { 1 }},
            });
            if let Some(parent) = &s.parent_id {
                span["parentSpanId"] = json!(parent);
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [attr("service.name", service)]},
            "scopeSpans": [{"scope": {"name": "wrpc-ext"}, "spans": spans}],
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_base_urls() {
        let e: Endpoint = "http://collector:4318".parse().unwrap();
        assert_eq!(e.to_string(), "http://collector:4318/v1/traces");
        let e: Endpoint = "http://127.0.0.1/otlp/".parse().unwrap();
        assert_eq!(e.to_string(), "http://127.0.0.1:4318/otlp/v1/traces");
        let err = "https://collector:4318".parse::<Endpoint>().unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        assert!("collector:4318".parse::<Endpoint>().is_err());
    }

    #[test]
    fn encodes_ids_times_parent_and_status() {
        let span = SpanData {
            name: "call",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_id: Some("1111111111111111".into()),
            attributes: vec![("function".into(), "i.f".into())],
            error: true,
            start_ns: 1,
            end_ns: 2,
        };
        let v: serde_json::Value = serde_json::from_str(&encode("svc", &[span])).unwrap();
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s["parentSpanId"], "1111111111111111");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["startTimeUnixNano"], "1");
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
    }
}
