//! Calling out: a client of one target with deadlines, for extensions that
//! call into components (a messaging extension delivering to a handler).
//!
//! [`Outbound`] is the transport's typed client: it implements wRPC's
//! `Invoke`, so the client functions `wit-bindgen-wrpc` generates for an
//! imported interface call through it. Every call's synchronous part must be
//! done within the timeout, a streamed value may pause for at most the idle
//! timeout (both [`OutboundOptions`], defaults in
//! [`transport::client::defaults`]), and results are checked against the WIT
//! before they are decoded. A failed call is told apart with
//! [`Outbound::call_error`]: a [`CallError`] naming the function, the target
//! and why. Clients made through one [`Connector`] share NATS connections.
//!
//! ```no_run
//! # async fn example(handler: transport::Endpoint) -> Result<(), sdk::OutboundError> {
//! let connector = sdk::outbound::Connector::new("my-extension");
//! let outbound = sdk::Outbound::connect_with(
//!     &connector,
//!     &handler,
//!     &[wit::MESSAGING],
//!     sdk::OutboundOptions::default(),
//! )
//! .await?;
//! # Ok(()) }
//! ```

pub use transport::client::{Headers, TypedClientError as OutboundError};
pub use transport::TypedClient as Outbound;
pub use transport::{CallError, CallErrorKind, CallOptions as OutboundOptions, Connector};
