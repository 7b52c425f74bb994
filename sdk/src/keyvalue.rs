//! Server side of the `wrpc:keyvalue@0.2.0-draft` wire package (feature `keyvalue`).
//!
//! Implement [`store::Handler`], [`atomics::Handler`] and [`batch::Handler`]
//! for one type, then run it with [`serve`]. Every call names its bucket, so
//! any replica can serve any call.

use core::future::Future;

use wrpc_transport::Serve;

use crate::{CallerContext, Exports, Invocations};

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen_wrpc::generate!({
        world: "extension",
        path: "../wit/wrpc-keyvalue",
    });
}

pub use bindings::exports::wrpc::keyvalue::{atomics, batch, store};

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

/// The key-value exports of `handler`, for [`crate::Extension::run`].
pub fn serve<H: Handler>(handler: H) -> impl Exports {
    Keyvalue(handler)
}

#[derive(Clone)]
struct Keyvalue<H>(H);

impl<H: Handler> Exports for Keyvalue<H> {
    fn serve<T>(
        &self,
        wrpc: &T,
    ) -> impl Future<Output = anyhow::Result<Vec<(&'static str, &'static str, Invocations)>>> + Send
    where
        T: Serve<Context = CallerContext> + Send + Sync,
    {
        bindings::serve(wrpc, self.0.clone())
    }
}
