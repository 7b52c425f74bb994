//! `wasmcloud:messaging/consumer@0.2.0` for guests. The same package travels
//! on the wire; the plugin adapts it instead of forwarding it generically so
//! that a failed call (extension unreachable, deadline passed) is the
//! function's `err(string)`, never a trap.

use core::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::{HasData, Linker};

use crate::router::Extended;
use crate::{Caller, Router, WrpcPluginCtx, WrpcPluginView};

/// The WIT that types the wire calls.
pub(crate) const WIRE_WIT: wit::Package = wit::MESSAGING;

/// The instance calls go to.
const CONSUMER: &str = "wasmcloud:messaging/consumer@0.2.0";

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/messaging",
        world: "imports",
        imports: { default: async | trappable },
    });
}

#[allow(missing_docs, clippy::all)]
mod wire {
    wit_bindgen_wrpc::generate!({
        world: "imports",
        path: "../wit/messaging",
    });
}

use bindings::wasmcloud::messaging::consumer::{BrokerMessage, Host};
use wire::wasmcloud::messaging::consumer as wire_consumer;
use wire::wasmcloud::messaging::types::BrokerMessage as WireMessage;

struct Messaging;

impl HasData for Messaging {
    type Data<'a> = MessagingView<'a>;
}

/// What the consumer functions borrow from the store's data.
struct MessagingView<'a> {
    ctx: &'a WrpcPluginCtx,
}

fn view<T: WrpcPluginView>(data: &mut T) -> MessagingView<'_> {
    MessagingView {
        ctx: data.wrpc_plugin().ctx,
    }
}

/// Adds `wasmcloud:messaging/{types,consumer}@0.2.0` to `linker`.
pub(crate) fn add_to_linker<T: WrpcPluginView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<T, Messaging>(linker, view::<T>)
}

impl MessagingView<'_> {
    fn router(&self) -> &Router {
        &self.ctx.router
    }

    fn caller(&self) -> Arc<Caller> {
        Arc::clone(&self.ctx.caller)
    }

    /// The guest's view of a wire call's outcome: the extension's error
    /// passes through; a failed call becomes an error naming the call.
    fn finish<T>(
        &self,
        func: &str,
        outcome: anyhow::Result<Result<T, String>>,
    ) -> Result<T, String> {
        outcome.unwrap_or_else(|err| {
            let err = self.router().call_error(CONSUMER, CONSUMER, func, &err);
            tracing::warn!("{err}");
            Err(err.to_string())
        })
    }
}

impl bindings::wasmcloud::messaging::types::Host for MessagingView<'_> {}

impl Host for MessagingView<'_> {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<BrokerMessage, String>> {
        // The call waits for the answer by design: its deadline is the
        // route's plus the request's own timeout.
        let extended = Extended {
            router: self.router(),
            extra: Duration::from_millis(u64::from(timeout_ms)),
        };
        let res = wire_consumer::request(
            &extended,
            self.caller(),
            &subject,
            &Bytes::from(body),
            timeout_ms,
        )
        .await;
        Ok(self.finish("request", res).map(|msg| BrokerMessage {
            subject: msg.subject,
            body: msg.body.into(),
            reply_to: msg.reply_to,
        }))
    }

    async fn publish(&mut self, msg: BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let msg = WireMessage {
            subject: msg.subject,
            body: msg.body.into(),
            reply_to: msg.reply_to,
        };
        let res = wire_consumer::publish(self.router(), self.caller(), &msg).await;
        Ok(self.finish("publish", res))
    }
}
