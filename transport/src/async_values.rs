//! The parts of a call's values that travel after its synchronous part:
//! stream chunks and future values on their own paths, read and written in
//! bounded memory with the one codec ([`schema::codec`](crate::schema::codec)).

use std::io;

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::schema::codec::{
    decode_chunk, decode_value, encode_value, Chunk, DecodeError, EncodeError, Sink, Source,
};
use crate::schema::{Type, ValueLimits};
use crate::Incoming;

/// Bytes read from the transport at a time.
pub const READ_SIZE: usize = 256 * 1024;

fn malformed(what: impl core::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed value from the peer: {what}"),
    )
}

/// Reads a call's synchronous part (the root of its incoming direction) to
/// its end. The transport has checked it against the types it was given
/// and bounds it by the max-frame limit.
///
/// # Errors
///
/// The call failed, or its deadline passed.
pub async fn read_sync(rx: &mut Incoming) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    rx.read_to_end(&mut buf).await?;
    Ok(buf)
}

/// An async value's bytes, read through a small buffer. Every method is
/// cancel-safe: what was read stays buffered for the next call.
pub struct Buffered {
    r: Incoming,
    buf: BytesMut,
}

impl Buffered {
    /// Reads `r`.
    pub fn new(r: Incoming) -> Self {
        Self {
            r,
            buf: BytesMut::new(),
        }
    }

    /// Reads more; `UnexpectedEof` at the end of input.
    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        if self.r.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer's stream ended before its end marker",
            ));
        }
        Ok(())
    }

    /// A LEB128 `u32` (a chunk's length).
    async fn leb(&mut self) -> io::Result<u32> {
        loop {
            match crate::frame::leb_u32(&self.buf, "length") {
                Ok(Some((n, used))) => {
                    self.buf.advance(used);
                    return Ok(n);
                }
                Ok(None) => self.fill().await?,
                Err(_) => return Err(malformed("a length over 32 bits")),
            }
        }
    }

    /// Up to `max` of the next bytes (at least one).
    pub async fn some(&mut self, max: usize) -> io::Result<Bytes> {
        if self.buf.is_empty() {
            self.fill().await?;
        }
        let n = self.buf.len().min(max);
        Ok(self.buf.split_to(n).freeze())
    }

    /// Exactly the next `n` bytes.
    pub async fn exact(&mut self, n: usize) -> io::Result<Bytes> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// Decodes one value of type `ty` off the buffered bytes (a future's
    /// value on its path), reading more while they end early, up to the
    /// max-bytes limit buffered.
    ///
    /// # Errors
    ///
    /// The transport failed, the bytes are not such a value, or the value
    /// is larger than the limit.
    pub async fn value<S: Sink>(
        &mut self,
        ty: &Type,
        limits: &ValueLimits,
        sink: &mut S,
    ) -> io::Result<S::Value> {
        let max = limits.max_bytes as usize;
        self.next(max, |buf| decode_value(ty, buf, limits, sink))
            .await
    }

    /// Decodes the next thing `decode` reads off the buffered bytes, reading
    /// more while they end early, up to `max` bytes buffered.
    async fn next<T>(
        &mut self,
        max: usize,
        mut decode: impl FnMut(&[u8]) -> Result<(T, usize), DecodeError>,
    ) -> io::Result<T> {
        loop {
            match decode(&self.buf) {
                Ok((value, used)) => {
                    self.buf.advance(used);
                    return Ok(value);
                }
                Err(DecodeError::Incomplete) if self.buf.len() < max => self.fill().await?,
                Err(DecodeError::Incomplete) => {
                    return Err(malformed(format!(
                        "a value over the max-frame limit of {max} bytes"
                    )))
                }
                Err(err) => return Err(malformed(err)),
            }
        }
    }
}

/// The chunks of a `stream<u8>` on its async path, passed on as they
/// arrive (a chunk is never held whole).
pub struct ByteChunks {
    inner: Buffered,
    /// Bytes left in the current chunk.
    left: u64,
    ended: bool,
}

impl ByteChunks {
    /// Reads the stream on `r`.
    pub fn new(r: Incoming) -> Self {
        Self {
            inner: Buffered::new(r),
            left: 0,
            ended: false,
        }
    }

    /// Up to `max` next bytes (at least one), or `None` at the end marker.
    ///
    /// # Errors
    ///
    /// The transport failed, or the stream broke off before its end marker.
    pub async fn next(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if self.left > 0 {
                let want = usize::try_from(self.left).unwrap_or(usize::MAX).min(max);
                let bytes = self.inner.some(want).await?;
                self.left -= bytes.len() as u64;
                return Ok(Some(bytes));
            }
            match self.inner.leb().await? {
                0 => self.ended = true,
                n => self.left = n.into(),
            }
        }
    }
}

/// The chunks of a `stream<T>` (any `T`) on its async path, decoded chunk
/// by chunk; a chunk may take at most the max-frame limit's bytes.
pub struct Chunks {
    inner: Buffered,
    elem: Option<Type>,
    limits: ValueLimits,
    /// Elements read so far: the async paths of later ones count from here.
    seen: u64,
    ended: bool,
}

impl Chunks {
    /// Reads the `stream<elem>` on `r`.
    pub fn new(r: Incoming, elem: Option<Type>, limits: ValueLimits) -> Self {
        Self {
            inner: Buffered::new(r),
            elem,
            limits,
            seen: 0,
            ended: false,
        }
    }

    /// The next chunk, or `None` after the end marker.
    ///
    /// # Errors
    ///
    /// The transport failed, the bytes are not such a chunk, or the stream
    /// broke off before its end marker.
    pub async fn next<S: Sink>(&mut self, sink: &mut S) -> io::Result<Option<Chunk<S::Value>>> {
        if self.ended {
            return Ok(None);
        }
        let (elem, first, limits) = (self.elem.as_ref(), self.seen, self.limits);
        let max = limits.max_bytes as usize;
        let chunk = self
            .inner
            .next(max, |buf| decode_chunk(elem, first, buf, &limits, sink))
            .await?;
        if chunk.is_end() {
            self.ended = true;
            return Ok(None);
        }
        self.seen = self.seen.saturating_add(match &chunk {
            Chunk::Bytes(b) => b.len() as u64,
            Chunk::Items(v) => v.len() as u64,
            Chunk::Units(n) => *n,
        });
        Ok(Some(chunk))
    }
}

/// Reads the value of a pending `future<ty>` on its path `r`.
///
/// # Errors
///
/// The transport failed, or the bytes are not such a value.
pub async fn read_future<S: Sink>(
    r: Incoming,
    ty: &Type,
    limits: &ValueLimits,
    sink: &mut S,
) -> io::Result<S::Value> {
    Buffered::new(r).value(ty, limits, sink).await
}

fn invalid(err: EncodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, err.to_string())
}

/// Writes one chunk of a `stream<u8>`: its length, then the bytes (never
/// empty: an empty chunk ends the stream).
///
/// # Errors
///
/// The transport failed.
pub async fn write_bytes(w: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut head = BytesMut::with_capacity(5);
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a chunk over 4 GiB"))?;
    crate::frame::put_leb_u32(&mut head, len);
    w.write_all(&head).await?;
    w.write_all(bytes).await
}

/// Writes one chunk of a `stream<elem>`: a count, then the elements (none
/// of which may hold a future or stream). Nothing for no elements.
///
/// # Errors
///
/// An element is not an `elem`, or the transport failed.
pub async fn write_items<S: Source>(
    w: &mut (impl AsyncWrite + Unpin),
    elem: &Type,
    items: &[S],
) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    let count = u32::try_from(items.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a chunk over 4 Gi elements"))?;
    let mut head = BytesMut::with_capacity(5);
    crate::frame::put_leb_u32(&mut head, count);
    buf.extend_from_slice(&head);
    for item in items {
        if !encode_value(elem, item, &mut buf)
            .map_err(invalid)?
            .is_empty()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a stream element holding a future or stream",
            ));
        }
    }
    w.write_all(&buf).await
}

/// Ends a stream (its end marker) and flushes.
///
/// # Errors
///
/// The transport failed.
pub async fn end_stream(w: &mut (impl AsyncWrite + Unpin)) -> io::Result<()> {
    w.write_all(&[0]).await?;
    w.shutdown().await
}

/// Writes the value of a pending `future<ty>` (nothing for `future` without
/// a type) and flushes.
///
/// # Errors
///
/// The value is not a `ty` or holds a future or stream, or the transport failed.
pub async fn write_future<S: Source>(
    w: &mut (impl AsyncWrite + Unpin),
    ty: Option<&Type>,
    value: Option<&S>,
) -> io::Result<()> {
    if let (Some(ty), Some(value)) = (ty, value) {
        let mut buf = Vec::new();
        if !encode_value(ty, value, &mut buf)
            .map_err(invalid)?
            .is_empty()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a future's value holding a future or stream",
            ));
        }
        w.write_all(&buf).await?;
    }
    w.shutdown().await
}
