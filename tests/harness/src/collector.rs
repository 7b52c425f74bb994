//! A real OpenTelemetry trace receiver for tests: OTLP/HTTP protobuf
//! (`POST /v1/traces`, decoded with opentelemetry-proto's prost types) or
//! OTLP/gRPC (the collector's `TraceService`, served by tonic), plain or
//! TLS, on a port it picks. It keeps every export request with its headers.

mod serve;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::{oneshot, watch};

use serve::{serve_grpc, serve_http, Pki, Receiver};

/// One export request as it arrived.
#[derive(Clone, Debug)]
pub struct Export {
    /// The request's headers (gRPC: its metadata).
    pub headers: http::HeaderMap,
    /// The request path (gRPC: the method's).
    pub path: String,
    /// What was exported.
    pub request: ExportTraceServiceRequest,
}

/// One received span, with its ids in lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The resource's `service.name`.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, `None` for a root span.
    pub parent_id: Option<String>,
}

#[derive(Default)]
struct State {
    exports: Mutex<Vec<Export>>,
    arrived: Condvar,
}

impl State {
    fn push(&self, export: Export) {
        self.exports.lock().unwrap().push(export);
        self.arrived.notify_all();
    }
}

/// The receiver; stops on `Drop`.
pub struct Collector {
    endpoint: String,
    ca: Option<PathBuf>,
    state: Arc<State>,
    held: watch::Sender<bool>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How the receiver is reached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Grpc,
}

impl Collector {
    /// OTLP/HTTP protobuf on `http://127.0.0.1:PORT`.
    pub fn http() -> Self {
        Self::start(Kind::Http, false)
    }

    /// OTLP/HTTP protobuf on `https://127.0.0.1:PORT`, with a certificate
    /// from a CA of its own (see [`Collector::ca_file`]).
    pub fn https() -> Self {
        Self::start(Kind::Http, true)
    }

    /// OTLP/gRPC on `http://127.0.0.1:PORT`.
    pub fn grpc() -> Self {
        Self::start(Kind::Grpc, false)
    }

    /// OTLP/gRPC on `https://127.0.0.1:PORT` (see [`Collector::ca_file`]).
    pub fn grpcs() -> Self {
        Self::start(Kind::Grpc, true)
    }

    fn start(kind: Kind, tls: bool) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let pki = tls.then(|| Pki::new(addr));
        let scheme = if tls { "https" } else { "http" };
        let state = Arc::new(State::default());
        let (held, hold) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let serving = Arc::clone(&state);
        let identity = pki.as_ref().map(|p| (p.cert.clone(), p.key.clone()));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let receiver = Receiver {
                    state: serving,
                    hold,
                };
                match kind {
                    Kind::Http => serve_http(listener, receiver, identity, stopped).await,
                    Kind::Grpc => serve_grpc(listener, receiver, identity, stopped).await,
                }
            });
        });
        Self {
            endpoint: format!("{scheme}://{addr}"),
            ca: pki.map(|p| p.ca_file),
            state,
            held,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL to give an exporter (`--otlp-endpoint`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A PEM file holding the CA of a TLS receiver's certificate
    /// (`--otlp-certificate`).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// Keeps requests waiting, unanswered, until [`Collector::release`].
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Answers the requests kept waiting, and the next ones at once.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Every export request received so far.
    pub fn exports(&self) -> Vec<Export> {
        self.state.exports.lock().unwrap().clone()
    }

    /// Every span received so far, in order of arrival.
    pub fn spans(&self) -> Vec<Span> {
        spans(&self.exports())
    }

    /// Waits at most `limit` until at least `count` spans arrived, and
    /// returns all of them.
    pub fn wait_for_spans(&self, count: usize, limit: Duration) -> Vec<Span> {
        let deadline = Instant::now() + limit;
        let mut exports = self.state.exports.lock().unwrap();
        loop {
            let spans = spans(&exports);
            let left = deadline.saturating_duration_since(Instant::now());
            if spans.len() >= count || left.is_zero() {
                return spans;
            }
            exports = self.state.arrived.wait_timeout(exports, left).unwrap().0;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.release();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(ca) = &self.ca {
            let _ = std::fs::remove_file(ca);
        }
    }
}

fn spans(exports: &[Export]) -> Vec<Span> {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut out = Vec::new();
    for resource_spans in exports.iter().flat_map(|e| &e.request.resource_spans) {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
            out.push(Span {
                service: service.clone(),
                name: span.name.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_receiver_has_a_ca_file_and_an_https_endpoint() {
        let collector = Collector::https();
        assert!(collector.endpoint().starts_with("https://127.0.0.1:"));
        let ca = std::fs::read_to_string(collector.ca_file().unwrap()).unwrap();
        assert!(ca.contains("BEGIN CERTIFICATE"));
        assert!(collector.spans().is_empty());
    }
}
