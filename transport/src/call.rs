//! The streams of one call, the same types on every transport and on both
//! sides: [`Outgoing`] and [`Incoming`], each bounded in time. The
//! synchronous part of a call has an absolute deadline; a streamed value
//! instead may make no progress for longer than an idle timeout.

use core::future::Future as _;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use wrpc_transport::Index;

use crate::metrics::{ClientStats, Outcome};

/// How one call's streams are named in errors and bounded in time.
///
/// The idle timeout is the call's: a streamed value waiting for its first
/// byte is not stalled while the call's other streams move (a write's
/// verdict is awaited for as long as its body keeps flowing).
#[derive(Debug)]
pub struct CallTimer {
    call: Arc<str>,
    /// Where the call goes or comes from, joined to `call` only in errors.
    place: Option<Arc<str>>,
    deadline: Option<Instant>,
    idle: Duration,
    /// When the timer was made, and the last progress of any streamed value
    /// after it (nanoseconds).
    base: Instant,
    progress: AtomicU64,
    /// The first failure seen ([`crate::metrics::Outcome`]), for `stats`.
    outcome: AtomicU8,
    /// Where a client call's outcome and duration are counted.
    stats: Option<Arc<ClientStats>>,
}

impl CallTimer {
    /// `what` names the call in errors (e.g. `` `wrpc:keyvalue/store@0.2.0-draft.get` via tcp://… ``);
    /// `deadline` bounds the synchronous part; `idle` bounds each stretch
    /// without progress on a streamed value.
    pub fn new(what: impl Into<Arc<str>>, deadline: Option<Instant>, idle: Duration) -> Self {
        Self {
            call: what.into(),
            place: None,
            deadline,
            idle,
            base: Instant::now(),
            progress: AtomicU64::new(0),
            outcome: AtomicU8::new(Outcome::Ok as u8),
            stats: None,
        }
    }

    /// Like [`CallTimer::new`], the name in two shared parts (e.g. the
    /// function, and `via tcp://…`) joined only if an error needs it, so a
    /// call costs no formatting.
    pub fn named(
        call: Arc<str>,
        place: Arc<str>,
        deadline: Option<Instant>,
        idle: Duration,
    ) -> Self {
        Self {
            call,
            place: Some(place),
            deadline,
            idle,
            base: Instant::now(),
            progress: AtomicU64::new(0),
            outcome: AtomicU8::new(Outcome::Ok as u8),
            stats: None,
        }
    }

    /// Counts the call in `stats` when the timer is dropped (the call is
    /// over): its duration, and its outcome by the first error it annotated.
    #[must_use]
    pub fn counted(mut self, stats: Arc<ClientStats>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// Records that a streamed value of the call moved.
    fn progressed(&self) {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.progress.fetch_max(now, Ordering::Relaxed);
    }

    /// When the call's idle timeout runs out, counting from its last progress.
    fn idle_until(&self) -> Instant {
        let last = self.base + Duration::from_nanos(self.progress.load(Ordering::Relaxed));
        last + self.idle
    }

    /// The name used in errors.
    pub fn what(&self) -> String {
        match &self.place {
            Some(place) => format!("{} {place}", self.call),
            None => self.call.to_string(),
        }
    }

    /// The deadline of the synchronous part.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// `err` with this call's name (once), its kind kept.
    pub fn annotate(&self, err: io::Error) -> io::Error {
        let outcome = match err.kind() {
            io::ErrorKind::TimedOut => Outcome::Timeout,
            kind if is_unreachable(kind) => Outcome::Unreachable,
            _ => Outcome::Error,
        };
        let _ = self.outcome.compare_exchange(
            Outcome::Ok as u8,
            outcome as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if err.get_ref().is_some_and(|inner| inner.is::<CallFailure>()) {
            return err;
        }
        io::Error::new(
            err.kind(),
            CallFailure {
                what: self.what().into(),
                source: err,
            },
        )
    }

    /// The error of a call whose deadline passed.
    pub fn expired(&self) -> io::Error {
        self.annotate(io::Error::new(
            io::ErrorKind::TimedOut,
            "its deadline passed",
        ))
    }

    fn stalled(&self) -> io::Error {
        self.annotate(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("a streamed value made no progress for {:?}", self.idle),
        ))
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        if let Some(stats) = &self.stats {
            let outcome = Outcome::from_u8(self.outcome.load(Ordering::Relaxed));
            stats.record(outcome, self.base.elapsed());
        }
    }
}

/// An I/O error on a call, naming the call.
#[derive(Debug)]
pub struct CallFailure {
    what: Arc<str>,
    source: io::Error,
}

impl CallFailure {
    /// The call's name, e.g. `` `instance.func` via TARGET ``.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The I/O error the call failed with.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }

    /// What went wrong, without the call's name.
    pub fn reason(&self) -> String {
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

/// Whether an I/O error of `kind` means nothing answered at the target
/// (refused, no NATS responders, unreachable): the callee never saw the call.
pub fn is_unreachable(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::NotConnected
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NotFound
    )
}

/// The first I/O error kind in `err`'s chain that explains a failed call:
/// `TimedOut` for a passed deadline, or one that [`is_unreachable`].
pub fn failure_kind(err: &anyhow::Error) -> Option<io::ErrorKind> {
    err.chain().find_map(|cause| {
        let kind = cause.downcast_ref::<io::Error>()?.kind();
        (kind == io::ErrorKind::TimedOut || is_unreachable(kind)).then_some(kind)
    })
}

/// Why a call failed, in one line without the call's name: the
/// [`CallFailure`] reason anywhere in `err`'s chain, else the whole chain.
pub fn failure_reason(err: &anyhow::Error) -> String {
    err.chain()
        .find_map(|cause| {
            cause
                .downcast_ref::<io::Error>()?
                .get_ref()?
                .downcast_ref::<CallFailure>()
        })
        .map_or_else(|| format!("{err:#}"), CallFailure::reason)
}

enum Clock {
    /// The synchronous part: one absolute deadline, if any.
    At(Option<Instant>),
    /// A streamed value: no progress for this long fails it.
    Idle { progress: bool },
}

/// A transport's stream bounded by its call's clock.
struct Timed<K> {
    kind: K,
    timer: Arc<CallTimer>,
    clock: Clock,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<K> Timed<K> {
    fn root(kind: K, timer: Arc<CallTimer>) -> Self {
        let deadline = timer.deadline;
        Self {
            kind,
            timer,
            clock: Clock::At(deadline),
            sleep: None,
        }
    }

    fn streamed(kind: K, timer: Arc<CallTimer>) -> Self {
        Self {
            kind,
            timer,
            clock: Clock::Idle { progress: false },
            sleep: None,
        }
    }

    fn child(&self, kind: K) -> Self {
        Self::streamed(kind, Arc::clone(&self.timer))
    }

    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut K, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Poll::Ready(res) = op(&mut self.kind, cx) {
            if let Clock::Idle { progress } = &mut self.clock {
                *progress = true;
                self.timer.progressed();
            }
            return Poll::Ready(res.map_err(|err| self.timer.annotate(err)));
        }
        let at = match &mut self.clock {
            Clock::At(None) => return Poll::Pending,
            Clock::At(Some(at)) => *at,
            Clock::Idle { progress } => {
                let fresh = core::mem::take(progress) || self.sleep.is_none();
                if fresh {
                    // This value starts waiting: its idle time counts from now.
                    self.timer.progressed();
                }
                self.timer.idle_until()
            }
        };
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        if sleep.as_mut().poll(cx).is_ready() {
            if let Clock::Idle { .. } = self.clock {
                // Another value of the call may have moved meanwhile.
                let until = self.timer.idle_until();
                if until > Instant::now() {
                    sleep.as_mut().reset(until);
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
            return Poll::Ready(Err(match self.clock {
                Clock::At(_) => self.timer.expired(),
                Clock::Idle { .. } => self.timer.stalled(),
            }));
        }
        Poll::Pending
    }
}

pub(crate) enum OutKind {
    Stream(crate::stream::CallTx),
    Nats(crate::nats::CallTx),
}

pub(crate) enum InKind {
    Stream(crate::stream::CallRx),
    Nats(crate::nats::CallRx),
}

/// Bytes a call sends: parameters (client) or results (server).
pub struct Outgoing(Timed<OutKind>);

/// Bytes a call receives: results (client) or parameters (server).
pub struct Incoming(Timed<InKind>);

impl Outgoing {
    /// The synchronous direction, bounded by `timer`'s deadline when `sync` is
    /// true, else by its idle timeout (a server's results).
    pub(crate) fn new(kind: OutKind, timer: Arc<CallTimer>, sync: bool) -> Self {
        Self(if sync {
            Timed::root(kind, timer)
        } else {
            Timed::streamed(kind, timer)
        })
    }
}

impl Incoming {
    /// The root of a call's incoming direction, bounded by `timer`'s deadline.
    pub(crate) fn new(kind: InKind, timer: Arc<CallTimer>) -> Self {
        Self(Timed::root(kind, timer))
    }
}

impl AsyncWrite for Outgoing {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_io(cx, |kind, cx| match kind {
            OutKind::Stream(w) => Pin::new(w).poll_write(cx, buf),
            OutKind::Nats(w) => Pin::new(w).poll_write(cx, buf),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_io(cx, |kind, cx| match kind {
            OutKind::Stream(w) => Pin::new(w).poll_flush(cx),
            OutKind::Nats(w) => Pin::new(w).poll_flush(cx),
        })
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_io(cx, |kind, cx| match kind {
            OutKind::Stream(w) => Pin::new(w).poll_shutdown(cx),
            OutKind::Nats(w) => Pin::new(w).poll_shutdown(cx),
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
            InKind::Stream(r) => Pin::new(r).poll_read(cx, buf),
            InKind::Nats(r) => Pin::new(r).poll_read(cx, buf),
        })
    }
}

impl Index<Self> for Outgoing {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let kind = match &self.0.kind {
            OutKind::Stream(w) => OutKind::Stream(w.index(path)?),
            OutKind::Nats(w) => OutKind::Nats(w.index(path)?),
        };
        Ok(Self(self.0.child(kind)))
    }
}

impl Index<Self> for Incoming {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let kind = match &self.0.kind {
            InKind::Stream(r) => InKind::Stream(r.index(path)?),
            InKind::Nats(r) => InKind::Nats(r.index(path)?),
        };
        Ok(Self(self.0.child(kind)))
    }
}

/// Moves as much of `from` as fits into `to`.
pub(crate) fn copy_into(from: &mut bytes::Bytes, to: &mut ReadBuf<'_>) {
    let n = from.len().min(to.remaining());
    to.put_slice(&from[..n]);
    bytes::Buf::advance(from, n);
}
