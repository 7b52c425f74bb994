//! Server side of the `wrpc:blobstore@0.2.0` wire package (feature `blobstore`).
//!
//! Implement [`Handler`] and run it with [`serve`]. Every call names its
//! container (and object), so any replica can serve any call. Object bodies
//! are streams with bounded buffers both ways: [`IncomingBytes`] for a body
//! being written, [`OutgoingBytes`] for one being read, each paired with a
//! [`Completion`] that tells the caller whether the stream was whole (the
//! stream alone cannot show that it was cut short).
//!
//! ```no_run
//! # async fn example(args: sdk::ServeArgs, handler: impl sdk::blobstore::Handler) -> Result<(), sdk::ServeError> {
//! sdk::Extension::new("my-blobstore", args)
//!     .run(sdk::blobstore::serve(handler))
//!     .await
//! # }
//! ```

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use tokio::sync::oneshot;

use crate::dispatch::{Functions, RegisterError};
use crate::{CallerContext, Exports, IncomingBytes, OutgoingBytes, OutgoingStream};

/// The packages that type the functions: `wasi:io`, `wasi:blobstore` and the
/// wire package `wrpc:blobstore`.
pub const WIT: &[wit::Package] = &[wit::WASI_IO, wit::WASI_BLOBSTORE, wit::WRPC_BLOBSTORE];

/// The wire instance.
pub const INSTANCE: &str = "wrpc:blobstore/blobstore@0.2.0";

/// An object: its container and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// The container's name, as the caller gives it.
    pub container: String,
    /// The object's name.
    pub object: String,
}

impl From<(String, String)> for ObjectId {
    fn from((container, object): (String, String)) -> Self {
        Self { container, object }
    }
}

/// What is known about a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerMetadata {
    /// When it was created, in seconds since the Unix epoch.
    pub created_at: u64,
}

/// What is known about an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectMetadata {
    /// When it was created (last written), in seconds since the Unix epoch.
    pub created_at: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// Resolves when a streamed transfer is over: `Ok` once every byte went
/// through, `Err` with the reason otherwise.
pub type Completion = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A handler's answer: `Ok(Err(…))` is the interface's error value, sent to
/// the caller; `Err(…)` fails the call itself.
pub type Outcome<T> = anyhow::Result<Result<T, String>>;

/// A type serving the whole `wrpc:blobstore/blobstore` interface.
pub trait Handler: Clone + Send + Sync + 'static {
    /// Deletes every object of container `name`, keeping the container.
    fn clear_container(
        &self,
        cx: CallerContext,
        name: String,
    ) -> impl Future<Output = Outcome<()>> + Send;

    /// Whether container `name` exists.
    fn container_exists(
        &self,
        cx: CallerContext,
        name: String,
    ) -> impl Future<Output = Outcome<bool>> + Send;

    /// Creates container `name`.
    fn create_container(
        &self,
        cx: CallerContext,
        name: String,
    ) -> impl Future<Output = Outcome<()>> + Send;

    /// Deletes container `name` with its objects.
    fn delete_container(
        &self,
        cx: CallerContext,
        name: String,
    ) -> impl Future<Output = Outcome<()>> + Send;

    /// What is known about container `name`.
    fn get_container_info(
        &self,
        cx: CallerContext,
        name: String,
    ) -> impl Future<Output = Outcome<ContainerMetadata>> + Send;

    /// The object names of container `name`, skipping `offset` names and
    /// stopping after `limit` (see [`tracked`] to build the pair).
    fn list_container_objects(
        &self,
        cx: CallerContext,
        name: String,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> impl Future<Output = Outcome<(OutgoingStream<String>, Completion)>> + Send;

    /// Copies object `src` to `dest`.
    fn copy_object(
        &self,
        cx: CallerContext,
        src: ObjectId,
        dest: ObjectId,
    ) -> impl Future<Output = Outcome<()>> + Send;

    /// Deletes object `id`.
    fn delete_object(
        &self,
        cx: CallerContext,
        id: ObjectId,
    ) -> impl Future<Output = Outcome<()>> + Send;

    /// Deletes `objects` of `container`.
    fn delete_objects(
        &self,
        cx: CallerContext,
        container: String,
        objects: Vec<String>,
    ) -> impl Future<Output = Outcome<()>> + Send;

    /// The bytes of object `id` from offset `start` to offset `end`, both
    /// included (see [`tracked`] to build the pair).
    fn get_container_data(
        &self,
        cx: CallerContext,
        id: ObjectId,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Outcome<(OutgoingBytes, Completion)>> + Send;

    /// What is known about object `id`.
    fn get_object_info(
        &self,
        cx: CallerContext,
        id: ObjectId,
    ) -> impl Future<Output = Outcome<ObjectMetadata>> + Send;

    /// Whether object `id` exists.
    fn has_object(
        &self,
        cx: CallerContext,
        id: ObjectId,
    ) -> impl Future<Output = Outcome<bool>> + Send;

    /// Moves object `src` to `dest`.
    fn move_object(
        &self,
        cx: CallerContext,
        src: ObjectId,
        dest: ObjectId,
    ) -> impl Future<Output = Outcome<()>> + Send;

    /// Writes object `id` from `data`. Answer at once with a [`Completion`]
    /// that reads the body and stores it: the caller sends the body only
    /// after it has the answer. The object must not become visible unless
    /// `data` ended cleanly (it yields `Err` when the caller went away).
    fn write_container_data(
        &self,
        cx: CallerContext,
        id: ObjectId,
        data: IncomingBytes,
    ) -> impl Future<Output = Outcome<Completion>> + Send;
}

/// The blobstore exports of `handler`, for [`crate::Extension::run`].
pub fn serve<H: Handler>(handler: H) -> impl Exports {
    Blobstore(handler)
}

struct Blobstore<H>(H);

/// Serves `INSTANCE.$name` with `$body`, given the handler and the decoded
/// parameters; the outcome becomes the single result.
macro_rules! function {
    ($fns:expr, $handler:expr, $name:literal, |$h:ident, $cx:ident, ($($p:ident: $t:ty),*)| $body:expr) => {{
        let handler = $handler.clone();
        $fns.serve(INSTANCE, $name, move |$cx: CallerContext, ($($p,)*): ($($t,)*)| {
            let $h = handler.clone();
            async move { Ok(($body.await?,)) }
        })
    }};
}

impl<H: Handler> Exports for Blobstore<H> {
    fn register(&self, fns: &mut Functions) -> Result<(), RegisterError> {
        fns.add_wit(WIT)?;
        fns.export(&[INSTANCE])?;
        let h = &self.0;
        function!(fns, h, "clear-container", |h, cx, (name: String)| h.clear_container(cx, name))?;
        function!(fns, h, "container-exists", |h, cx, (name: String)| h.container_exists(cx, name))?;
        function!(fns, h, "create-container", |h, cx, (name: String)| h.create_container(cx, name))?;
        function!(fns, h, "delete-container", |h, cx, (name: String)| h.delete_container(cx, name))?;
        function!(fns, h, "get-container-info", |h, cx, (name: String)| async move {
            Ok::<_, anyhow::Error>(h.get_container_info(cx, name).await?.map(|m| m.created_at))
        })?;
        function!(fns, h, "list-container-objects", |h, cx, (name: String, limit: Option<u64>, offset: Option<u64>)| {
            h.list_container_objects(cx, name, limit, offset)
        })?;
        function!(fns, h, "copy-object", |h, cx, (src: (String, String), dest: (String, String))| {
            h.copy_object(cx, src.into(), dest.into())
        })?;
        function!(fns, h, "delete-object", |h, cx, (id: (String, String))| h.delete_object(cx, id.into()))?;
        function!(fns, h, "delete-objects", |h, cx, (container: String, objects: Vec<String>)| {
            h.delete_objects(cx, container, objects)
        })?;
        function!(fns, h, "get-container-data", |h, cx, (id: (String, String), start: u64, end: u64)| {
            h.get_container_data(cx, id.into(), start, end)
        })?;
        function!(fns, h, "get-object-info", |h, cx, (id: (String, String))| async move {
            Ok::<_, anyhow::Error>(h.get_object_info(cx, id.into()).await?.map(|m| (m.created_at, m.size)))
        })?;
        function!(fns, h, "has-object", |h, cx, (id: (String, String))| h.has_object(cx, id.into()))?;
        function!(fns, h, "move-object", |h, cx, (src: (String, String), dest: (String, String))| {
            h.move_object(cx, src.into(), dest.into())
        })?;
        function!(fns, h, "write-container-data", |h, cx, (id: (String, String), data: IncomingBytes)| {
            h.write_container_data(cx, id.into(), data)
        })?;
        Ok(())
    }
}

/// Splits a fallible source into the stream to send and the [`Completion`]
/// that tells the caller how it ended: `Ok` after the last item, the error
/// of the first `Err` item (which ends the stream), or an error when the
/// stream is dropped before its end (the caller went away, a write failed).
pub fn tracked<T, S>(source: S) -> (Pin<Box<dyn Stream<Item = T> + Send>>, Completion)
where
    T: Send + 'static,
    S: Stream<Item = Result<T, String>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let stream = Tracked {
        source: Box::pin(source),
        done: Some(tx),
    };
    let completion = Box::pin(async move {
        rx.await
            .unwrap_or_else(|_| Err("the transfer stopped before its end".to_string()))
    });
    (Box::pin(stream), completion)
}

/// A byte body for [`Handler::get_container_data`] (see [`tracked`]).
pub fn body<S>(source: S) -> (OutgoingBytes, Completion)
where
    S: Stream<Item = Result<Bytes, String>> + Send + 'static,
{
    let (stream, completion) = tracked(source);
    (OutgoingBytes(stream), completion)
}

/// Batches of names for [`Handler::list_container_objects`] (see [`tracked`]).
pub fn names<S>(source: S) -> (OutgoingStream<String>, Completion)
where
    S: Stream<Item = Result<Vec<String>, String>> + Send + 'static,
{
    let (stream, completion) = tracked(source);
    (OutgoingStream(stream), completion)
}

struct Tracked<T> {
    source: Pin<Box<dyn Stream<Item = Result<T, String>> + Send>>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

impl<T> Stream for Tracked<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if this.done.is_none() {
            return Poll::Ready(None);
        }
        match this.source.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(item))) => Poll::Ready(Some(item)),
            Poll::Ready(Some(Err(why))) => {
                if let Some(done) = this.done.take() {
                    let _ = done.send(Err(why));
                }
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                if let Some(done) = this.done.take() {
                    let _ = done.send(Ok(()));
                }
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::tracked;

    #[tokio::test]
    async fn completion_tells_how_the_stream_ended() {
        let (stream, done) = tracked(futures::stream::iter([Ok(1), Ok(2)]));
        assert_eq!(stream.collect::<Vec<_>>().await, [1, 2]);
        assert_eq!(done.await, Ok(()));

        let (stream, done) = tracked(futures::stream::iter([
            Ok(1),
            Err("S3 broke".into()),
            Ok(3),
        ]));
        assert_eq!(stream.collect::<Vec<_>>().await, [1]);
        assert_eq!(done.await, Err("S3 broke".to_string()));

        let (mut stream, done) = tracked(futures::stream::iter([Ok::<_, String>(1), Ok(2)]));
        assert_eq!(stream.next().await, Some(1));
        drop(stream);
        assert!(done.await.unwrap_err().contains("before its end"));
    }
}
