//! Server side of the `wrpc:keyvalue@0.2.0-draft` wire package (feature `keyvalue`).
//!
//! Implement [`store::Handler`], [`atomics::Handler`] and [`batch::Handler`]
//! for one type, then run it with [`serve`]. Every call names its bucket, so
//! any replica can serve any call.

use crate::{CallerContext, Exports};

#[allow(missing_docs, dead_code, clippy::all)]
mod bindings {
    crate::generate!({
        world: "extension",
        path: "../wit/wrpc-keyvalue",
    });
}

pub use bindings::exports::wrpc::keyvalue::{atomics, batch, store};

/// The package's WIT files, which type its functions.
pub const WIT: wit::Package = wit::WRPC_KEYVALUE;

/// A type serving all three key-value interfaces.
pub trait Handler:
    store::Handler<CallerContext>
    + atomics::Handler<CallerContext>
    + batch::Handler<CallerContext>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<H> Handler for H where
    H: store::Handler<CallerContext>
        + atomics::Handler<CallerContext>
        + batch::Handler<CallerContext>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The key-value exports of `handler` (every function of the three
/// interfaces, registered from the WIT), for [`crate::Extension::run`].
pub fn serve<H: Handler>(handler: H) -> impl Exports {
    bindings::serve_exports(handler)
}
