//! Build wRPC extension servers in a few dozen lines.
//!
//! An extension is a binary that serves WIT interfaces over wRPC. The sdk
//! gives it everything that is not its backend:
//!
//! - [`ServeArgs`]: the shared flags (`--nats-url`, `--prefix`,
//!   `--queue-group`, repeatable `--listen` for `tcp://`, `unix://`, `ws://`,
//!   `wss://` and `nats://`, `--http-addr`, `--max-concurrency`,
//!   `--shutdown-grace`, `--log-format`, and the limits), each with an
//!   environment variable;
//! - [`Extension`]: serves the registered functions on every transport at
//!   once under one concurrency limit, with `/healthz`, `/readyz` (each
//!   listener and the backend) and `/metrics` (Prometheus), and a graceful
//!   drain on SIGTERM or ctrl-c;
//! - [`Functions`]: registration typed by the WIT, so synchronous values are
//!   checked against limits before they are decoded;
//! - [`IncomingBytes`] and [`OutgoingBytes`]: `stream<u8>` values with
//!   bounded buffers;
//! - [`CallerContext`]: who called (transport, peer, workload, namespace,
//!   component, `traceparent`), the same on every transport;
//! - [`Outbound`]: a client of one target with deadlines, for extensions
//!   that call into components;
//! - wire bindings, one module per package behind a feature (`keyvalue`,
//!   `blobstore`, `messaging`).
//!
//! A key-value extension's `main` is the handler plus:
//!
//! ```no_run
//! # #[cfg(feature = "keyvalue")]
//! # async fn example(args: sdk::ServeArgs, handler: impl sdk::keyvalue::Handler) -> Result<(), sdk::ServeError> {
//! sdk::Extension::new("my-keyvalue", args)
//!     .readiness(|| async { Ok(()) })
//!     .run(sdk::keyvalue::serve(handler))
//!     .await
//! # }
//! ```
#![deny(missing_docs)]

mod config;
mod dispatch;
pub mod memory;
pub mod outbound;
mod serve;
mod start;
mod stream;

#[cfg(feature = "blobstore")]
pub mod blobstore;
#[cfg(feature = "keyvalue")]
pub mod keyvalue;
#[cfg(feature = "messaging")]
pub mod messaging;

pub use config::{ConfigError, ServeArgs};
pub use dispatch::{Functions, RegisterError};
pub use ops::metrics::backend_error;
pub use ops::probe::health_check_command;
pub use ops::LogFormat;
pub use outbound::{failure_reason, is_unreachable, Outbound, OutboundError, OutboundOptions};
pub use serve::{Exports, Extension, Running, ServeError};
pub use start::{main, Config};
pub use stream::{IncomingBytes, OutgoingBytes, OutgoingStream, CHUNK};
/// The trace context of calls ([`CallerContext::trace`]).
pub use transport::TraceContext;

/// Installs the global tracing subscriber (default filter `info`; see
/// [`ops::logs::init`]). Calling it twice is harmless.
pub fn init_tracing(format: LogFormat) {
    ops::logs::init(format, "info");
}
pub use transport::server::shutdown_signal;
pub use transport::{headers, CallerContext, Incoming, Outgoing, Peer, Transport};
