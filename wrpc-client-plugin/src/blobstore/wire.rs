//! The wire side of `wrpc:blobstore@0.2.0`: parameters encoded by hand, and
//! results read incrementally, so no body or listing is ever held whole.

use std::io;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use tokio::io::AsyncReadExt as _;
use transport::frame::put_leb_u32;

use crate::Incoming;

/// The wire instance every blobstore call goes to.
pub(crate) const INSTANCE: &str = "wrpc:blobstore/blobstore@0.2.0";

/// Bytes read from the transport at a time.
pub(crate) const READ_SIZE: usize = 256 * 1024;

/// Appends a `string`.
pub(crate) fn put_string(buf: &mut BytesMut, s: &str) -> io::Result<()> {
    let len = u32::try_from(s.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name over 4 GiB"))?;
    put_leb_u32(buf, len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// The parameters `(object-id, …)` begin with.
pub(crate) fn object_id(container: &str, object: &str) -> io::Result<BytesMut> {
    let mut buf = BytesMut::new();
    put_string(&mut buf, container)?;
    put_string(&mut buf, object)?;
    Ok(buf)
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed results from the extension: {what}"),
    )
}

/// Reads values from a complete synchronous result.
pub(crate) struct Cursor<'a>(pub(crate) &'a [u8]);

impl Cursor<'_> {
    pub(crate) fn u8(&mut self) -> io::Result<u8> {
        let (first, rest) = self.0.split_first().ok_or_else(|| malformed("too short"))?;
        self.0 = rest;
        Ok(*first)
    }

    pub(crate) fn leb(&mut self) -> io::Result<u32> {
        match leb(self.0)? {
            Some((n, used)) => {
                self.0 = &self.0[used..];
                Ok(n)
            }
            None => Err(malformed("a truncated length")),
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(malformed("too short"));
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    pub(crate) fn string(&mut self) -> io::Result<String> {
        let n = self.leb()? as usize;
        let bytes = self.bytes(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
    }

    /// `result<_, string>`.
    pub(crate) fn status(&mut self) -> io::Result<Result<(), String>> {
        match self.u8()? {
            0 => Ok(Ok(())),
            1 => Ok(Err(self.string()?)),
            _ => Err(malformed("a result tag is neither ok nor err")),
        }
    }

    /// `future<result<_, string>>`: `None` when its value comes later.
    pub(crate) fn future_status(&mut self) -> io::Result<Option<Result<(), String>>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.status()?)),
            _ => Err(malformed("a future tag is neither pending nor ready")),
        }
    }
}

/// A LEB128 `u32` at the front of `buf`: the value and its length, or `None`
/// if more bytes are needed.
fn leb(buf: &[u8]) -> io::Result<Option<(u32, usize)>> {
    transport::frame::leb_u32(buf, "length").map_err(|_| malformed("a length over 32 bits"))
}

/// An async value's bytes, read through a small buffer. Every method is
/// cancel-safe: what was read stays buffered for the next call.
pub(crate) struct Buffered {
    r: Incoming,
    buf: BytesMut,
}

impl Buffered {
    pub(crate) fn new(r: Incoming) -> Self {
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
                "the extension's stream ended before its end marker",
            ));
        }
        Ok(())
    }

    async fn leb(&mut self) -> io::Result<u32> {
        loop {
            if let Some((n, used)) = leb(&self.buf)? {
                self.buf.advance(used);
                return Ok(n);
            }
            self.fill().await?;
        }
    }

    /// Up to `max` of the next bytes (at least one).
    async fn some(&mut self, max: usize) -> io::Result<Bytes> {
        if self.buf.is_empty() {
            self.fill().await?;
        }
        let n = self.buf.len().min(max);
        Ok(self.buf.split_to(n).freeze())
    }

    /// Exactly the next `n` bytes.
    async fn exact(&mut self, n: usize) -> io::Result<Bytes> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// One `result<_, string>` whose error text is at most `max` bytes.
    pub(crate) async fn status(&mut self, max: u32) -> io::Result<Result<(), String>> {
        let tag = self.exact(1).await?;
        match tag[0] {
            0 => Ok(Ok(())),
            1 => {
                let n = self.leb().await?;
                if n > max {
                    return Err(malformed("an error text over the size limit"));
                }
                let text = self.exact(n as usize).await?;
                Ok(Err(String::from_utf8_lossy(&text).into_owned()))
            }
            _ => Err(malformed("a result tag is neither ok nor err")),
        }
    }
}

/// The chunks of a `stream<u8>` on its async path.
pub(crate) struct ByteChunks {
    inner: Buffered,
    /// Bytes left in the current chunk.
    left: u64,
    ended: bool,
}

impl ByteChunks {
    pub(crate) fn new(r: Incoming) -> Self {
        Self {
            inner: Buffered::new(r),
            left: 0,
            ended: false,
        }
    }

    /// Up to `max` next bytes (at least one), or `None` at the end marker.
    pub(crate) async fn next(&mut self, max: usize) -> io::Result<Option<Bytes>> {
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

/// The names of a `stream<string>` on its async path.
pub(crate) struct NameChunks {
    inner: Buffered,
    /// Names left in the current chunk.
    left: u32,
    ended: bool,
    max_name: u32,
}

impl NameChunks {
    pub(crate) fn new(r: Incoming, max_name: u32) -> Self {
        Self {
            inner: Buffered::new(r),
            left: 0,
            ended: false,
            max_name,
        }
    }

    /// The next name, or `None` at the end marker.
    pub(crate) async fn next(&mut self) -> io::Result<Option<String>> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if self.left > 0 {
                // Peek the length first so a cancelled read leaves the
                // buffer at the start of the name.
                let name = self.name().await?;
                self.left -= 1;
                return Ok(Some(name));
            }
            match self.inner.leb().await? {
                0 => self.ended = true,
                n => self.left = n,
            }
        }
    }

    async fn name(&mut self) -> io::Result<String> {
        loop {
            if let Some((n, used)) = leb(&self.inner.buf)? {
                if n > self.max_name {
                    return Err(malformed("a name over the size limit"));
                }
                let n = n as usize;
                if self.inner.buf.len() >= used + n {
                    self.inner.buf.advance(used);
                    let bytes = self.inner.buf.split_to(n);
                    return String::from_utf8(bytes.to_vec())
                        .map_err(|_| malformed("a name is not UTF-8"));
                }
            }
            self.inner.fill().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reads_results() {
        // ok(tuple(stream pending, future pending))
        let mut c = Cursor(&[0, 0, 0]);
        assert_eq!(c.u8().unwrap(), 0);
        assert_eq!(c.leb().unwrap(), 0);
        assert_eq!(c.future_status().unwrap(), None);
        // err("no")
        let mut c = Cursor(&[1, 2, b'n', b'o']);
        assert_eq!(c.status().unwrap(), Err("no".to_string()));
        // ready future with ok
        let mut c = Cursor(&[1, 0]);
        assert_eq!(c.future_status().unwrap(), Some(Ok(())));
        assert!(Cursor(&[7]).status().is_err());
        assert!(Cursor(&[5, b'a']).string().is_err());
    }

    #[test]
    fn object_ids_are_two_strings() {
        let buf = object_id("c", "ob").unwrap();
        assert_eq!(&buf[..], &[1, b'c', 2, b'o', b'b']);
    }
}
