//! One call on a stream connection: its frames demultiplexed by path into
//! bounded queues, read and written through handles that implement the wRPC
//! `Index` stream traits.
//!
//! There is no reader task: whichever handle is polled reads the socket and
//! hands frames for other paths to their queues, waking their readers. A
//! call with only synchronous values therefore runs entirely on the task
//! that makes it.

use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::io::{Inbound, InboundError, Outbound, MAX_CHUNK};
use crate::frame::{Dialect, Event};
use crate::schema::ScanPlan;
use crate::value::RootValue;
use crate::Limits;

/// Most bytes of one async value's stream buffered before its reader takes
/// them; beyond it the connection is not read (TCP flow control holds the sender).
pub const STREAM_BUFFER: usize = 256 * 1024;

/// Which side of the call this end is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Reads results.
    Client,
    /// Reads parameters.
    Server,
}

/// How the incoming direction of a call ended.
#[derive(Clone, Debug)]
pub(crate) enum Ending {
    Open,
    /// The sender finished (`END`, or end of input in the plain dialect).
    Ended,
    /// The call failed; every read returns this error.
    Failed(io::ErrorKind, String),
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    len: usize,
    waker: Option<Waker>,
}

impl Queue {
    fn push(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            self.chunks.push_back(bytes);
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The demultiplexing state of the call currently on a connection.
pub(crate) struct Demux {
    side: Side,
    seq: u64,
    root: Queue,
    value: RootValue,
    children: Vec<(Vec<usize>, Queue)>,
    patterns: Arc<[Box<[Option<usize>]>]>,
    stash: Option<(Vec<usize>, Bytes)>,
    blocked: Vec<Waker>,
    ending: Ending,
    saw_any: bool,
    /// The call failed by the peer's `ERROR` (not by the connection).
    answered_error: bool,
}

impl Demux {
    fn idle() -> Self {
        Self {
            side: Side::Server,
            seq: 0,
            root: Queue::default(),
            value: RootValue::finished(),
            children: Vec::new(),
            patterns: Arc::from([]),
            stash: None,
            blocked: Vec::new(),
            ending: Ending::Ended,
            saw_any: false,
            answered_error: false,
        }
    }

    /// Whether the incoming direction ended cleanly.
    pub(crate) fn ended(&self) -> bool {
        matches!(self.ending, Ending::Ended)
    }

    /// Whether the synchronous value arrived whole.
    pub(crate) fn value_complete(&self) -> bool {
        self.value.complete()
    }

    /// Whether the call's results can have async values (streams, futures).
    pub(crate) fn has_async(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// Whether data is buffered that no reader took.
    pub(crate) fn has_unread(&self) -> bool {
        self.root.len > 0 || self.stash.is_some() || self.children.iter().any(|(_, q)| q.len > 0)
    }

    fn fail(&mut self, kind: io::ErrorKind, msg: String) {
        if matches!(self.ending, Ending::Open) {
            self.ending = Ending::Failed(kind, msg);
        }
        self.wake_all();
    }

    fn wake_all(&mut self) {
        self.root.wake();
        for (_, q) in &mut self.children {
            q.wake();
        }
        for w in self.blocked.drain(..) {
            w.wake();
        }
    }

    fn queue(&mut self, path: &[usize]) -> Option<&mut Queue> {
        if path.is_empty() {
            return Some(&mut self.root);
        }
        if let Some(i) = self.children.iter().position(|(p, _)| p == path) {
            return Some(&mut self.children[i].1);
        }
        let registered = self.patterns.iter().any(|pat| {
            pat.len() == path.len() && pat.iter().zip(path).all(|(p, i)| p.is_none_or(|p| p == *i))
        });
        if !registered {
            return None;
        }
        self.children.push((path.to_vec(), Queue::default()));
        self.children.last_mut().map(|(_, q)| q)
    }

    /// Routes one frame's bytes; `Err(bytes)` when the path's queue is full.
    fn route(&mut self, path: Vec<usize>, bytes: Bytes) -> Result<(), (Vec<usize>, Bytes)> {
        self.saw_any = true;
        if path.is_empty() {
            match self.value.push(bytes) {
                Ok(Some(pass)) => self.root.push(pass),
                Ok(None) => {}
                Err(why) => self.fail(io::ErrorKind::InvalidData, why),
            }
            return Ok(());
        }
        let Some(q) = self.queue(&path) else {
            self.fail(
                io::ErrorKind::InvalidData,
                format!("data on path {path:?}, which this call has no async value at"),
            );
            return Ok(());
        };
        if q.len + bytes.len() > STREAM_BUFFER && q.len > 0 {
            return Err((path, bytes));
        }
        q.push(bytes);
        Ok(())
    }
}

/// The read side of a connection: its input and the current call's state.
pub(crate) struct ReadSide {
    pub(crate) inbound: Inbound,
    pub(crate) demux: Demux,
    /// The previous call's end (`END`, or `ERROR`) is still on its way and
    /// belongs to no one: skip it. Set when a connection whose call had all
    /// its results went back to the pool before that end arrived.
    pub(crate) skip_end: bool,
}

/// A connection shared by a call's handles and its owner (the pool or the
/// listener's connection task).
pub(crate) struct Conn {
    pub(crate) read: Mutex<ReadSide>,
    pub(crate) write: Mutex<Outbound>,
    pub(crate) limits: Limits,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handle panicking mid-poll leaves consistent state behind: every
    // mutation is complete before a lock is released.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Conn {
    pub(crate) fn new(inbound: Inbound, outbound: Outbound, limits: Limits) -> Self {
        Self {
            read: Mutex::new(ReadSide {
                inbound,
                demux: Demux::idle(),
                skip_end: false,
            }),
            write: Mutex::new(outbound),
            limits,
        }
    }

    pub(crate) fn read(&self) -> MutexGuard<'_, ReadSide> {
        lock(&self.read)
    }

    pub(crate) fn write(&self) -> MutexGuard<'_, Outbound> {
        lock(&self.write)
    }

    /// Starts a new call's incoming direction: `types` checks its synchronous
    /// value, `paths` are its async values. Returns the call's sequence number.
    pub(crate) fn begin(
        &self,
        side: Side,
        types: Option<Arc<ScanPlan>>,
        paths: Arc<[Box<[Option<usize>]>]>,
    ) -> u64 {
        self.write().set_ended(false);
        let mut read = self.read();
        let seq = read.demux.seq + 1;
        read.demux = Demux {
            side,
            seq,
            root: Queue::default(),
            value: RootValue::new(types, &self.limits),
            children: Vec::new(),
            patterns: paths,
            stash: None,
            blocked: Vec::new(),
            ending: Ending::Open,
            saw_any: false,
            answered_error: false,
        };
        seq
    }
}

impl ReadSide {
    /// Reads events for the current call until `until` says stop or input
    /// would block. Returns `Pending` only when the socket has nothing more.
    fn pump(&mut self, cx: &mut Context<'_>, mut until: impl FnMut(&Demux) -> bool) -> Poll<()> {
        loop {
            if until(&self.demux) || !matches!(self.demux.ending, Ending::Open) {
                return Poll::Ready(());
            }
            if let Some((path, bytes)) = self.demux.stash.take() {
                if let Err(back) = self.demux.route(path, bytes) {
                    self.demux.stash = Some(back);
                    self.demux.blocked.push(cx.waker().clone());
                    return Poll::Pending;
                }
                continue;
            }
            let ev = match self.inbound.poll_event(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(ev) => ev,
            };
            if self.skip_end && matches!(ev, Ok(Some(Event::End | Event::Error(_)))) {
                self.skip_end = false;
                continue;
            }
            match ev {
                Ok(Some(Event::Data { path, bytes, .. })) => {
                    if let Err(back) = self.demux.route(path, bytes) {
                        self.demux.stash = Some(back);
                    }
                }
                Ok(Some(Event::End)) => {
                    self.demux.saw_any = true;
                    self.demux.ending = Ending::Ended;
                    self.demux.wake_all();
                }
                Ok(Some(Event::Error(msg))) => {
                    self.demux.saw_any = true;
                    self.demux.answered_error = true;
                    self.demux.fail(
                        io::ErrorKind::Other,
                        format!("the extension failed the call: {msg}"),
                    );
                }
                Ok(Some(Event::GoAway)) => {
                    let kind = if self.demux.saw_any {
                        io::ErrorKind::ConnectionAborted
                    } else {
                        io::ErrorKind::ConnectionRefused
                    };
                    self.demux
                        .fail(kind, "the extension is shutting down (GOAWAY)".into());
                }
                Ok(Some(Event::Preface | Event::Call(_))) => {
                    self.demux.fail(
                        io::ErrorKind::InvalidData,
                        "unexpected message mid-call".into(),
                    );
                }
                Ok(None) => {
                    // End of input: the end of the call in the plain dialect.
                    if self.inbound.parser().dialect() == Some(Dialect::Plain) {
                        self.demux.ending = Ending::Ended;
                        self.demux.wake_all();
                    } else {
                        let who = match self.demux.side {
                            Side::Client => "the extension",
                            Side::Server => "the caller",
                        };
                        self.demux.fail(
                            io::ErrorKind::UnexpectedEof,
                            format!("connection to {who} lost mid-call"),
                        );
                    }
                }
                Err(InboundError::Io(err)) => {
                    let who = match self.demux.side {
                        Side::Client => "the extension",
                        Side::Server => "the caller",
                    };
                    let kind = match err.kind() {
                        io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe => io::ErrorKind::UnexpectedEof,
                        other => other,
                    };
                    self.demux
                        .fail(kind, format!("connection to {who} lost mid-call: {err}"));
                }
                Err(InboundError::Frame(err)) => {
                    self.demux.fail(io::ErrorKind::InvalidData, err.to_string());
                }
            }
        }
    }

    /// Reads until the current call's first event has arrived (or its input
    /// ended or failed).
    pub(crate) fn poll_first_event(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.pump(cx, |d| d.saw_any)
    }

    /// Why the current call's input was refused (it broke the framing or a
    /// limit), if it was.
    pub(crate) fn refusal(&self) -> Option<&str> {
        match &self.demux.ending {
            Ending::Failed(io::ErrorKind::InvalidData, msg) => Some(msg),
            _ => None,
        }
    }

    /// What a caller's failed write means: the server's `ERROR`, when one
    /// is already readable (a server refusing a call's input answers
    /// `ERROR` naming the limit before it closes), else `err` itself.
    pub(crate) fn explain_write_error(&mut self, err: io::Error) -> io::Error {
        if self.demux.side != Side::Client {
            return err;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let _ = self.pump(&mut cx, |_| false);
        match &self.demux.ending {
            Ending::Failed(kind, msg) if self.demux.answered_error => {
                io::Error::new(*kind, msg.clone())
            }
            _ => err,
        }
    }

    /// Whether the server refused the current call before answering it
    /// (`GOAWAY` as its first event): the call was not processed.
    pub(crate) fn refused(&self) -> bool {
        matches!(
            &self.demux.ending,
            Ending::Failed(io::ErrorKind::ConnectionRefused, _)
        ) && !self.demux.saw_any
    }

    /// Drains the rest of the current call's input without waiting.
    /// `Some(true)` when the call ended cleanly, `Some(false)` when it failed,
    /// `None` when more input is needed.
    pub(crate) fn try_finish(&mut self, discard: bool) -> Option<bool> {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if discard {
                self.demux.root = Queue::default();
                self.demux.stash = None;
                for (_, q) in &mut self.demux.children {
                    *q = Queue::default();
                }
            }
            match self.pump(&mut cx, |_| false) {
                Poll::Ready(()) => {
                    return Some(self.demux.ended());
                }
                Poll::Pending if discard && self.demux.stash.is_some() => continue,
                Poll::Pending => return None,
            }
        }
    }

    /// Polls until the current call's input ends, discarding its data.
    pub(crate) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        loop {
            self.demux.root = Queue::default();
            for (_, q) in &mut self.demux.children {
                *q = Queue::default();
            }
            if let Some((_, _)) = self.demux.stash.take() {
                continue;
            }
            match self.pump(cx, |d| d.has_unread()) {
                Poll::Ready(()) if self.demux.has_unread() => continue,
                Poll::Ready(()) => return Poll::Ready(self.demux.ended()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Runs when the last handle of a call is dropped.
pub(crate) type OnDone = Box<dyn FnOnce(&Arc<Conn>) + Send>;

/// What every handle of one call shares; dropping the last one runs `on_done`.
pub(crate) struct CallShared {
    pub(crate) conn: Arc<Conn>,
    pub(crate) seq: u64,
    /// The synchronous value is this direction's last (a server's results
    /// without async values): it waits in the buffer for the call's end, so
    /// both leave in one write.
    hold_root: bool,
    on_done: Mutex<Option<OnDone>>,
}

impl CallShared {
    pub(crate) fn new(conn: Arc<Conn>, seq: u64, on_done: Option<OnDone>) -> Arc<Self> {
        Self::with_hold(conn, seq, on_done, false)
    }

    /// Like [`CallShared::new`]; `hold_root` as on the field.
    pub(crate) fn with_hold(
        conn: Arc<Conn>,
        seq: u64,
        on_done: Option<OnDone>,
        hold_root: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            conn,
            seq,
            hold_root,
            on_done: Mutex::new(on_done),
        })
    }
}

impl Drop for CallShared {
    fn drop(&mut self) {
        if let Some(f) = lock(&self.on_done).take() {
            f(&self.conn);
        }
    }
}

fn call_over() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the call is over")
}

/// Reads one path of a call's incoming direction.
pub struct CallRx {
    shared: Arc<CallShared>,
    path: Vec<usize>,
    current: Bytes,
}

impl CallRx {
    pub(crate) fn root(shared: Arc<CallShared>) -> Self {
        Self {
            shared,
            path: Vec::new(),
            current: Bytes::new(),
        }
    }
}

impl Demux {
    fn has_data(&self, path: &[usize]) -> bool {
        if path.is_empty() {
            return self.root.len > 0;
        }
        self.children
            .iter()
            .any(|(p, q)| p.as_slice() == path && q.len > 0)
    }

    /// Wakes every reader but the one at `path`: the socket may have been
    /// registered with a reader that is about to stop polling, so another
    /// waiting reader takes over.
    fn wake_others(&mut self, path: &[usize]) {
        if !path.is_empty() {
            self.root.wake();
        }
        for (p, q) in &mut self.children {
            if p.as_slice() != path {
                q.wake();
            }
        }
    }
}

impl AsyncRead for CallRx {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if !this.current.is_empty() {
            crate::call::copy_into(&mut this.current, buf);
            return Poll::Ready(Ok(()));
        }
        let conn = &this.shared.conn;
        // Whatever this call still has to send goes out while it waits.
        if let Ok(mut out) = conn.write.try_lock() {
            if out.pending() > 0 {
                let _ = out.poll_drain(cx);
            }
        }
        let mut read = conn.read();
        if read.demux.seq != this.shared.seq {
            return Poll::Ready(Err(call_over()));
        }
        let path = this.path.as_slice();
        loop {
            let demux = &mut read.demux;
            let Some(q) = demux.queue(path) else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no async value at path {path:?}"),
                )));
            };
            if let Some(chunk) = q.chunks.pop_front() {
                let was_full = q.len >= STREAM_BUFFER / 2;
                q.len -= chunk.len();
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                this.current = chunk.slice(n..);
                if was_full {
                    for w in demux.blocked.drain(..) {
                        w.wake();
                    }
                }
                demux.wake_others(path);
                return Poll::Ready(Ok(()));
            }
            match &demux.ending {
                Ending::Ended => return Poll::Ready(Ok(())),
                Ending::Failed(kind, msg) => {
                    return Poll::Ready(Err(io::Error::new(*kind, msg.clone())))
                }
                Ending::Open => {}
            }
            // Nothing follows a complete synchronous value on the root path;
            // a caller of a function without results waits for the end (or
            // the failure) of the call instead.
            let awaits_end = demux.side == Side::Client && demux.value.expects_nothing();
            if path.is_empty() && demux.value.complete() && !awaits_end {
                demux.wake_others(path);
                return Poll::Ready(Ok(()));
            }
            match read.pump(cx, |d| d.has_data(path)) {
                Poll::Ready(()) => continue,
                Poll::Pending => {
                    if let Some(q) = read.demux.queue(path) {
                        q.waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for CallRx {
    fn drop(&mut self) {
        if let Ok(mut read) = self.shared.conn.read.try_lock() {
            if read.demux.seq == self.shared.seq {
                read.demux.wake_others(&self.path);
            }
        }
    }
}

impl wrpc_transport::Index<Self> for CallRx {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let mut full = self.path.clone();
        full.extend_from_slice(path);
        Ok(Self {
            shared: Arc::clone(&self.shared),
            path: full,
            current: Bytes::new(),
        })
    }
}

/// Writes one path of a call's outgoing direction.
pub struct CallTx {
    shared: Arc<CallShared>,
    path: Vec<usize>,
}

impl CallTx {
    pub(crate) fn root(shared: Arc<CallShared>) -> Self {
        Self {
            shared,
            path: Vec::new(),
        }
    }
}

impl AsyncWrite for CallTx {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let conn = &self.shared.conn;
        if conn.read().demux.seq != self.shared.seq {
            return Poll::Ready(Err(call_over()));
        }
        // A synchronous value goes out as one frame (up to the peer's limit);
        // streams go out in chunks.
        let root = self.path.is_empty();
        let max = if root {
            conn.limits.max_frame as usize
        } else {
            MAX_CHUNK
        };
        let hold = root && self.shared.hold_root;
        let written = conn.write().poll_frame(cx, &self.path, buf, max, hold);
        match written {
            Poll::Ready(Err(err)) => Poll::Ready(Err(conn.read().explain_write_error(err))),
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.path.is_empty() && self.shared.hold_root {
            // Flushed with the call's end.
            return Poll::Ready(Ok(()));
        }
        self.shared.conn.write().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The end of a direction is written when the call ends; here only flush.
        self.shared.conn.write().poll_flush(cx)
    }
}

impl wrpc_transport::Index<Self> for CallTx {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let mut full = self.path.clone();
        full.extend_from_slice(path);
        Ok(Self {
            shared: Arc::clone(&self.shared),
            path: full,
        })
    }
}
