//! One connection's two halves: parsed input ([`Inbound`]) and buffered
//! output ([`Outbound`]). Both are driven by polling from whichever task
//! needs them, so a call's reads and writes run on the caller's own task.

use core::pin::Pin;
use core::task::{ready, Context, Poll, Waker};

use std::io;

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::frame::{self, Dialect, Event, FrameError, Parser};

/// A connection's read half.
pub(crate) type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
/// A connection's write half.
pub(crate) type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Output buffered beyond this is flushed before more is accepted.
const HIGH_WATER: usize = 64 * 1024;
/// The largest frame one write produces.
pub(crate) const MAX_CHUNK: usize = 64 * 1024;
/// Read size while a connection waits between calls (keeps idle connections small).
const IDLE_READ: usize = 256;
/// Read size while data is flowing.
const BUSY_READ: usize = 64 * 1024;

/// Why an inbound event could not be produced.
#[derive(Debug)]
pub(crate) enum InboundError {
    /// The socket failed.
    Io(io::Error),
    /// The peer broke the framing or a limit.
    Frame(FrameError),
}

impl From<InboundError> for io::Error {
    fn from(err: InboundError) -> Self {
        match err {
            InboundError::Io(err) => err,
            InboundError::Frame(err) => io::Error::new(io::ErrorKind::InvalidData, err),
        }
    }
}

/// The parsed input of a connection.
pub(crate) struct Inbound {
    rd: BoxRead,
    buf: BytesMut,
    parser: Parser,
    eof: bool,
}

impl Inbound {
    pub(crate) fn new(rd: BoxRead, parser: Parser) -> Self {
        Self {
            rd,
            buf: BytesMut::new(),
            parser,
            eof: false,
        }
    }

    pub(crate) fn parser(&self) -> &Parser {
        &self.parser
    }

    /// The bytes read and not yet parsed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The next event; `Ready(Ok(None))` at the end of input.
    pub(crate) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Event>, InboundError>> {
        loop {
            if let Some(ev) = self
                .parser
                .next(&mut self.buf)
                .map_err(InboundError::Frame)?
            {
                return Poll::Ready(Ok(Some(ev)));
            }
            if self.eof {
                return Poll::Ready(Ok(None));
            }
            let want = if self.buf.is_empty() && self.parser.at_boundary() {
                IDLE_READ
            } else {
                BUSY_READ
            };
            if self.buf.capacity() - self.buf.len() < want / 2 {
                if self.buf.is_empty() {
                    // Drop a large idle allocation instead of keeping it per connection.
                    self.buf = BytesMut::with_capacity(want);
                } else {
                    self.buf.reserve(want);
                }
            }
            let n = ready!(tokio_util::io::poll_read_buf(
                self.rd.as_mut(),
                cx,
                &mut self.buf
            ))
            .map_err(InboundError::Io)?;
            if n == 0 {
                self.eof = true;
                if !self.buf.is_empty() || !self.parser.at_boundary() {
                    return Poll::Ready(Err(InboundError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed in the middle of a message",
                    ))));
                }
            }
        }
    }
}

impl Inbound {
    /// Reads and drops the rest of the input, unparsed, until its end (after
    /// a refused call, whose framing cannot be trusted any more).
    pub(crate) fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            self.buf.clear();
            self.buf.reserve(BUSY_READ);
            let n = ready!(tokio_util::io::poll_read_buf(
                self.rd.as_mut(),
                cx,
                &mut self.buf
            ))?;
            self.eof = n == 0;
        }
    }
}

/// The buffered output of a connection.
pub(crate) struct Outbound {
    wr: BoxWrite,
    buf: BytesMut,
    dialect: Dialect,
    failed: Option<io::ErrorKind>,
    shut_down: bool,
    /// Whether the current call's outgoing direction was ended (`END` buffered).
    ended: bool,
    /// Tasks waiting for buffer space.
    waiters: Vec<Waker>,
}

impl Outbound {
    pub(crate) fn new(wr: BoxWrite, dialect: Dialect) -> Self {
        Self {
            wr,
            buf: BytesMut::new(),
            dialect,
            failed: None,
            shut_down: false,
            ended: false,
            waiters: Vec::new(),
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect = dialect;
    }

    /// Whether the current call's outgoing direction has ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Records whether the current call's outgoing direction has ended.
    pub(crate) fn set_ended(&mut self, ended: bool) {
        self.ended = ended;
    }

    /// Bytes accepted but not yet written to the socket.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }

    fn check(&self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(io::Error::new(kind, "the connection failed earlier")),
            None => Ok(()),
        }
    }

    /// Writes buffered bytes until none are left.
    pub(crate) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        while !self.buf.is_empty() {
            match self.wr.as_mut().poll_write(cx, &self.buf) {
                Poll::Ready(Ok(0)) => {
                    self.failed = Some(io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.buf.advance(n);
                    if self.buf.len() < HIGH_WATER {
                        for w in self.waiters.drain(..) {
                            w.wake();
                        }
                    }
                }
                Poll::Ready(Err(err)) => {
                    self.failed = Some(err.kind());
                    return Poll::Ready(Err(err));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.buf.capacity() > 4 * HIGH_WATER {
            self.buf = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Writes buffered bytes and flushes the socket.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        self.wr.as_mut().poll_flush(cx)
    }

    /// Buffers a frame of up to `max` bytes of `data` for `path` once there
    /// is room, and starts writing it unless `hold` (then it leaves with the
    /// next flush); returns how many bytes were taken.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        path: &[usize],
        data: &[u8],
        max: usize,
        hold: bool,
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        if self.ended {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "this direction of the call has already ended",
            )));
        }
        if self.buf.len() >= HIGH_WATER {
            match self.poll_drain(cx) {
                Poll::Ready(res) => res?,
                Poll::Pending => {
                    self.waiters.push(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        let n = data.len().min(max);
        frame::put_frame(&mut self.buf, self.dialect, path, &data[..n]);
        // Start writing now; whatever the socket does not take stays buffered
        // and goes out on the next poll of this connection.
        if !hold {
            if let Poll::Ready(Err(err)) = self.poll_drain(cx) {
                return Poll::Ready(Err(err));
            }
        }
        Poll::Ready(Ok(n))
    }

    /// Appends raw protocol bytes (headers, markers) to the buffer.
    pub(crate) fn push(&mut self, f: impl FnOnce(&mut BytesMut)) {
        f(&mut self.buf);
    }

    /// Flushes, then shuts down the write side (plain dialect end of a direction).
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut_down {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_drain(cx))?;
        ready!(self.wr.as_mut().poll_shutdown(cx))?;
        self.shut_down = true;
        Poll::Ready(Ok(()))
    }

    /// Drains without waiting; whether everything was written.
    pub(crate) fn try_drain(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(self.poll_flush(&mut cx), Poll::Ready(Ok(()))) && self.buf.is_empty()
    }
}

/// Drives `f` until it is ready (an `async` adapter over the poll functions).
pub(crate) async fn poll_fn_mut<T>(mut f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
    core::future::poll_fn(|cx| f(cx)).await
}
