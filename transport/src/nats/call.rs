//! One call's streams over NATS, on either side.

use core::pin::Pin;
use core::task::{ready, Context, Poll};

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use async_nats::message::OutboundMessage;
use async_nats::{StatusCode, Subject};
use bytes::{Buf as _, Bytes};
use futures::SinkExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::demux::Demux;
use super::{index_tail, ERROR_HEADER};
use crate::value::RootValue;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the server's inbox is, as far as the caller knows.
pub(crate) enum Handshake {
    /// Not yet answered.
    Waiting,
    /// The server's inbox `R_s`.
    Known(String),
    /// The call failed before it started (e.g. no responders).
    Failed(io::ErrorKind, String),
}

/// Which side of the call this end is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// What every stream of one NATS call shares; dropping it ends the routing.
pub(crate) struct NatsCall {
    pub(crate) nats: async_nats::Client,
    pub(crate) demux: Arc<Demux>,
    pub(crate) id: u64,
    pub(crate) side: Side,
    /// Client: all parameters went in the first message.
    pub(crate) lean: bool,
    /// Client: the server's inbox. Server: unused.
    pub(crate) handshake: Mutex<Handshake>,
    /// Client: parameters that did not fit the first message.
    pub(crate) pending: Mutex<Bytes>,
    /// Server: the caller's inbox `R_c`.
    pub(crate) reply: String,
    /// Server: the first parameter bytes (from the invocation message).
    pub(crate) initial: Mutex<Option<Bytes>>,
    pub(crate) root: Mutex<RootValue>,
}

impl Drop for NatsCall {
    fn drop(&mut self) {
        self.demux.unregister(self.id);
    }
}

impl NatsCall {
    fn incoming_base(&self) -> &'static str {
        match self.side {
            Side::Client => "results",
            Side::Server => "params",
        }
    }

    /// Client: the server's inbox once its handshake arrived.
    fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<io::Result<String>> {
        let mut hs = lock(&self.handshake);
        loop {
            match &*hs {
                Handshake::Known(rs) => return Poll::Ready(Ok(rs.clone())),
                Handshake::Failed(kind, msg) => {
                    return Poll::Ready(Err(io::Error::new(*kind, msg.clone())))
                }
                Handshake::Waiting => {}
            }
            let msg = ready!(self.demux.poll_recv(self.id, "", cx))?;
            *hs = match (msg.status, msg.reply) {
                (Some(StatusCode::NO_RESPONDERS), _) => {
                    Handshake::Failed(io::ErrorKind::NotConnected, "no NATS responders".into())
                }
                (Some(code), _) if !code.is_success() => Handshake::Failed(
                    io::ErrorKind::Other,
                    format!(
                        "NATS answered with status {code}{}",
                        msg.description
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ),
                (_, Some(rs)) => Handshake::Known(rs.to_string()),
                (_, None) => Handshake::Failed(
                    io::ErrorKind::InvalidData,
                    "the server's handshake has no reply subject".into(),
                ),
            };
        }
    }

    /// The subject this side writes `path` to.
    fn poll_out_subject(&self, path: &[usize], cx: &mut Context<'_>) -> Poll<io::Result<String>> {
        match self.side {
            Side::Server => Poll::Ready(Ok(index_tail(&format!("{}.results", self.reply), path))),
            Side::Client => {
                if self.lean {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "this call's parameters were sent as complete",
                    )));
                }
                let rs = ready!(self.poll_handshake(cx))?;
                Poll::Ready(Ok(index_tail(&format!("{rs}.params"), path)))
            }
        }
    }
}

fn max_payload(nats: &async_nats::Client) -> usize {
    nats.server_info().max_payload.max(1)
}

/// Reads one path of a NATS call.
pub struct CallRx {
    call: Arc<NatsCall>,
    path: Vec<usize>,
    current: Bytes,
    ended: bool,
}

impl CallRx {
    pub(crate) fn root(call: Arc<NatsCall>) -> Self {
        Self {
            call,
            path: Vec::new(),
            current: Bytes::new(),
            ended: false,
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
        loop {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if !this.current.is_empty() {
                crate::call::copy_into(&mut this.current, buf);
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            let call = &this.call;
            let root = this.path.is_empty();
            if root {
                if let Some(first) = lock(&call.initial).take() {
                    let pass = lock(&call.root)
                        .push(first)
                        .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
                    if let Some(pass) = pass {
                        this.current = pass;
                    }
                    continue;
                }
                if lock(&call.root).complete() {
                    this.ended = true;
                    continue;
                }
                if call.side == Side::Server && call.lean {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the caller sent incomplete parameters marked as complete",
                    )));
                }
                if call.side == Side::Client {
                    if let Poll::Ready(Err(err)) = call.poll_handshake(cx) {
                        return Poll::Ready(Err(err));
                    }
                }
            }
            let tail = index_tail(call.incoming_base(), &this.path);
            let msg = ready!(call.demux.poll_recv(call.id, &tail, cx))?;
            if msg.payload.is_empty() {
                if let Some(why) = msg.headers.as_ref().and_then(|h| h.get(ERROR_HEADER)) {
                    return Poll::Ready(Err(io::Error::other(format!(
                        "the extension failed the call: {}",
                        why.as_str()
                    ))));
                }
                this.ended = true;
                continue;
            }
            if root {
                let pass = lock(&call.root)
                    .push(msg.payload)
                    .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
                if let Some(pass) = pass {
                    this.current = pass;
                }
            } else {
                this.current = msg.payload;
            }
        }
    }
}

impl wrpc_transport::Index<Self> for CallRx {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let mut full = self.path.clone();
        full.extend_from_slice(path);
        Ok(Self {
            call: Arc::clone(&self.call),
            path: full,
            current: Bytes::new(),
            ended: false,
        })
    }
}

/// Writes one path of a NATS call.
pub struct CallTx {
    call: Arc<NatsCall>,
    path: Vec<usize>,
    sink: async_nats::Client,
    shut: bool,
}

impl CallTx {
    pub(crate) fn root(call: Arc<NatsCall>) -> Self {
        let sink = call.nats.clone();
        Self {
            call,
            path: Vec::new(),
            sink,
            shut: false,
        }
    }

    fn start_send(&mut self, subject: String, payload: Bytes) -> io::Result<()> {
        self.sink
            .start_send_unpin(OutboundMessage {
                subject: Subject::from(subject),
                reply: None,
                payload,
                headers: None,
            })
            .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.sink
            .poll_ready_unpin(cx)
            .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))
    }

    /// Client root: sends the parameters that did not fit the first message.
    fn poll_pending(&mut self, subject: &str, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.path.is_empty() || self.call.side != Side::Client {
            return Poll::Ready(Ok(()));
        }
        loop {
            let chunk = {
                let pending = lock(&self.call.pending);
                if pending.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                pending.slice(..pending.len().min(max_payload(&self.sink)))
            };
            ready!(self.poll_ready(cx))?;
            let n = chunk.len();
            self.start_send(subject.to_string(), chunk)?;
            lock(&self.call.pending).advance(n);
        }
    }
}

impl AsyncWrite for CallTx {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let subject = ready!(this.call.poll_out_subject(&this.path, cx))?;
        ready!(this.poll_pending(&subject, cx))?;
        ready!(this.poll_ready(cx))?;
        let n = buf.len().min(max_payload(&this.sink));
        this.start_send(subject, Bytes::copy_from_slice(&buf[..n]))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.sink
            .poll_flush_unpin(cx)
            .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shut {
            return Poll::Ready(Ok(()));
        }
        // A server's synchronous results are ended by the serve loop; a
        // lean caller has nothing more to send.
        let root = this.path.is_empty();
        if root && (this.call.side == Side::Server || this.call.lean) {
            this.shut = true;
            return Poll::Ready(Ok(()));
        }
        let subject = ready!(this.call.poll_out_subject(&this.path, cx))?;
        ready!(this.poll_pending(&subject, cx))?;
        ready!(this.poll_ready(cx))?;
        this.start_send(subject, Bytes::new())?;
        this.shut = true;
        this.sink
            .poll_flush_unpin(cx)
            .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))
    }
}

impl Drop for CallTx {
    fn drop(&mut self) {
        // A nested stream dropped without its end marker: end it now, if the
        // connection takes the message at once.
        if self.shut || self.path.is_empty() {
            return;
        }
        let mut cx = Context::from_waker(core::task::Waker::noop());
        if let Poll::Ready(Ok(subject)) = self.call.poll_out_subject(&self.path, &mut cx) {
            if let Poll::Ready(Ok(())) = self.poll_ready(&mut cx) {
                let _ = self.start_send(subject, Bytes::new());
            }
        }
    }
}

impl wrpc_transport::Index<Self> for CallTx {
    fn index(&self, path: &[usize]) -> anyhow::Result<Self> {
        let mut full = self.path.clone();
        full.extend_from_slice(path);
        Ok(Self {
            call: Arc::clone(&self.call),
            path: full,
            sink: self.call.nats.clone(),
            shut: false,
        })
    }
}
