//! The optional OpenTelemetry exporter: every span that carries a W3C
//! `trace_id` and `span_id` (the transport's `call` spans, the host's `run`
//! spans) is sent to a collector with the OpenTelemetry OTLP exporter, as
//! OTLP/HTTP protobuf (`POST {endpoint}/v1/traces`) or OTLP/gRPC, over
//! `http://` or `https://`, with configured headers (e.g. a token). The
//! span keeps the ids it carries on the wire, so the trace a collector
//! shows is the one `traceparent` describes.
//!
//! Spans are queued (at most [`QUEUE`]; more are dropped and counted in
//! [`DROPPED`], as are spans the collector refused) and sent by one thread
//! in batches of at most [`BATCH`], at least every [`INTERVAL`]; [`flush`]
//! sends what is queued before the process exits.

mod config;
mod export;
mod layer;

use core::time::Duration;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::OnceLock;

pub use config::{Certificate, Config, ConfigError, Endpoint, Headers, OtlpArgs, Protocol};
pub use layer::OtlpLayer;
pub use opentelemetry_otlp::ExporterBuildError;

/// Most spans waiting to be sent.
pub const QUEUE: usize = 8192;
/// Most spans in one request.
pub const BATCH: usize = 512;
/// Longest a finished span waits before it is sent.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a request to the collector may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The instrumentation scope the spans are reported under.
const SCOPE: &str = "wrpc-ext";

/// Spans dropped because the queue was full or the collector refused them.
pub const DROPPED: &str = "wrpc_otlp_spans_dropped_total";

/// Flushes one exporter (see [`OtlpLayer::handle`]).
#[derive(Clone, Debug)]
pub struct Handle {
    flush: SyncSender<SyncSender<()>>,
}

impl Handle {
    /// Sends every span finished so far, waiting at most `limit`; `true`
    /// once they were sent (or refused and counted), `false` on timeout or
    /// while another flush is under way.
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, wait) = mpsc::sync_channel(1);
        match self.flush.try_send(done) {
            // Dropped unanswered: the layer is gone and the thread sent
            // everything before it ended.
            Ok(()) => !matches!(wait.recv_timeout(limit), Err(RecvTimeoutError::Timeout)),
            Err(TrySendError::Disconnected(_)) => true,
            Err(TrySendError::Full(_)) => false,
        }
    }
}

/// The first exporter started, for [`flush`].
static EXPORTER: OnceLock<Handle> = OnceLock::new();

/// Starts the exporter's thread sending to `config`'s collector as service
/// `service` (`service.name`) and returns the layer that feeds it. The
/// first exporter started is the one [`flush`] flushes.
///
/// # Errors
///
/// When the OTLP exporter cannot be built from `config` (or from the
/// `OTEL_EXPORTER_OTLP_*` variables it also reads, such as a compression
/// it does not support).
pub fn layer(config: Config, service: &str) -> Result<OtlpLayer, ExporterBuildError> {
    let (queue, spans) = mpsc::sync_channel(QUEUE);
    let (flush, flushes) = mpsc::sync_channel(1);
    let (built, build_result) = mpsc::sync_channel(1);
    let service = service.to_string();
    let spawned = std::thread::Builder::new()
        .name("otlp-exporter".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = built.send(Err(ExporterBuildError::InternalFailure(e.to_string())));
                    return;
                }
            };
            let exporter = match runtime.block_on(async { export::build(&config, &service) }) {
                Ok(exporter) => exporter,
                Err(e) => {
                    let _ = built.send(Err(e));
                    return;
                }
            };
            let _ = built.send(Ok(()));
            let endpoint = config.endpoint.target(config.protocol);
            export::run(&runtime, &exporter, &endpoint, &spans, &flushes);
        });
    if let Err(e) = spawned {
        return Err(ExporterBuildError::InternalFailure(e.to_string()));
    }
    build_result
        .recv()
        .map_err(|_| ExporterBuildError::InternalFailure("the exporter thread stopped".into()))??;
    let handle = Handle { flush };
    let _ = EXPORTER.set(handle.clone());
    Ok(OtlpLayer { queue, handle })
}

/// Sends every span finished so far by the first exporter started, waiting
/// at most `limit`. A no-op without an exporter. Call it before the process
/// exits.
pub fn flush(limit: Duration) {
    if let Some(exporter) = EXPORTER.get() {
        exporter.flush(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_base_urls_with_otlp_ports() {
        let e: Endpoint = "http://collector".parse().unwrap();
        assert_eq!(
            e.target(Protocol::HttpProtobuf),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(e.target(Protocol::Grpc), "http://collector:4317");
        let e: Endpoint = "http://127.0.0.1:80/otlp/".parse().unwrap();
        assert_eq!(
            e.target(Protocol::HttpProtobuf),
            "http://127.0.0.1/otlp/v1/traces"
        );
        let e: Endpoint = "https://collector.example".parse().unwrap();
        assert!(e.is_https());
        assert_eq!(
            e.target(Protocol::HttpProtobuf),
            "https://collector.example/v1/traces"
        );
        assert_eq!(e.target(Protocol::Grpc), "https://collector.example");
        assert!("collector:4318".parse::<Endpoint>().is_err());
        assert!("ftp://collector".parse::<Endpoint>().is_err());
    }

    #[test]
    fn headers_are_comma_separated_and_url_decoded() {
        let h: Headers = "authorization=Bearer%20t0ken, x-team = a%2Cb"
            .parse()
            .unwrap();
        assert_eq!(h.0["authorization"], "Bearer t0ken");
        assert_eq!(h.0["x-team"], "a,b");
        assert_eq!(format!("{h:?}"), r#"["authorization", "x-team"]"#);
        assert!("no-equals".parse::<Headers>().is_err());
        assert!("bad name=1".parse::<Headers>().is_err());
        assert!("".parse::<Headers>().unwrap().0.is_empty());
    }

    #[test]
    fn a_certificate_file_must_hold_pem_certificates() {
        let err = "/nonexistent/ca.pem".parse::<Certificate>().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
