//! Log set-up: one line per event on stderr, as text or JSON.

use tracing_subscriber::EnvFilter;

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
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_filter},async_nats::connector=off")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
