//! Calling over NATS.

use core::str::FromStr as _;
use core::sync::atomic::{AtomicU64, Ordering};

use std::io;
use std::sync::{Arc, Mutex};

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use tokio::time::Instant;

use super::call::{CallRx, CallTx, Handshake, NatsCall, Side};
use super::demux::Demux;
use super::flow::{Flow, CREDIT_HEADER, CREDIT_TAIL, WINDOW};
use super::probe::Probe;
use super::{invocation_subject, path_tail, LEAN_HEADER};
use crate::client::Invocation;
use crate::value::RootValue;
use crate::Limits;

/// A wRPC client on one NATS connection and subject prefix.
#[derive(Clone)]
pub struct NatsClient(Arc<Inner>);

struct Inner {
    nats: async_nats::Client,
    demux: Arc<Demux>,
    prefix: String,
    next: AtomicU64,
    limits: Limits,
}

impl NatsClient {
    /// A client calling functions served under `prefix` on `nats`.
    ///
    /// # Errors
    ///
    /// Subscribing to the client's inbox failed.
    pub async fn new(
        nats: async_nats::Client,
        prefix: &str,
        limits: Limits,
    ) -> Result<Self, async_nats::SubscribeError> {
        let demux = Arc::new(Demux::new(&nats).await?);
        demux.watch_link(nats.clone());
        Ok(Self(Arc::new(Inner {
            nats,
            demux,
            prefix: prefix.to_string(),
            next: AtomicU64::new(1),
            limits,
        })))
    }

    /// The NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.0.nats
    }

    pub(crate) async fn invoke(
        &self,
        inv: Invocation<'_>,
        deadline: Instant,
    ) -> io::Result<(CallTx, CallRx)> {
        let inner = &self.0;
        let mut headers = HeaderMap::new();
        let mut header_bytes = b"NATS/1.0\r\n\r\n".len();
        for (k, v) in inv.headers {
            let name = HeaderName::from_str(k).map_err(|_| invalid_header(k))?;
            let value = HeaderValue::from_str(v).map_err(|_| invalid_header(k))?;
            header_bytes += k.len() + v.len() + 4;
            headers.insert(name, value);
        }
        // Grants the server a window on the result streams (see `flow`).
        let window = WINDOW.to_string();
        header_bytes += CREDIT_HEADER.len() + window.len() + 4;
        headers.insert(CREDIT_HEADER, window.as_str());
        let id = inner.next.fetch_add(1, Ordering::Relaxed);
        let reply = inner.demux.subject(id, "");
        let subject = invocation_subject(&inner.prefix, inv.instance, inv.func);
        let first_max = inner
            .nats
            .server_info()
            .max_payload
            .saturating_sub(header_bytes + LEAN_HEADER.len() + 5 + reply.len());
        let mut params = inv.params;
        let lean = inv.params_complete && params.len() <= first_max;
        if lean {
            headers.insert(LEAN_HEADER, "1");
        }
        let mut tails = vec![
            String::new(),
            "results".to_string(),
            CREDIT_TAIL.to_string(),
        ];
        tails.extend(inv.result_paths.iter().map(|p| path_tail("results", p)));
        inner.demux.register(id, tails);
        let call = Arc::new(NatsCall {
            nats: inner.nats.clone(),
            demux: Arc::clone(&inner.demux),
            id,
            side: Side::Client,
            lean,
            handshake: Mutex::new(Handshake::Waiting),
            pending: Mutex::new(Bytes::new()),
            reply: String::new(),
            initial: Mutex::new(None),
            root: Mutex::new(RootValue::new(inv.results, &inner.limits)),
            flow: Mutex::new(Flow {
                in_window: Some(WINDOW),
                ..Flow::default()
            }),
            probe: Probe::new(&subject, inv.instance, inv.func),
        });
        let first = params.split_to(params.len().min(first_max));
        *call
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = params;
        tokio::time::timeout_at(
            deadline,
            inner
                .nats
                .publish_with_reply_and_headers(subject, reply, headers, first),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "deadline passed while publishing"))?
        .map_err(|err| io::Error::new(io::ErrorKind::BrokenPipe, err))?;
        if !lean && inv.params_complete {
            // The rest of the parameters go to the server's inbox, which its
            // handshake names; then the end of the parameters.
            let mut tx = CallTx::root(Arc::clone(&call));
            tokio::time::timeout_at(deadline, tokio::io::AsyncWriteExt::shutdown(&mut tx))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "deadline passed while sending parameters",
                    )
                })??;
            return Ok((tx, CallRx::root(call)));
        }
        Ok((CallTx::root(Arc::clone(&call)), CallRx::root(call)))
    }
}

fn invalid_header(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("header `{name}` cannot travel over NATS (no CR or LF allowed)"),
    )
}
