//! The wRPC transport layer that the host plugin (client) and the sdk
//! (server) both stand on.
//!
//! - [`Endpoint`]: one URL grammar for targets and listeners (`nats://`,
//!   `tcp://`, `unix://`, `ws://`, `wss://`), credentials kept and redacted;
//! - [`CallerContext`], [`Caller`] and [`headers`]: who calls, validated so
//!   every transport can carry it; [`identity`]: what a listener verified
//!   (client certificates); [`access`]: whom a listener admits and where a
//!   call's namespace comes from;
//! - [`Limits`]: what a peer may declare, checked before anything is allocated;
//! - [`stream`]: TCP, Unix and WebSocket with pooled connections, still
//!   accepting upstream wRPC's one connection per call;
//! - [`Incoming`] and [`Outgoing`]: a call's streams, bounded in time, the
//!   same on every transport;
//! - [`client`]: the one client call: [`Connector`] (endpoints to clients,
//!   NATS connections shared), [`Target`], [`Prepared`] functions,
//!   [`TypedClient`], [`CallError`], and the default deadlines;
//! - [`schema`]: value shapes, so synchronous values are checked before an
//!   upstream decoder sees them;
//! - [`server`]: the registry of served functions and the options listeners share;
//! - [`discovery`]: the names extensions describe themselves under;
//! - [`trace`]: W3C `traceparent`, continued by servers and sent by clients;
//! - [`metrics`]: calls served and made, counted through the `metrics` facade.
#![deny(missing_docs)]

pub mod access;
pub mod async_values;
pub mod call;
pub mod caller;
pub mod client;
pub mod discovery;
pub mod endpoint;
pub mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
mod limits;
pub mod metrics;
pub mod nats;
pub mod schema;
pub mod server;
pub mod stream;
mod tls;
pub mod trace;
mod value;

pub use call::{CallFailure, CallTimer, Incoming, Outgoing};
pub use caller::{headers, Caller, CallerContext, IdentityError, Peer, Transport};
pub use client::{
    CallError, CallErrorKind, CallOptions, Client, Connector, Invocation, Prepared, Target,
    TargetError, TypedClient,
};
pub use endpoint::{Endpoint, EndpointError};
pub use identity::CertIdentity;
pub use limits::{parse_duration, Limits, MAX_DURATION};
#[cfg(feature = "clap")]
pub use limits::{ClientLimitArgs, LimitArgs};
pub use tls::TlsError;
pub use trace::TraceContext;
