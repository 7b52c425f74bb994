//! `wasi:blobstore@0.2.0-draft` for guests, served in the host: containers,
//! object bodies and name listings are host resources, and each call goes
//! out as the flat `wrpc:blobstore@0.2.0` call, with bodies and listings
//! streamed both ways in bounded memory (see [`body`]).
//!
//! Memory per transfer is bounded by constants: a body being written holds
//! at most [`body::PIPE_BYTES`] in the host, plus what the transport buffers
//! per stream (256 KiB on TCP, Unix and WebSocket; a 1 MiB window on NATS);
//! a body being read holds one transport read
//! ([`transport::async_values::READ_SIZE`]) plus
//! the transport's buffer. Only `incoming-value-consume-sync` holds a whole
//! body, up to the limit on synchronous values (`--max-frame`).

mod body;
mod store;
mod values;
mod wire;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt as _;
use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::{Caller, Incoming, Outgoing, Router, WrpcPluginCtx, WrpcPluginView};

pub(crate) use wire::INSTANCE;

/// The WIT packages that type the wire calls, dependencies first.
pub(crate) const WIRE_WIT: &[wit::Package] =
    &[wit::WASI_IO, wit::WASI_BLOBSTORE, wit::WRPC_BLOBSTORE];

/// The guest package's version.
const VERSION: &str = "0.2.0-draft";

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/io", "../wit/blobstore"],
        world: "wasi:blobstore/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/container.container": super::Container,
            "wasi:blobstore/container.stream-object-names": super::ObjectNames,
            "wasi:blobstore/types.outgoing-value": super::OutgoingValue,
            "wasi:blobstore/types.incoming-value": super::IncomingValue,
        },
    });
}

/// An open container: only its name, since the wire interface is stateless.
pub struct Container {
    name: String,
}

/// A body being written: the pipe the guest's output stream fills, and the
/// wire call once `container.write-data` started it.
pub struct OutgoingValue {
    pipe: Arc<body::Pipe>,
    body_taken: bool,
    /// The task sending the body and waiting for the extension's verdict.
    writing: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Drop for OutgoingValue {
    fn drop(&mut self) {
        // Unfinished: the call ends without the body's end marker, so the
        // extension discards the object (a no-op after `finish`).
        self.pipe.abandon();
        if let Some(writing) = self.writing.take() {
            writing.abort();
        }
    }
}

/// A body being read, and what `size` needs to look the object up.
pub struct IncomingValue {
    reader: body::BodyReader,
    container: String,
    object: String,
    start: u64,
    end: u64,
}

/// A container's object names, read from the wire as the guest asks.
pub struct ObjectNames {
    /// Names that arrived inline with the results, or were read ahead.
    inline: VecDeque<String>,
    stream: Option<transport::async_values::Chunks>,
    status: body::Status,
    /// Set once the listing ended: `Ok` for a complete one.
    ended: Option<Result<(), String>>,
}

struct Blobstore;

impl HasData for Blobstore {
    type Data<'a> = BlobstoreView<'a>;
}

/// What the blobstore host functions borrow from the store's data.
struct BlobstoreView<'a> {
    ctx: &'a WrpcPluginCtx,
    table: &'a mut ResourceTable,
}

fn view<T: WrpcPluginView>(data: &mut T) -> BlobstoreView<'_> {
    let view = data.wrpc_plugin();
    BlobstoreView {
        ctx: view.ctx,
        table: view.table,
    }
}

/// Adds `wasi:blobstore/{blobstore,container,types}@0.2.0-draft` to `linker`
/// (the host provides `wasi:io` itself).
pub(crate) fn add_to_linker<T: WrpcPluginView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    bindings::wasi::blobstore::types::add_to_linker::<T, Blobstore>(linker, view::<T>)?;
    bindings::wasi::blobstore::container::add_to_linker::<T, Blobstore>(linker, view::<T>)?;
    bindings::wasi::blobstore::blobstore::add_to_linker::<T, Blobstore>(linker, view::<T>)?;
    Ok(())
}

/// Result paths of a call answering `result<tuple<stream, future>, string>`.
const STREAM_AND_FUTURE: &[&[Option<usize>]] = &[&[Some(0), Some(0)], &[Some(0), Some(1)]];

/// Result paths of a call answering `result<future, string>`.
const FUTURE: &[&[Option<usize>]] = &[&[Some(0)]];

impl<'a> BlobstoreView<'a> {
    /// What wire calls need, without the (non-`Sync`) resource table.
    fn wire(&self) -> Wire<'a> {
        Wire { ctx: self.ctx }
    }
}

/// Makes wire calls for one store.
#[derive(Clone, Copy)]
struct Wire<'a> {
    ctx: &'a WrpcPluginCtx,
}

impl<'a> Wire<'a> {
    fn router(self) -> &'a Router {
        &self.ctx.router
    }

    fn caller(self) -> Arc<Caller> {
        Arc::clone(&self.ctx.caller)
    }

    /// What values from the extension may declare (as the transport checks).
    fn limits(self) -> transport::schema::ValueLimits {
        self.router().limits().value()
    }

    /// A failed wire call as the guest's error string, naming the guest
    /// interface, the function and the target.
    fn failed(self, interface: &str, func: &str, err: &anyhow::Error) -> String {
        let guest = format!("wasi:blobstore/{interface}@{VERSION}");
        let err = self.router().call_error(INSTANCE, &guest, func, err);
        tracing::warn!("{err}");
        err.to_string()
    }

    /// A synchronous wire call: `Ok(Err(…))` is the extension's error value.
    async fn call<P, R>(
        self,
        interface: &str,
        func: &str,
        wire_func: &str,
        params: P,
    ) -> Result<R, String>
    where
        P: wrpc_transport::TupleEncode<Outgoing> + Send,
        (Result<R, String>,): wrpc_transport::TupleDecode<Incoming> + Send,
        <P::Encoder as tokio_util::codec::Encoder<P>>::Error:
            std::error::Error + Send + Sync + 'static,
        <<(Result<R, String>,) as wrpc_transport::Decode<Incoming>>::Decoder as tokio_util::codec::Decoder>::Error:
            std::error::Error + Send + Sync + 'static,
    {
        use wrpc_transport::InvokeExt as _;
        let res = self
            .router()
            .invoke_values_blocking::<_, P, (Result<R, String>,)>(
                self.caller(),
                INSTANCE,
                wire_func,
                params,
                &[] as &[&[Option<usize>]],
            )
            .await;
        match res {
            Ok((outcome,)) => outcome,
            Err(err) => Err(self.failed(interface, func, &err)),
        }
    }

    /// Starts a wire call whose results carry async values: sends `params`
    /// (complete unless the call streams parameters) and reads the
    /// synchronous results whole (bounded by the call's deadline and the
    /// result limits). Returns them with the call's streams.
    async fn start(
        self,
        wire_func: &str,
        params: Bytes,
        result_paths: &[&[Option<usize>]],
    ) -> anyhow::Result<(Vec<u8>, Outgoing, Incoming)> {
        use tokio::io::AsyncWriteExt as _;
        use wrpc_transport::Invoke as _;
        let (mut tx, mut rx) = self
            .router()
            .invoke(self.caller(), INSTANCE, wire_func, params, result_paths)
            .await?;
        // The synchronous parameters are complete (streamed ones follow on
        // their own paths).
        tx.shutdown().await?;
        let mut results = Vec::new();
        rx.read_to_end(&mut results).await?;
        Ok((results, tx, rx))
    }
}

/// A wire call's parameters that begin with an object id.
fn object_params(container: &str, object: &str) -> anyhow::Result<bytes::BytesMut> {
    Ok(wire::object_id(container, object)?)
}
