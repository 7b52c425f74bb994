//! Bodies on their way through: a request body cut at the workload's limit,
//! and a response body that keeps its request counted until it is sent.

use core::pin::Pin;
use core::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use wasmtime_wasi_http::{Error, WasiBody};

/// A request body that fails with `HTTP-request-body-size` once it grows
/// past `max` bytes; nothing past the limit reaches the component.
pub(crate) fn limited(body: hyper::body::Incoming, max: u64) -> WasiBody {
    Limited {
        inner: body,
        seen: 0,
        max,
    }
    .boxed_unsync()
}

struct Limited {
    inner: hyper::body::Incoming,
    seen: u64,
    max: u64,
}

impl Body for Limited {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.seen = self.seen.saturating_add(data.len() as u64);
                    if self.seen > self.max {
                        return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(self.seen)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => Poll::Ready(Some(Err(Error::Hyper(err)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body holding `guard` until it is sent or dropped.
pub(crate) struct Guarded<G> {
    inner: WasiBody,
    _guard: G,
}

impl<G> Guarded<G> {
    pub(crate) fn new(inner: WasiBody, guard: G) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl<G: Unpin> Body for Guarded<G> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A whole body of text, for the host's own answers (404, 413, 500, …).
pub(crate) fn text(message: String) -> WasiBody {
    http_body_util::Full::new(Bytes::from(message))
        .map_err(|never| match never {})
        .boxed_unsync()
}
