//! One byte-stream type for every transport, each bounded by the call's deadline.

use core::future::Future as _;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use wrpc_transport::Index;

/// A call's deadline, shared by all of its streams, and the name its I/O
/// errors carry.
#[derive(Clone, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    /// `` `instance.func` via TARGET ``.
    what: Arc<str>,
}

/// An I/O error on a routed call, naming the function and the target.
#[derive(Debug)]
pub(crate) struct CallFailure {
    what: Arc<str>,
    source: io::Error,
}

impl CallFailure {
    /// What went wrong, without the call's name.
    pub(crate) fn reason(&self) -> String {
        match self.source.kind() {
            io::ErrorKind::NotConnected => "nothing is serving it (no NATS responders)".into(),
            _ => self.source.to_string(),
        }
    }
}

impl core::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.what, self.reason())
    }
}

/// A leaf: its message already carries the underlying error's.
impl std::error::Error for CallFailure {}

impl Deadline {
    pub(crate) fn new(at: Instant, what: Arc<str>) -> Self {
        Self { at, what }
    }

    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// `err`, naming this call (once), with its kind kept for classification.
    pub(crate) fn annotate(&self, err: io::Error) -> io::Error {
        if err.get_ref().is_some_and(|inner| inner.is::<CallFailure>()) {
            return err;
        }
        let kind = err.kind();
        io::Error::new(
            kind,
            CallFailure {
                what: Arc::clone(&self.what),
                source: err,
            },
        )
    }

    fn timer(&self) -> Pin<Box<Sleep>> {
        Box::pin(tokio::time::sleep_until(self.at))
    }

    /// The error of a call whose deadline passed.
    pub(crate) fn expired(&self) -> io::Error {
        self.annotate(io::Error::new(
            io::ErrorKind::TimedOut,
            "its deadline passed",
        ))
    }

    fn poll_expired(&self, timer: &mut Pin<Box<Sleep>>, cx: &mut Context<'_>) -> Poll<io::Error> {
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(self.expired())
    }
}

enum OutgoingKind {
    Nats(wrpc_transport_nats::ParamWriter),
    Tcp(wrpc_transport::frame::Outgoing),
}

enum IncomingKind {
    Nats(wrpc_transport_nats::Reader),
    Tcp(wrpc_transport::frame::Incoming),
}

/// A transport's stream bounded by its call's deadline.
struct Guarded<K> {
    kind: K,
    deadline: Deadline,
    timer: Pin<Box<Sleep>>,
}

impl<K> Guarded<K> {
    fn new(kind: K, deadline: Deadline) -> Self {
        let timer = deadline.timer();
        Self {
            kind,
            deadline,
            timer,
        }
    }

    /// Polls `op` on the stream; while it is pending, the deadline. Errors name the call.
    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut K, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Poll::Ready(res) = op(&mut self.kind, cx) {
            return Poll::Ready(res.map_err(|err| self.deadline.annotate(err)));
        }
        self.deadline.poll_expired(&mut self.timer, cx).map(Err)
    }

    fn child(&self, kind: K) -> Self {
        Self::new(kind, self.deadline.clone())
    }
}

/// Parameters on their way to an extension, over whichever transport the route uses.
pub struct Outgoing(Guarded<OutgoingKind>);

/// Results on their way back from an extension.
pub struct Incoming(Guarded<IncomingKind>);

impl Outgoing {
    pub(crate) fn nats(w: wrpc_transport_nats::ParamWriter, deadline: Deadline) -> Self {
        Self(Guarded::new(OutgoingKind::Nats(w), deadline))
    }

    pub(crate) fn tcp(w: wrpc_transport::frame::Outgoing, deadline: Deadline) -> Self {
        Self(Guarded::new(OutgoingKind::Tcp(w), deadline))
    }
}

impl Incoming {
    pub(crate) fn nats(r: wrpc_transport_nats::Reader, deadline: Deadline) -> Self {
        Self(Guarded::new(IncomingKind::Nats(r), deadline))
    }

    pub(crate) fn tcp(r: wrpc_transport::frame::Incoming, deadline: Deadline) -> Self {
        Self(Guarded::new(IncomingKind::Tcp(r), deadline))
    }
}

impl AsyncWrite for Outgoing {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_io(cx, |kind, cx| match kind {
            OutgoingKind::Nats(w) => Pin::new(w).poll_write(cx, buf),
            OutgoingKind::Tcp(w) => Pin::new(w).poll_write(cx, buf),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_io(cx, |kind, cx| match kind {
            OutgoingKind::Nats(w) => Pin::new(w).poll_flush(cx),
            OutgoingKind::Tcp(w) => Pin::new(w).poll_flush(cx),
        })
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_io(cx, |kind, cx| match kind {
            OutgoingKind::Nats(w) => Pin::new(w).poll_shutdown(cx),
            OutgoingKind::Tcp(w) => Pin::new(w).poll_shutdown(cx),
        })
    }
}

impl AsyncRead for Incoming {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_io(cx, |kind, cx| match kind {
            IncomingKind::Nats(r) => Pin::new(r).poll_read(cx, buf),
            IncomingKind::Tcp(r) => Pin::new(r).poll_read(cx, buf),
        })
    }
}

impl Index<Self> for Outgoing {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let kind = match &self.0.kind {
            OutgoingKind::Nats(w) => OutgoingKind::Nats(w.index(path)?),
            OutgoingKind::Tcp(w) => OutgoingKind::Tcp(w.index(path)?),
        };
        Ok(Self(self.0.child(kind)))
    }
}

impl Index<Self> for Incoming {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let kind = match &self.0.kind {
            IncomingKind::Nats(r) => IncomingKind::Nats(r.index(path)?),
            IncomingKind::Tcp(r) => IncomingKind::Tcp(r.index(path)?),
        };
        Ok(Self(self.0.child(kind)))
    }
}
