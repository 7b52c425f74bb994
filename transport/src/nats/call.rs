//! One call's streams over NATS, on either side.

use core::future::Future as _;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use async_nats::message::OutboundMessage;
use async_nats::{StatusCode, Subject};
use bytes::{Buf as _, Bytes};
use futures::SinkExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tracing::debug;

use super::demux::Demux;
use super::flow::{parse_window, Flow, CREDIT_HEADER, CREDIT_TAIL};
use super::probe::{no_responders, Probe};
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
    /// No responders: asking whether the instance is served at all.
    Probing(tokio::task::JoinHandle<io::Error>),
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
    /// Flow control of the call's async paths (see [`super::flow`]).
    pub(crate) flow: Mutex<Flow>,
    /// Client: what to ask if NATS finds no responders (see [`super::probe`]).
    pub(crate) probe: Option<Probe>,
}

impl Drop for NatsCall {
    fn drop(&mut self) {
        self.demux.unregister(self.id);
        if let Handshake::Probing(task) = self
            .handshake
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            task.abort();
        }
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
            match &mut *hs {
                Handshake::Known(rs) => return Poll::Ready(Ok(rs.clone())),
                Handshake::Failed(kind, msg) => {
                    return Poll::Ready(Err(io::Error::new(*kind, msg.clone())))
                }
                Handshake::Probing(task) => {
                    let err = ready!(Pin::new(task).poll(cx)).unwrap_or_else(|_| no_responders());
                    *hs = Handshake::Failed(err.kind(), err.to_string());
                    continue;
                }
                Handshake::Waiting => {}
            }
            let msg = ready!(self.demux.poll_recv(self.id, "", cx))?;
            // The server grants a window on parameter streams (see `flow`).
            if let Some(window) = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(CREDIT_HEADER))
                .and_then(|v| parse_window(v.as_str()))
            {
                lock(&self.flow).out_window = Some(window);
            }
            *hs = match (msg.status, msg.reply) {
                (Some(StatusCode::NO_RESPONDERS), _) => {
                    match (&self.probe, tokio::runtime::Handle::try_current()) {
                        (Some(probe), Ok(runtime)) => {
                            Handshake::Probing(runtime.spawn(probe.clone().failure(
                                self.nats.clone(),
                                Arc::clone(&self.demux),
                                self.id,
                            )))
                        }
                        _ => {
                            let err = no_responders();
                            Handshake::Failed(err.kind(), err.to_string())
                        }
                    }
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
                (_, Some(rs)) => {
                    if self.side == Side::Client && self.lean {
                        self.end_params(&rs);
                    }
                    Handshake::Known(rs.to_string())
                }
                (_, None) => Handshake::Failed(
                    io::ErrorKind::InvalidData,
                    "the server's handshake has no reply subject".into(),
                ),
            };
        }
    }

    /// A lean caller's end of parameters, for a server that handshook: only
    /// servers that ignore the lean form do, and a wRPC 0.17 server waits
    /// for this end before it decodes parameters that take no bytes at all.
    fn end_params(&self, rs: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let nats = self.nats.clone();
        let subject = format!("{rs}.params");
        runtime.spawn(async move {
            if let Err(err) = nats.publish(subject, Bytes::new()).await {
                debug!(%err, "failed to end a call's parameters");
            }
        });
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
    /// A credit message not yet handed to the connection: (subject, payload).
    credit: Option<(String, String)>,
}

impl CallRx {
    pub(crate) fn root(call: Arc<NatsCall>) -> Self {
        Self {
            call,
            path: Vec::new(),
            current: Bytes::new(),
            ended: false,
            credit: None,
        }
    }

    /// Hands the pending credit message, if any, to the connection.
    fn poll_credit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((subject, payload)) = self.credit.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut sink = self.call.nats.clone();
        match sink.poll_ready_unpin(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(err)) => {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, err)))
            }
            Poll::Pending => {
                self.credit = Some((subject, payload));
                return Poll::Pending;
            }
        }
        sink.start_send_unpin(OutboundMessage {
            subject: Subject::from(subject),
            reply: None,
            payload: Bytes::from(payload),
            headers: None,
        })
        .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))?;
        Poll::Ready(Ok(()))
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
                // A credit that could not leave yet goes with the next read;
                // until then the writer waits, which is what a reader this
                // slow wants.
                let _ = this.poll_credit(cx)?;
                crate::call::copy_into(&mut this.current, buf);
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            // Before waiting for data the writer may be waiting for credit.
            if this.poll_credit(cx)?.is_pending() {
                return Poll::Pending;
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
                // A function without results: the call is over when its end
                // of results (or an error, or "no responders") arrives.
                let (complete, nothing) = {
                    let value = lock(&call.root);
                    (value.complete(), value.expects_nothing())
                };
                if complete && !(call.side == Side::Client && nothing) {
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
                let mut flow = lock(&call.flow);
                if call.side == Side::Client && flow.credit_to.is_none() {
                    // The server's messages name its call inbox when it
                    // honours credit (see `flow`).
                    flow.credit_to = msg.reply.as_ref().map(ToString::to_string);
                }
                this.credit = flow.consumed(&this.path, msg.payload.len());
                drop(flow);
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
            credit: None,
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

    /// Sends stream data; a server under flow control names its call inbox
    /// as the reply subject, where the caller's credits go.
    fn start_send_data(
        &mut self,
        subject: String,
        payload: Bytes,
        limited: bool,
    ) -> io::Result<()> {
        let reply = (limited && self.call.side == Side::Server)
            .then(|| Subject::from(self.call.demux.subject(self.call.id, "")));
        self.sink
            .start_send_unpin(OutboundMessage {
                subject: Subject::from(subject),
                reply,
                payload,
                headers: None,
            })
            .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))
    }

    /// How many bytes this path may send now: waits for credit while the
    /// reader's window is full. `None` when the path is not flow-controlled.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        if self.path.is_empty() {
            return Poll::Ready(Ok(None));
        }
        loop {
            match lock(&self.call.flow).room(&self.path) {
                None => return Poll::Ready(Ok(None)),
                Some(0) => {}
                Some(n) => return Poll::Ready(Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)))),
            }
            let msg = ready!(self.call.demux.poll_recv(self.call.id, CREDIT_TAIL, cx))?;
            if !lock(&self.call.flow).credit(&msg.payload) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed credit message",
                )));
            }
        }
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
        let room = ready!(this.poll_room(cx))?;
        ready!(this.poll_ready(cx))?;
        let n = buf
            .len()
            .min(max_payload(&this.sink))
            .min(room.unwrap_or(usize::MAX));
        this.start_send_data(subject, Bytes::copy_from_slice(&buf[..n]), room.is_some())?;
        lock(&this.call.flow).sent(&this.path, n);
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
