//! `stream<u8>` values with bounded buffers, for parameters and results.
//!
//! wRPC's own byte-stream codecs buffer without bound: the decoder queues up
//! to 128 chunks of whatever size the sender declared, and the encoder keeps
//! pulling its source while a write is pending. These types hold at most one
//! transport read (parameters) or one chunk of [`CHUNK`] bytes (results) at a
//! time, so a slow reader slows the sender and a slow consumer slows the source.

use core::future::Future as _;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use std::io;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tokio_util::codec::{Decoder, Encoder};
use wrpc_transport::{Deferred, DeferredFn, Index};

/// Largest chunk a [`OutgoingBytes`] writes, and the read size of an [`IncomingBytes`].
pub const CHUNK: usize = 64 * 1024;

/// The most bytes of a `stream<u8>` result written at once: one NATS
/// message (stream transports split it into frames of their own size).
const WRITE_CHUNK: usize = 256 * 1024;

type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// A `stream<u8>` parameter, read from the call as the handler pulls it.
///
/// Yields `Err` if the stream breaks before its end marker (caller gone,
/// idle timeout): a short read is never mistaken for the whole body.
pub struct IncomingBytes {
    state: InState,
}

enum InState {
    Inline(Option<Bytes>),
    Waiting(oneshot::Receiver<Reader>),
    Reading {
        reader: Reader,
        buf: BytesMut,
        /// Bytes left in the current chunk; `None` between chunks.
        left: Option<u64>,
    },
    Done,
}

impl IncomingBytes {
    /// A stream of the given bytes, for tests and local calls.
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self {
            state: InState::Inline(Some(bytes)),
        }
    }

    /// Ends the stream at the first error, for APIs that take a plain
    /// `Stream<Item = Bytes>`; the error is logged.
    pub fn into_bytes(self) -> Pin<Box<dyn Stream<Item = Bytes> + Send>> {
        Box::pin(
            self.take_while(|item| {
                if let Err(err) = item {
                    tracing::warn!("streamed parameter failed: {err}");
                }
                core::future::ready(item.is_ok())
            })
            .filter_map(|item| core::future::ready(item.ok())),
        )
    }
}

/// Reads an unsigned LEB128 `u32` at the front of `buf`, if complete.
fn leb_u32(buf: &[u8]) -> io::Result<Option<(u32, usize)>> {
    transport::frame::leb_u32(buf, "chunk length").map_err(|_| bad("chunk length"))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed {what}"))
}

impl Stream for IncomingBytes {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                InState::Inline(bytes) => {
                    let bytes = bytes.take();
                    this.state = InState::Done;
                    return Poll::Ready(bytes.filter(|b| !b.is_empty()).map(Ok));
                }
                InState::Done => return Poll::Ready(None),
                InState::Waiting(rx) => {
                    let reader = ready!(Pin::new(rx).poll(cx)).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "the call ended before the stream was received",
                        )
                    });
                    match reader {
                        Ok(reader) => {
                            this.state = InState::Reading {
                                reader,
                                buf: BytesMut::new(),
                                left: None,
                            }
                        }
                        Err(err) => {
                            this.state = InState::Done;
                            return Poll::Ready(Some(Err(err)));
                        }
                    }
                }
                InState::Reading { reader, buf, left } => {
                    match left {
                        None => match leb_u32(buf) {
                            Ok(Some((0, n))) => {
                                buf.advance(n);
                                this.state = InState::Done;
                                continue;
                            }
                            Ok(Some((len, n))) => {
                                buf.advance(n);
                                *left = Some(len.into());
                                continue;
                            }
                            Ok(None) => {}
                            Err(err) => {
                                this.state = InState::Done;
                                return Poll::Ready(Some(Err(err)));
                            }
                        },
                        Some(remaining) if !buf.is_empty() => {
                            let n = buf
                                .len()
                                .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                            *remaining -= n as u64;
                            if *remaining == 0 {
                                *left = None;
                            }
                            return Poll::Ready(Some(Ok(buf.split_to(n).freeze())));
                        }
                        Some(_) => {}
                    }
                    if buf.capacity() - buf.len() < CHUNK / 4 {
                        if buf.is_empty() {
                            *buf = BytesMut::with_capacity(CHUNK);
                        } else {
                            buf.reserve(CHUNK);
                        }
                    }
                    let read = ready!(tokio_util::io::poll_read_buf(reader.as_mut(), cx, buf));
                    match read {
                        Ok(0) => {
                            this.state = InState::Done;
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the stream ended without its end marker",
                            ))));
                        }
                        Ok(_) => {}
                        Err(err) => {
                            this.state = InState::Done;
                            return Poll::Ready(Some(Err(err)));
                        }
                    }
                }
            }
        }
    }
}

/// Decodes an [`IncomingBytes`]: inline bytes, or a pending stream whose
/// reader is handed over when the call's deferred receivers run.
pub struct IncomingBytesDecoder<R> {
    len: Option<u32>,
    deferred: Option<DeferredFn<wrpc_transport::Incoming<R>>>,
}

impl<R> Default for IncomingBytesDecoder<R> {
    fn default() -> Self {
        Self {
            len: None,
            deferred: None,
        }
    }
}

impl<R> Deferred<wrpc_transport::Incoming<R>> for IncomingBytesDecoder<R> {
    fn take_deferred(&mut self) -> Option<DeferredFn<wrpc_transport::Incoming<R>>> {
        self.deferred.take()
    }
}

impl<R> Decoder for IncomingBytesDecoder<R>
where
    R: AsyncRead + Index<R> + Send + Sync + Unpin + 'static,
{
    type Item = IncomingBytes;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let len = match self.len {
            Some(len) => len,
            None => {
                let Some((len, n)) = leb_u32(src)? else {
                    return Ok(None);
                };
                src.advance(n);
                self.len = Some(len);
                len
            }
        };
        if len > 0 {
            // The whole stream, inline in the synchronous part.
            if src.len() < len as usize {
                return Ok(None);
            }
            self.len = None;
            return Ok(Some(IncomingBytes::from_bytes(
                src.split_to(len as usize).freeze(),
            )));
        }
        self.len = None;
        let (tx, rx) = oneshot::channel::<Reader>();
        self.deferred = Some(Box::new(
            move |r: wrpc_transport::Incoming<R>, path: Vec<usize>| {
                Box::pin(async move {
                    let reader: Reader = if path.is_empty() {
                        Box::pin(r)
                    } else {
                        Box::pin(r.index(&path).map_err(io::Error::other)?)
                    };
                    let _ = tx.send(reader);
                    Ok(())
                })
            },
        ));
        Ok(Some(IncomingBytes {
            state: InState::Waiting(rx),
        }))
    }
}

impl<R> wrpc_transport::Decode<R> for IncomingBytes
where
    R: AsyncRead + Index<R> + Send + Sync + Unpin + 'static,
{
    type Decoder = IncomingBytesDecoder<R>;
    type ListDecoder = wrpc_transport::ListDecoder<Self::Decoder, R>;
}

/// A `stream<u8>` result: the source is pulled one item at a time, each
/// written (in chunks of at most [`CHUNK`] bytes) before the next is pulled.
pub struct OutgoingBytes(pub Pin<Box<dyn Stream<Item = Bytes> + Send>>);

impl OutgoingBytes {
    /// A result stream of `source`.
    pub fn new(source: impl Stream<Item = Bytes> + Send + 'static) -> Self {
        Self(Box::pin(source))
    }
}

/// Encodes an [`OutgoingBytes`].
pub struct OutgoingBytesEncoder<W> {
    deferred: Option<DeferredFn<W>>,
}

impl<W> Default for OutgoingBytesEncoder<W> {
    fn default() -> Self {
        Self { deferred: None }
    }
}

impl<W> Deferred<W> for OutgoingBytesEncoder<W> {
    fn take_deferred(&mut self) -> Option<DeferredFn<W>> {
        self.deferred.take()
    }
}

impl<W> Encoder<OutgoingBytes> for OutgoingBytesEncoder<W>
where
    W: AsyncWrite + Index<W> + Send + Sync + Unpin + 'static,
{
    type Error = io::Error;

    fn encode(&mut self, item: OutgoingBytes, dst: &mut BytesMut) -> Result<(), Self::Error> {
        // Pending: the bytes follow on this value's path.
        dst.put_u8(0);
        let mut source = item.0;
        self.deferred = Some(Box::new(move |w: W, path: Vec<usize>| {
            Box::pin(async move {
                let mut w = if path.is_empty() {
                    w
                } else {
                    w.index(&path).map_err(io::Error::other)?
                };
                // One write per chunk (length and bytes together): one frame
                // on stream transports, one message on NATS.
                let mut chunk = BytesMut::with_capacity(WRITE_CHUNK + 5);
                while let Some(item) = source.next().await {
                    for piece in item.chunks(WRITE_CHUNK) {
                        chunk.clear();
                        transport::frame::put_leb_u32(&mut chunk, piece.len() as u32);
                        chunk.extend_from_slice(piece);
                        w.write_all(&chunk).await?;
                    }
                }
                w.write_all(&[0]).await?;
                w.flush().await
            })
        }));
        Ok(())
    }
}

impl<W> wrpc_transport::Encode<W> for OutgoingBytes
where
    W: AsyncWrite + Index<W> + Send + Sync + Unpin + 'static,
{
    type Encoder = OutgoingBytesEncoder<W>;
}

/// A `stream<T>` result of values other than bytes (e.g. the names of a
/// listing): the source is pulled one batch at a time, and each batch is
/// written before the next is pulled, so a slow reader slows the source.
///
/// Elements must be plain values (no nested streams or futures).
pub struct OutgoingStream<T>(pub Pin<Box<dyn Stream<Item = Vec<T>> + Send>>);

impl<T> OutgoingStream<T> {
    /// A result stream of the batches of `source`; empty batches are skipped
    /// (an empty batch on the wire would end the stream).
    pub fn new(source: impl Stream<Item = Vec<T>> + Send + 'static) -> Self {
        Self(Box::pin(source))
    }
}

/// Encodes an [`OutgoingStream`].
pub struct OutgoingStreamEncoder<W> {
    deferred: Option<DeferredFn<W>>,
}

impl<W> Default for OutgoingStreamEncoder<W> {
    fn default() -> Self {
        Self { deferred: None }
    }
}

impl<W> Deferred<W> for OutgoingStreamEncoder<W> {
    fn take_deferred(&mut self) -> Option<DeferredFn<W>> {
        self.deferred.take()
    }
}

impl<T, W> Encoder<OutgoingStream<T>> for OutgoingStreamEncoder<W>
where
    T: wrpc_transport::Encode<W> + Send + 'static,
    W: AsyncWrite + Index<W> + Send + Sync + Unpin + 'static,
    io::Error: From<<T::Encoder as Encoder<T>>::Error>,
{
    type Error = io::Error;

    fn encode(&mut self, item: OutgoingStream<T>, dst: &mut BytesMut) -> Result<(), Self::Error> {
        // Pending: the batches follow on this value's path.
        dst.put_u8(0);
        let mut source = item.0;
        self.deferred = Some(Box::new(move |w: W, path: Vec<usize>| {
            Box::pin(async move {
                let mut w = if path.is_empty() {
                    w
                } else {
                    w.index(&path).map_err(io::Error::other)?
                };
                let mut buf = BytesMut::new();
                while let Some(batch) = source.next().await {
                    if batch.is_empty() {
                        continue;
                    }
                    buf.clear();
                    let n = u32::try_from(batch.len()).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidInput, "a batch of over 2^32 elements")
                    })?;
                    transport::frame::put_leb_u32(&mut buf, n);
                    let mut enc = T::Encoder::default();
                    for element in batch {
                        enc.encode(element, &mut buf)?;
                        if enc.take_deferred().is_some() {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidInput,
                                "stream elements with async values are not supported",
                            ));
                        }
                    }
                    w.write_all(&buf).await?;
                }
                w.write_all(&[0]).await?;
                w.flush().await
            })
        }));
        Ok(())
    }
}

impl<T, W> wrpc_transport::Encode<W> for OutgoingStream<T>
where
    T: wrpc_transport::Encode<W> + Send + 'static,
    W: AsyncWrite + Index<W> + Send + Sync + Unpin + 'static,
    io::Error: From<<T::Encoder as Encoder<T>>::Error>,
{
    type Encoder = OutgoingStreamEncoder<W>;
}
