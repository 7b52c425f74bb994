//! Both sides of `wasmcloud:messaging@0.2.0` (feature `messaging`).
//!
//! - Serving [`consumer`]: implement [`consumer::Handler`] and run it with
//!   [`serve`]; components publish and request through it.
//! - Calling a component's [`handler`]: [`handle_message`] through an
//!   [`crate::Outbound`] client of the host serving the export.
//!
//! ```no_run
//! # async fn example(args: sdk::ServeArgs, handler: impl sdk::messaging::Handler) -> Result<(), sdk::ServeError> {
//! sdk::Extension::new("my-messaging", args)
//!     .run(sdk::messaging::serve(handler))
//!     .await
//! # }
//! ```

use crate::outbound::Headers;
use crate::{CallerContext, Exports, Outbound};

#[allow(missing_docs, dead_code, clippy::all)]
mod bindings {
    crate::generate!({
        world: "extension",
        path: "../wit/messaging",
    });
}

pub use bindings::exports::wasmcloud::messaging::consumer;
pub use bindings::wasmcloud::messaging::handler;
pub use bindings::wasmcloud::messaging::types::BrokerMessage;

/// The package's WIT files, which type its functions.
pub const WIT: wit::Package = wit::MESSAGING;

/// The instance components publish and request through.
pub const CONSUMER: &str = "wasmcloud:messaging/consumer@0.2.0";

/// The instance components export to receive messages.
pub const HANDLER: &str = "wasmcloud:messaging/handler@0.2.0";

/// A type serving `wasmcloud:messaging/consumer`.
pub trait Handler: consumer::Handler<CallerContext> + Clone + Send + Sync + 'static {}

impl<H> Handler for H where H: consumer::Handler<CallerContext> + Clone + Send + Sync + 'static {}

/// The consumer exports of `handler` (registered from the WIT), for
/// [`crate::Extension::run`].
pub fn serve<H: Handler>(handler: H) -> impl Exports {
    bindings::serve_exports(handler)
}

/// Delivers `msg` to the component handler `outbound` calls. `Ok(Err(…))`
/// is the handler's own error; `Err(…)` a failed call (see
/// [`Outbound::call_error`]).
///
/// # Errors
///
/// The call failed: nothing listening, deadline passed, the host failed it
/// (a trap), or a malformed answer.
pub async fn handle_message(
    outbound: &Outbound,
    headers: Headers,
    msg: &BrokerMessage,
) -> anyhow::Result<Result<(), String>> {
    handler::handle_message(outbound, headers, msg).await
}
