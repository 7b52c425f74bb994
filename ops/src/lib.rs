//! What operators see of a running binary, the host's and every
//! extension's alike:
//!
//! - [`logs`]: one line per event on stderr, text or JSON;
//! - [`OpsEndpoint`]: `/healthz` (liveness), `/readyz` ([`Readiness`]:
//!   every listener and backend, named) and `/metrics` (Prometheus);
//! - [`metrics`]: the recorder behind `/metrics`, and backend error counts;
//! - [`probe`]: `BINARY healthcheck`, the probe of images without a shell;
//! - [`otlp`]: optionally, the spans sent to an OpenTelemetry collector.
#![deny(missing_docs)]

mod http;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod probe;
mod readiness;

pub use http::{BindError, Description, OpsEndpoint};
pub use logs::LogFormat;
pub use readiness::{Readiness, Report, CHECK_TIMEOUT};
