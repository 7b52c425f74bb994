//! `wasi:keyvalue@0.2.0-draft` for guests, served in the host: the bucket
//! resource lives here, and each call goes out as the flat
//! `wrpc:keyvalue@0.2.0-draft` call with the bucket's name.

mod atomics;
mod batch;
mod store;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::{Caller, Router, WrpcPluginCtx, WrpcPluginView};

/// The wire package's WIT, which types its calls.
pub(crate) const WIRE_WIT: wit::Package = wit::WRPC_KEYVALUE;

/// The version of both packages.
const VERSION: &str = "0.2.0-draft";

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/keyvalue",
        world: "imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

#[allow(missing_docs, clippy::all)]
mod wire {
    wit_bindgen_wrpc::generate!({
        world: "imports",
        path: "../wit/wrpc-keyvalue",
    });
}

use bindings::wasi::keyvalue::store::Error;
use wire::wrpc::keyvalue::store::Error as WireError;

/// An open bucket: only its name, since the wire interface is stateless.
pub struct Bucket {
    name: String,
}

struct Keyvalue;

impl HasData for Keyvalue {
    type Data<'a> = KeyvalueView<'a>;
}

/// What the keyvalue host functions borrow from the store's data.
struct KeyvalueView<'a> {
    ctx: &'a WrpcPluginCtx,
    table: &'a mut ResourceTable,
}

fn view<T: WrpcPluginView>(data: &mut T) -> KeyvalueView<'_> {
    let view = data.wrpc_plugin();
    KeyvalueView {
        ctx: view.ctx,
        table: view.table,
    }
}

/// Adds `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` to `linker`.
pub(crate) fn add_to_linker<T: WrpcPluginView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    bindings::wasi::keyvalue::store::add_to_linker::<T, Keyvalue>(linker, view::<T>)?;
    bindings::wasi::keyvalue::atomics::add_to_linker::<T, Keyvalue>(linker, view::<T>)?;
    bindings::wasi::keyvalue::batch::add_to_linker::<T, Keyvalue>(linker, view::<T>)?;
    Ok(())
}

impl KeyvalueView<'_> {
    fn router(&self) -> &Router {
        &self.ctx.router
    }

    fn caller(&self) -> Arc<Caller> {
        Arc::clone(&self.ctx.caller)
    }

    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.name.clone())
    }

    /// The guest's view of a wire call's outcome: the extension's own error
    /// value passes through; a failed call becomes [`call_failed`].
    fn finish<T>(
        &self,
        interface: &str,
        func: &str,
        outcome: anyhow::Result<Result<T, WireError>>,
    ) -> Result<T, Error> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(WireError::NoSuchStore)) => Err(Error::NoSuchStore),
            Ok(Err(WireError::AccessDenied)) => Err(Error::AccessDenied),
            Ok(Err(WireError::Other(msg))) => Err(Error::Other(msg)),
            Err(err) => {
                let wire = format!("wrpc:keyvalue/{interface}@{VERSION}");
                let guest = format!("wasi:keyvalue/{interface}@{VERSION}");
                let err = self.router().call_error(&wire, &guest, func, &err);
                tracing::warn!("{err}");
                Err(call_failed(&err))
            }
        }
    }
}

/// The one place a failed call becomes the guest's `error::other`.
fn call_failed(err: &crate::CallError) -> Error {
    Error::Other(err.to_string())
}
