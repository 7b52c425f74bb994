//! Log set-up: one line per event on stderr, as text or JSON.

use tracing_subscriber::EnvFilter;

use crate::otlp::Config;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line (with the current spans, so each line of a
    /// call carries its `trace_id`).
    Json,
}

/// Installs the global tracing subscriber, filtered by `RUST_LOG`, else by
/// `default_filter` (e.g. `info`). async-nats' own connect errors are off
/// unless `RUST_LOG` asks for them: the binary's error reports them in its
/// one line.
///
/// Calling it twice is harmless: the second call changes nothing.
pub fn init(format: LogFormat, default_filter: &str) {
    init_with(format, default_filter, None);
}

/// Like [`init`], also sending spans to an OpenTelemetry collector when
/// `otlp` is given (`(configuration, service name)`; see [`crate::otlp`]).
/// An exporter that cannot be built is reported as a warning, and the
/// process runs without it.
pub fn init_with(format: LogFormat, default_filter: &str, otlp: Option<(Config, &str)>) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, Registry};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_filter},async_nats::connector=off")));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines: Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => lines.with_filter(filter).boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    // The exporter sees the spans of calls and runs whatever the log level.
    let spans = Targets::new()
        .with_target("transport::server", tracing::Level::INFO)
        .with_target("host", tracing::Level::INFO);
    let (otlp, failed) = match otlp.map(|(config, service)| crate::otlp::layer(config, service)) {
        Some(Ok(layer)) => (Some(layer.with_filter(spans)), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(otlp)
        .try_init();
    if let Some(e) = failed {
        tracing::warn!(target: "ops::otlp", "spans are not exported: {e}");
    }
}
