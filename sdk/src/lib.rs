//! Build wRPC extension servers in a few dozen lines.
//!
//! An extension is a binary that serves WIT interfaces over wRPC. The sdk
//! gives it everything that is not its backend:
//!
//! - [`ServeArgs`]: the shared flags (`--nats-url`, `--prefix`, `--queue-group`,
//!   repeatable `--listen tcp://ADDR`, `--http-addr`, `--max-concurrency`,
//!   `--shutdown-grace`, `--log-format`), each with an environment variable;
//! - [`Extension`]: serves the generated handlers on NATS and any number of TCP
//!   listeners at once, one task per call under a concurrency limit, with
//!   `/healthz` and `/readyz`, and a graceful drain on SIGTERM or ctrl-c;
//! - [`CallerContext`]: who called (transport, peer, workload, namespace,
//!   component, `traceparent`), the same on every transport;
//! - wire bindings, one module per package behind a feature (`keyvalue`).
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
mod context;
mod dispatch;
mod health;
mod serve;
mod telemetry;
mod transport;

#[cfg(feature = "keyvalue")]
pub mod keyvalue;

pub use config::{ConfigError, ListenAddr, LogFormat, ServeArgs};
pub use context::{headers, CallerContext, Transport};
pub use dispatch::{serve_function, PARAMS_TIMEOUT};
pub use serve::{shutdown_signal, Exports, Extension, Invocation, Invocations, ServeError};
pub use telemetry::init_tracing;
pub use transport::{NatsServer, TcpServer};
