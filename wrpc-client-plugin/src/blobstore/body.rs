//! Object bodies between a guest's `wasi:io` streams and the wire's
//! `stream<u8>`, in bounded memory both ways.
//!
//! Writing: the guest's output stream fills a [`Pipe`] of at most
//! [`PIPE_BYTES`]; once `write-data` has started the wire call, a task pumps
//! the pipe into the call's body stream, one chunk of at most
//! [`CHUNK`] bytes at a time. A full pipe makes the guest wait (its
//! `check-write` is 0), so a slow extension slows the guest. `finish` ends
//! the body with the stream's end marker; a value dropped without `finish`
//! ends the call without it, and the extension discards the object.
//!
//! Reading: the guest's input stream reads the call's body stream directly,
//! one transport read at a time, so a guest that reads slowly slows the
//! extension (and through it S3).

use core::future::poll_fn;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt as _;
use transport::frame::put_leb_u32;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use transport::async_values::{Buffered, ByteChunks};
use transport::schema::codec::ToValue;
use transport::schema::ValueLimits;

use super::wire;
use crate::Outgoing;

/// Most bytes a guest may have written that the wire has not taken.
pub(crate) const PIPE_BYTES: usize = 256 * 1024;

/// Largest chunk sent on the wire.
pub(crate) const CHUNK: usize = 64 * 1024;

/// The most one guest read returns (what has arrived, merged up to this).
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// How a body's writing ends.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    /// Still being written.
    Open,
    /// `finish` was called: the end marker follows the bytes.
    Finished,
    /// The value was dropped unfinished: the call ends without the marker.
    Abandoned,
}

#[derive(Debug)]
struct PipeState {
    chunks: VecDeque<Bytes>,
    len: usize,
    end: End,
    /// Why the body can no longer be written (the upload failed).
    failed: Option<String>,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// The bytes a guest wrote, waiting for the wire.
#[derive(Debug)]
pub(crate) struct Pipe(Mutex<PipeState>);

/// What the pump gets next from a pipe.
pub(crate) enum Next {
    Bytes(Bytes),
    Finished,
    Abandoned,
}

impl Pipe {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(PipeState {
            chunks: VecDeque::new(),
            len: 0,
            end: End::Open,
            failed: None,
            reader: None,
            writer: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the guest has written anything yet.
    pub(crate) fn touched(&self) -> bool {
        let state = self.lock();
        state.len > 0 || state.end != End::Open
    }

    /// No more bytes follow: `finish` was called.
    pub(crate) fn finish(&self) {
        self.close(End::Finished);
    }

    /// The value was dropped without `finish`.
    pub(crate) fn abandon(&self) {
        self.close(End::Abandoned);
    }

    fn close(&self, end: End) {
        let mut state = self.lock();
        if state.end == End::Open {
            state.end = end;
        }
        if let Some(w) = state.reader.take() {
            w.wake();
        }
        if let Some(w) = state.writer.take() {
            w.wake();
        }
    }

    /// The body can no longer be written: `why` is what the guest's next write reads.
    pub(crate) fn fail(&self, why: String) {
        let mut state = self.lock();
        state.failed.get_or_insert(why);
        state.chunks.clear();
        state.len = 0;
        if let Some(w) = state.writer.take() {
            w.wake();
        }
    }

    /// Up to `max` buffered bytes (merged), or how the body ended.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>, max: usize) -> Poll<Next> {
        let mut state = self.lock();
        if state.end == End::Abandoned {
            return Poll::Ready(Next::Abandoned);
        }
        if state.len > 0 {
            let mut out = BytesMut::new();
            while let Some(mut chunk) = state.chunks.pop_front() {
                let room = max - out.len();
                if chunk.len() > room {
                    let rest = chunk.split_off(room);
                    state.chunks.push_front(rest);
                }
                out.extend_from_slice(&chunk);
                if out.len() == max {
                    break;
                }
            }
            state.len -= out.len();
            if let Some(w) = state.writer.take() {
                w.wake();
            }
            return Poll::Ready(Next::Bytes(out.freeze()));
        }
        match state.end {
            End::Finished => Poll::Ready(Next::Finished),
            End::Abandoned => Poll::Ready(Next::Abandoned),
            End::Open => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The guest's output stream of an outgoing value.
pub(crate) struct BodyWriter {
    pipe: Arc<Pipe>,
    /// How long a full pipe may go without the wire taking anything.
    idle: Duration,
}

impl BodyWriter {
    pub(crate) fn new(pipe: Arc<Pipe>, idle: Duration) -> Self {
        Self { pipe, idle }
    }

    fn room(state: &PipeState) -> StreamResult<usize> {
        if let Some(why) = &state.failed {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "{why}"
            )));
        }
        if state.end != End::Open {
            return Err(StreamError::Closed);
        }
        Ok(PIPE_BYTES - state.len)
    }
}

impl OutputStream for BodyWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut state = self.pipe.lock();
        let room = Self::room(&state)?;
        if bytes.len() > room {
            return Err(StreamError::trap("wrote more than check-write allowed"));
        }
        if !bytes.is_empty() {
            state.len += bytes.len();
            state.chunks.push_back(bytes);
            if let Some(w) = state.reader.take() {
                w.wake();
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Buffered bytes leave as fast as the wire takes them; `check-write`
        // reports the room they leave.
        Self::room(&self.pipe.lock()).map(|_| ())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Self::room(&self.pipe.lock())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BodyWriter {
    async fn ready(&mut self) {
        let pipe = Arc::clone(&self.pipe);
        let wait = poll_fn(|cx| {
            let mut state = pipe.lock();
            if state.failed.is_some() || state.end != End::Open || state.len < PIPE_BYTES {
                return Poll::Ready(());
            }
            state.writer = Some(cx.waker().clone());
            Poll::Pending
        });
        if tokio::time::timeout(self.idle, wait).await.is_err() {
            // Nothing took the bytes: never wait without end.
            self.pipe.fail(format!(
                "the body's {PIPE_BYTES}-byte buffer stayed full for {:?}: nothing is sending it \
                 (call container.write-data before writing more than {PIPE_BYTES} bytes)",
                self.idle
            ));
        }
    }
}

/// Sends a pipe's bytes as the `stream<u8>` on `body` until the guest
/// finishes (end marker) or abandons the value (no marker: the extension
/// discards the object), then waits for the extension's verdict on the
/// object (`status`). An early verdict (the extension failed the write)
/// stops the body and fails the guest's next write with its reason.
pub(crate) async fn pump(
    pipe: Arc<Pipe>,
    mut body: Outgoing,
    mut status: Status,
    limits: ValueLimits,
) -> Result<(), String> {
    let verdict = status.get(&limits);
    tokio::pin!(verdict);
    let early = |pipe: &Pipe, verdict: Result<(), String>| {
        let why = verdict.err().unwrap_or_else(|| {
            "the extension ended the write before the body was complete".to_string()
        });
        pipe.fail(why.clone());
        Err(why)
    };
    let mut frame = BytesMut::with_capacity(CHUNK + 5);
    loop {
        let next = tokio::select! {
            next = poll_fn(|cx| pipe.poll_next(cx, CHUNK)) => next,
            verdict = &mut verdict => return early(&pipe, verdict),
        };
        let sent = match next {
            Next::Bytes(bytes) => {
                frame.clear();
                put_leb_u32(&mut frame, bytes.len() as u32);
                frame.extend_from_slice(&bytes);
                tokio::select! {
                    sent = body.write_all(&frame) => sent,
                    verdict = &mut verdict => return early(&pipe, verdict),
                }
            }
            Next::Finished => {
                let end = async {
                    body.write_all(&[0]).await?;
                    body.flush().await?;
                    body.shutdown().await
                };
                let sent = tokio::select! {
                    sent = end => sent,
                    verdict = &mut verdict => return early(&pipe, verdict),
                };
                if let Err(err) = sent {
                    let why = format!("sending the body's end failed: {err}");
                    pipe.fail(why.clone());
                    return Err(why);
                }
                return verdict.await;
            }
            Next::Abandoned => {
                return Err("the value was dropped without outgoing-value.finish".into())
            }
        };
        if let Err(err) = sent {
            // The extension's reason, when it gave one, says more.
            let why = match tokio::time::timeout(Duration::from_secs(1), &mut verdict).await {
                Ok(Err(why)) => why,
                _ => format!("sending the body failed: {err}"),
            };
            pipe.fail(why.clone());
            return Err(why);
        }
    }
}

/// Where a read body's status (the future beside its stream) comes from.
pub(crate) enum Status {
    /// Already known from the synchronous results.
    Known(Result<(), String>),
    /// To be read from the future's async path.
    Pending(Buffered),
}

impl Status {
    /// The body's status: `Ok` when the extension sent every byte.
    /// Cancel-safe: what was read stays buffered.
    pub(crate) async fn get(&mut self, limits: &ValueLimits) -> Result<(), String> {
        match self {
            Self::Known(status) => status.clone(),
            Self::Pending(r) => {
                let read = r.value(&wire::status_type(), limits, &mut ToValue).await;
                let status = match read.and_then(wire::status) {
                    Ok(status) => status,
                    Err(err) => Err(format!("reading the transfer's status failed: {err}")),
                };
                *self = Self::Known(status.clone());
                status
            }
        }
    }
}

/// Where a read body's bytes come from.
pub(crate) enum Source {
    /// The whole body arrived with the synchronous results.
    Inline(Bytes),
    /// Chunks on the stream's async path.
    Stream(Box<ByteChunks>),
}

/// The guest's input stream of an incoming value.
pub(crate) struct BodyReader {
    source: Source,
    status: Status,
    ready: Bytes,
    /// Set once the body ended: `Ok` for a clean end, the error otherwise.
    ended: Option<Result<(), String>>,
    limits: ValueLimits,
}

impl BodyReader {
    pub(crate) fn new(source: Source, status: Status, limits: ValueLimits) -> Self {
        Self {
            source,
            status,
            ready: Bytes::new(),
            ended: None,
            limits,
        }
    }

    /// The next bytes, `Ok(None)` at a clean end.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, String> {
        if let Some(ended) = &self.ended {
            return ended.clone().map(|()| None);
        }
        let next = match &mut self.source {
            Source::Inline(bytes) => Ok((!bytes.is_empty()).then(|| std::mem::take(bytes))),
            Source::Stream(chunks) => chunks
                .next(READ_CHUNK)
                .await
                .map_err(|err| format!("reading the body failed: {err}")),
        };
        match next {
            Ok(Some(bytes)) => Ok(Some(bytes)),
            Ok(None) => {
                let status = self.status.get(&self.limits).await;
                self.ended = Some(status.clone());
                status.map(|()| None)
            }
            Err(why) => {
                self.ended = Some(Err(why.clone()));
                Err(why)
            }
        }
    }
}

impl InputStream for BodyReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if !self.ready.is_empty() {
            let n = size.min(self.ready.len());
            return Ok(self.ready.split_to(n));
        }
        match &self.ended {
            Some(Ok(())) => Err(StreamError::Closed),
            Some(Err(why)) => Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "{why}"
            ))),
            None => Ok(Bytes::new()),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BodyReader {
    async fn ready(&mut self) {
        if !self.ready.is_empty() || self.ended.is_some() {
            return;
        }
        let Ok(Some(first)) = self.next().await else {
            return;
        };
        // What else has arrived goes with it (up to a read's worth): fewer,
        // larger reads for the guest. A lone chunk is not copied.
        let mut merged: Option<BytesMut> = None;
        let mut len = first.len();
        while len < READ_CHUNK {
            match futures::FutureExt::now_or_never(self.next()) {
                Some(Ok(Some(more))) => {
                    len += more.len();
                    merged
                        .get_or_insert_with(|| {
                            let mut m = BytesMut::with_capacity(READ_CHUNK);
                            m.extend_from_slice(&first);
                            m
                        })
                        .extend_from_slice(&more);
                }
                _ => break,
            }
        }
        self.ready = merged.map_or(first, BytesMut::freeze);
    }
}

/// Reads the whole body of at most `max` bytes.
pub(crate) async fn read_all(reader: &mut BodyReader, max: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(bytes) = reader.next().await? {
        if out.len() + bytes.len() > max as usize {
            return Err(format!(
                "the value is larger than {max} bytes: read it with incoming-value-consume-async"
            ));
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}
