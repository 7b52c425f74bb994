//! Futures and streams between a guest's store and a call's paths: what a
//! guest passes is piped out to the wire, what arrives is made a future or
//! stream the guest reads. Each direction holds at most a couple of chunks
//! ([`READ_SIZE`] bytes for `stream<u8>`), so memory stays bounded whatever
//! the stream's length; a slow side holds the other back.

use core::pin::Pin;
use core::task::{Context, Poll};

use std::io;

use bytes::{Buf as _, Bytes};
use tokio::io::AsyncReadExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;
use tracing::warn;
use transport::async_values::{
    end_stream, read_future, write_bytes, write_future, write_items, ByteChunks, Chunks, READ_SIZE,
};
use transport::schema::codec::Chunk;
use transport::schema::val::{AsyncVal, ToVal};
use transport::schema::{Type, ValueLimits};
use transport::{Incoming, Outgoing};
use wasmtime::component::{
    Destination, FutureConsumer, FutureReader, Source, StreamConsumer, StreamProducer,
    StreamReader, StreamResult, Val, VecBuffer,
};
use wasmtime::{AsContextMut, StoreContextMut};
use wrpc_transport::Index as _;

use super::payload::{dispatch, Payload, Visit};

/// Chunks in flight between a store and a task, each way.
const IN_FLIGHT: usize = 2;

/// Items of a typed stream per chunk.
const ITEMS_PER_CHUNK: usize = 1024;

fn refused(ty: &Type) -> String {
    format!("{ty} cannot be carried (see the plugin's payload list)")
}

/// Sends the contents of the guest's future or stream `value` (of type
/// `ty`) on `out`, from a task of its own; the task ends when the guest
/// has written everything (or gave up), and needs the store's event loop
/// running until then.
///
/// # Errors
///
/// The value is not a future or stream of `ty`'s payload.
pub fn send(
    mut store: impl AsContextMut,
    ty: &Type,
    value: &Val,
    out: Outgoing,
) -> Result<JoinHandle<()>, String> {
    match (ty, value) {
        (Type::Stream(Some(elem)), Val::Stream(stream)) if **elem == Type::U8 => {
            let reader = stream
                .clone()
                .try_into_stream_reader::<u8>()
                .map_err(|e| format!("{e:#}"))?;
            let (tx, rx) = mpsc::channel(IN_FLIGHT);
            reader
                .pipe(store.as_context_mut(), ByteConsumer(PollSender::new(tx)))
                .map_err(|e| format!("{e:#}"))?;
            Ok(tokio::spawn(send_bytes(rx, out)))
        }
        (Type::Stream(elem), Val::Stream(stream)) => {
            struct Pipe<'a, S> {
                store: S,
                stream: &'a wasmtime::component::StreamAny,
                elem: Option<Type>,
                out: Outgoing,
            }
            impl<S: AsContextMut> Visit for Pipe<'_, S> {
                type Out = Result<JoinHandle<()>, String>;
                fn visit<T: Payload>(mut self) -> Self::Out {
                    let reader = self
                        .stream
                        .clone()
                        .try_into_stream_reader::<T>()
                        .map_err(|e| format!("{e:#}"))?;
                    let (tx, rx) = mpsc::channel(IN_FLIGHT);
                    reader
                        .pipe(
                            self.store.as_context_mut(),
                            ItemConsumer(PollSender::new(tx)),
                        )
                        .map_err(|e| format!("{e:#}"))?;
                    Ok(tokio::spawn(send_items(rx, self.elem, self.out)))
                }
            }
            let pipe = Pipe {
                store,
                stream,
                elem: elem.as_deref().cloned(),
                out,
            };
            dispatch(elem.as_deref(), pipe).ok_or_else(|| refused(ty))?
        }
        (Type::Future(payload), Val::Future(future)) => {
            struct Pipe<'a, S> {
                store: S,
                future: &'a wasmtime::component::FutureAny,
                payload: Option<Type>,
                out: Outgoing,
            }
            impl<S: AsContextMut> Visit for Pipe<'_, S> {
                type Out = Result<JoinHandle<()>, String>;
                fn visit<T: Payload>(mut self) -> Self::Out {
                    let reader = self
                        .future
                        .clone()
                        .try_into_future_reader::<T>()
                        .map_err(|e| format!("{e:#}"))?;
                    let (tx, rx) = oneshot::channel();
                    reader
                        .pipe(self.store.as_context_mut(), OneConsumer(Some(tx)))
                        .map_err(|e| format!("{e:#}"))?;
                    Ok(tokio::spawn(send_future(rx, self.payload, self.out)))
                }
            }
            let pipe = Pipe {
                store,
                future,
                payload: payload.as_deref().cloned(),
                out,
            };
            dispatch(payload.as_deref(), pipe).ok_or_else(|| refused(ty))?
        }
        _ => Err(format!("expected {ty}")),
    }
}

async fn send_bytes(mut rx: mpsc::Receiver<Bytes>, mut out: Outgoing) {
    let sent = async {
        while let Some(bytes) = rx.recv().await {
            write_bytes(&mut out, &bytes).await?;
        }
        end_stream(&mut out).await
    };
    if let Err(err) = sent.await {
        warn!("a stream<u8> could not be sent: {err}");
    }
}

async fn send_items<T: Payload>(
    mut rx: mpsc::Receiver<Vec<T>>,
    elem: Option<Type>,
    mut out: Outgoing,
) {
    let sent = async {
        while let Some(items) = rx.recv().await {
            match &elem {
                Some(elem) => {
                    let vals: Vec<Val> = items.into_iter().map(T::into_val).collect();
                    write_items(&mut out, elem, &vals).await?;
                }
                None => {
                    // `stream` without a type: a chunk is only its count.
                    let mut head = bytes::BytesMut::new();
                    let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
                    transport::frame::put_leb_u32(&mut head, n);
                    tokio::io::AsyncWriteExt::write_all(&mut out, &head).await?;
                }
            }
        }
        end_stream(&mut out).await
    };
    if let Err(err) = sent.await {
        warn!("a stream could not be sent: {err}");
    }
}

async fn send_future<T: Payload>(
    rx: oneshot::Receiver<T>,
    payload: Option<Type>,
    mut out: Outgoing,
) {
    let Ok(value) = rx.await else {
        // The guest dropped the future without writing it: so does the call.
        return;
    };
    let value = value.into_val();
    if let Err(err) = write_future(&mut out, payload.as_ref(), Some(&value)).await {
        warn!("a future could not be sent: {err}");
    }
}

/// Makes the future or stream of type `ty` that the decoder found: `part`
/// says whether it came whole or follows on a path of `rx`.
///
/// # Errors
///
/// Its payload cannot be carried, or the store refused it.
pub fn receive(
    mut store: StoreContextMut<'_, impl Send + 'static>,
    ty: &Type,
    part: AsyncVal,
    rx: &Incoming,
    limits: ValueLimits,
) -> Result<Val, String> {
    let trap = |e: wasmtime::Error| format!("{e:#}");
    let child = |path: &[usize]| rx.index(path).map_err(|e| format!("{e:#}"));
    match (ty, part) {
        (Type::Stream(Some(elem)), AsyncVal::Pending(path)) if **elem == Type::U8 => {
            let (tx, chunks) = mpsc::channel(IN_FLIGHT);
            tokio::spawn(receive_bytes(ByteChunks::new(child(&path)?), tx));
            let reader = StreamReader::new(
                &mut store,
                ByteProducer {
                    rx: chunks,
                    current: Bytes::new(),
                },
            )
            .map_err(trap)?;
            Ok(Val::Stream(
                reader.try_into_stream_any(&mut store).map_err(trap)?,
            ))
        }
        (Type::Stream(elem), part) => {
            struct Make<'s, S: 'static> {
                store: StoreContextMut<'s, S>,
                source: Result<Chunks, Val>,
            }
            impl<S: 'static + Send> Visit for Make<'_, S> {
                type Out = Result<Val, String>;
                fn visit<T: Payload>(mut self) -> Self::Out {
                    let trap = |e: wasmtime::Error| format!("{e:#}");
                    let reader = match self.source {
                        Ok(chunks) => {
                            let (tx, rx) = mpsc::channel(IN_FLIGHT);
                            tokio::spawn(receive_items::<T>(chunks, tx));
                            StreamReader::new(&mut self.store, ItemProducer { rx })
                        }
                        Err(list) => {
                            let items =
                                Vec::<T>::from_val(list).ok_or("a stream of other items")?;
                            StreamReader::new(&mut self.store, items)
                        }
                    }
                    .map_err(trap)?;
                    Ok(Val::Stream(
                        reader.try_into_stream_any(&mut self.store).map_err(trap)?,
                    ))
                }
            }
            let source = match part {
                AsyncVal::Pending(path) => {
                    Ok(Chunks::new(child(&path)?, elem.as_deref().cloned(), limits))
                }
                AsyncVal::Inline(list) => Err(list),
                AsyncVal::Ready(_) => return Err(format!("a ready value for {ty}")),
            };
            dispatch(elem.as_deref(), Make { store, source }).ok_or_else(|| refused(ty))?
        }
        (Type::Future(payload), part) => {
            struct Make<'s, S: 'static> {
                store: StoreContextMut<'s, S>,
                value: Result<oneshot::Receiver<io::Result<Val>>, Option<Val>>,
            }
            impl<S: 'static + Send> Visit for Make<'_, S> {
                type Out = Result<Val, String>;
                fn visit<T: Payload>(mut self) -> Self::Out {
                    let trap = |e: wasmtime::Error| format!("{e:#}");
                    let value = async move {
                        let val = match self.value {
                            Ok(rx) => rx
                                .await
                                .map_err(|_| wasmtime::format_err!("the call ended first"))?
                                .map_err(wasmtime::Error::from)?,
                            Err(ready) => ready.unwrap_or(Val::Tuple(Vec::new())),
                        };
                        T::from_val(val)
                            .ok_or_else(|| wasmtime::format_err!("a future of another type"))
                    };
                    let reader = FutureReader::new(&mut self.store, value).map_err(trap)?;
                    Ok(Val::Future(
                        reader.try_into_future_any(&mut self.store).map_err(trap)?,
                    ))
                }
            }
            let value = match part {
                AsyncVal::Pending(path) => {
                    let (tx, rx) = oneshot::channel();
                    let r = child(&path)?;
                    let payload = payload.as_deref().cloned();
                    tokio::spawn(async move {
                        let _ = tx.send(receive_future(r, payload, limits).await);
                    });
                    Ok(rx)
                }
                AsyncVal::Ready(value) => Err(value),
                AsyncVal::Inline(_) => return Err(format!("an inline stream for {ty}")),
            };
            dispatch(payload.as_deref(), Make { store, value }).ok_or_else(|| refused(ty))?
        }
        _ => Err(format!("{ty} is not a future or stream")),
    }
}

async fn receive_bytes(mut chunks: ByteChunks, tx: mpsc::Sender<io::Result<Bytes>>) {
    loop {
        let next = chunks.next(READ_SIZE).await;
        let last = !matches!(next, Ok(Some(_)));
        let sent = match next {
            Ok(Some(bytes)) => tx.send(Ok(bytes)).await,
            Ok(None) => return,
            Err(err) => tx.send(Err(err)).await,
        };
        if sent.is_err() || last {
            return;
        }
    }
}

async fn receive_items<T: Payload>(mut chunks: Chunks, tx: mpsc::Sender<io::Result<Vec<T>>>) {
    loop {
        let mut refuse = |ty: &Type, _: AsyncVal| Err(format!("{ty} inside a stream's element"));
        let next = chunks
            .next(&mut ToVal {
                asyncs: &mut refuse,
            })
            .await;
        let items = match next {
            Ok(Some(Chunk::Items(vals))) => vals
                .into_iter()
                .map(T::from_val)
                .collect::<Option<Vec<T>>>()
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "an element of another type")
                }),
            Ok(Some(Chunk::Units(n))) => Ok((0..n)
                .filter_map(|_| T::from_val(Val::Tuple(Vec::new())))
                .collect()),
            Ok(Some(Chunk::Bytes(b))) => Ok(b
                .into_iter()
                .filter_map(|b| T::from_val(Val::U8(b)))
                .collect()),
            Ok(None) => return,
            Err(err) => Err(err),
        };
        let failed = items.is_err();
        if tx.send(items).await.is_err() || failed {
            return;
        }
    }
}

async fn receive_future(
    r: Incoming,
    payload: Option<Type>,
    limits: ValueLimits,
) -> io::Result<Val> {
    match payload {
        Some(ty) => {
            let mut refuse = |ty: &Type, _: AsyncVal| Err(format!("{ty} inside a future's value"));
            read_future(
                r,
                &ty,
                &limits,
                &mut ToVal {
                    asyncs: &mut refuse,
                },
            )
            .await
        }
        None => {
            // A future without a value resolves when its path ends.
            let mut r = r;
            r.read_to_end(&mut Vec::new()).await?;
            Ok(Val::Tuple(Vec::new()))
        }
    }
}

/// Feeds a guest's `stream<u8>` from chunks arriving on the wire.
struct ByteProducer {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl<D> StreamProducer<D> for ByteProducer {
    type Item = u8;
    type Buffer = VecBuffer<u8>;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<'a, D>,
        dst: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let this = &mut *self;
        while this.current.is_empty() {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.current = bytes,
                Poll::Ready(Some(Err(err))) => {
                    warn!("a stream<u8> broke off: {err}");
                    return Poll::Ready(Ok(StreamResult::Dropped));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(StreamResult::Dropped)),
                Poll::Pending if finish => return Poll::Ready(Ok(StreamResult::Cancelled)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // A zero-length read asks whether bytes are ready: they are.
        if dst.remaining(&mut store) == Some(0) {
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        let mut dst = dst.as_direct(store, this.current.len());
        let buf = dst.remaining();
        let n = buf.len().min(this.current.len());
        buf[..n].copy_from_slice(&this.current[..n]);
        dst.mark_written(n);
        this.current.advance(n);
        Poll::Ready(Ok(StreamResult::Completed))
    }
}

/// Feeds a guest's `stream<T>` from chunks arriving on the wire.
struct ItemProducer<T> {
    rx: mpsc::Receiver<io::Result<Vec<T>>>,
}

impl<D, T: Payload> StreamProducer<D> for ItemProducer<T> {
    type Item = T;
    type Buffer = VecBuffer<T>;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        _: StoreContextMut<'a, D>,
        mut dst: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(items))) => {
                dst.set_buffer(VecBuffer::from(items));
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Poll::Ready(Some(Err(err))) => {
                warn!("a stream broke off: {err}");
                Poll::Ready(Ok(StreamResult::Dropped))
            }
            Poll::Ready(None) => Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Takes the bytes a guest writes to a `stream<u8>`, for the wire.
struct ByteConsumer(PollSender<Bytes>);

impl<D> StreamConsumer<D> for ByteConsumer {
    type Item = u8;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        store: StoreContextMut<D>,
        src: Source<Self::Item>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        match self.0.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => return Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => return Poll::Pending,
        }
        let mut src = src.as_direct(store);
        let data = src.remaining();
        if data.is_empty() {
            // A zero-length write asks whether there is room: there is.
            self.0.abort_send();
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        let n = data.len().min(READ_SIZE);
        let bytes = Bytes::copy_from_slice(&data[..n]);
        src.mark_read(n);
        if self.0.send_item(bytes).is_err() {
            return Poll::Ready(Ok(StreamResult::Dropped));
        }
        Poll::Ready(Ok(StreamResult::Completed))
    }
}

/// Takes the items a guest writes to a `stream<T>`, for the wire.
struct ItemConsumer<T>(PollSender<Vec<T>>);

impl<D, T: Payload> StreamConsumer<D> for ItemConsumer<T> {
    type Item = T;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<D>,
        mut src: Source<Self::Item>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        match self.0.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => return Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => return Poll::Pending,
        }
        let n = src.remaining(&mut store).min(ITEMS_PER_CHUNK);
        if n == 0 {
            self.0.abort_send();
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        let mut items = Vec::with_capacity(n);
        src.read(&mut store, &mut items)?;
        if self.0.send_item(items).is_err() {
            return Poll::Ready(Ok(StreamResult::Dropped));
        }
        Poll::Ready(Ok(StreamResult::Completed))
    }
}

/// Takes the value a guest writes to a future, for the wire.
struct OneConsumer<T>(Option<oneshot::Sender<T>>);

impl<D, T: Payload> FutureConsumer<D> for OneConsumer<T> {
    type Item = T;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        store: StoreContextMut<D>,
        mut src: Source<'_, Self::Item>,
        _: bool,
    ) -> Poll<wasmtime::Result<()>> {
        let mut value = None;
        src.read(store, &mut value)?;
        if let (Some(value), Some(tx)) = (value, self.0.take()) {
            let _ = tx.send(value);
        }
        Poll::Ready(Ok(()))
    }
}
