//! Logging set-up.

use tracing_subscriber::EnvFilter;

use crate::LogFormat;

/// Installs the global tracing subscriber, filtered by `RUST_LOG` (default
/// `info`, without async-nats' own connect errors, which the extension's
/// error reports in its one line).
///
/// Calling it twice is harmless: the second call changes nothing.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats::connector=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
