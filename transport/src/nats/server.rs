//! Serving over NATS: one subscription per function, every call run on the
//! serving task itself (no task per call), under the shared concurrency limit.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};

use std::sync::{Arc, Mutex};

use async_nats::{HeaderMap, HeaderValue, Subject};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, SelectAll};
use futures::{Stream, StreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::call::{CallRx, CallTx, Handshake, NatsCall, Side};
use super::demux::Demux;
use super::flow::{parse_window, Flow, CREDIT_HEADER, CREDIT_TAIL, WINDOW};
use super::{invocation_subject, path_tail, ERROR_HEADER, LEAN_HEADER};
use crate::access::{Access, Admitted};
use crate::call::{CallTimer, InKind, OutKind};
use crate::server::{Call, Function, Registry, ServeOptions};
use crate::value::RootValue;
use crate::{CallerContext, Incoming, Outgoing};

/// One function's subscription, yielding its calls with the function.
struct Invocations {
    function: Arc<Function>,
    sub: async_nats::Subscriber,
}

impl Stream for Invocations {
    type Item = (Arc<Function>, async_nats::Message);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.sub
            .poll_next_unpin(cx)
            .map(|msg| msg.map(|msg| (Arc::clone(&this.function), msg)))
    }
}

/// A registry's functions subscribed on NATS, ready to [`NatsServer::run`].
pub struct NatsServer {
    nats: async_nats::Client,
    demux: Arc<Demux>,
    subs: SelectAll<Invocations>,
    next: Arc<AtomicU64>,
    admitted: Arc<Admitted>,
}

impl NatsServer {
    /// Subscribes every function of `registry` under `prefix`, in
    /// `queue_group` when given (replicas in one group share the calls).
    ///
    /// # Errors
    ///
    /// A subscription failed.
    pub async fn subscribe(
        nats: async_nats::Client,
        prefix: &str,
        queue_group: Option<&str>,
        registry: &Registry,
    ) -> Result<Self, async_nats::SubscribeError> {
        let demux = Arc::new(Demux::new(&nats).await?);
        let mut subs = SelectAll::new();
        for (instance, func) in registry.functions() {
            let Some(function) = registry.get(instance, func) else {
                continue;
            };
            let subject = invocation_subject(prefix, instance, func);
            let sub = match queue_group {
                Some(group) => nats.queue_subscribe(subject, group.to_string()).await?,
                None => nats.subscribe(subject).await?,
            };
            subs.push(Invocations { function, sub });
        }
        // Once this returns the server has every subscription: calls made
        // after "ready" cannot meet "no responders".
        demux.confirm(&nats).await.map_err(|err| {
            async_nats::SubscribeError::with_source(
                async_nats::client::SubscribeErrorKind::Other,
                err,
            )
        })?;
        Ok(Self {
            nats,
            demux,
            subs,
            next: Arc::new(AtomicU64::new(1)),
            admitted: Arc::default(),
        })
    }

    /// Applies a listener's namespace source (`namespace=NAME` or
    /// `namespace_from=headers`) to every call; without one, calls have no
    /// namespace. NATS tells a subscriber nothing about who published, so
    /// sources that need a verified peer give none.
    #[must_use]
    pub fn with_access(mut self, access: &Access) -> Self {
        self.admitted = Arc::new(access.admit(None, None).unwrap_or_default());
        self
    }

    /// Serves calls until `opts.shutdown`; then unsubscribes, serves the
    /// calls NATS routed here before the unsubscription took effect (in a
    /// queue group no other replica gets them: dropped, each would wait for
    /// its deadline), and lets calls in flight finish, until they are done
    /// or `opts.abort` is cancelled.
    pub async fn run(self, opts: ServeOptions) {
        let Self {
            nats,
            demux,
            mut subs,
            next,
            admitted,
        } = self;
        let over_nats: Arc<str> = Arc::from("over NATS");
        let start = |function, msg, permit| {
            handle(
                nats.clone(),
                Arc::clone(&demux),
                Arc::clone(&next),
                function,
                Arc::clone(&over_nats),
                Arc::clone(&admitted),
                msg,
                opts.clone(),
                permit,
            )
        };
        let mut inflight = FuturesUnordered::new();
        take_calls(
            &mut subs,
            &mut inflight,
            &opts.permits,
            &opts.shutdown,
            &start,
        )
        .await;
        // Draining: the server confirms the unsubscription, and each
        // subscription ends after the last call routed to it.
        for calls in subs.iter_mut() {
            if let Err(err) = calls.sub.drain().await {
                debug!(%err, "failed to drain a NATS subscription");
            }
        }
        // Bounded: with the NATS server gone, the confirmation never comes.
        let routed = take_calls(&mut subs, &mut inflight, &opts.permits, &opts.abort, &start);
        if tokio::time::timeout(DRAIN_ROUTED, routed).await.is_err() {
            debug!("NATS did not confirm the unsubscription within {DRAIN_ROUTED:?}");
        }
        drop(subs);
        tokio::select! {
            () = async { while inflight.next().await.is_some() {} } => {}
            () = opts.abort.cancelled() => {}
        }
        // Bounded: with the NATS server gone, a flush waits for a reconnect.
        let _ = tokio::time::timeout(FINAL_FLUSH, nats.flush()).await;
    }
}

/// Takes calls from `subs` as permits allow and runs them in `inflight`
/// (started by `start`), until `stop` is cancelled or every subscription
/// has ended.
async fn take_calls<F: Future<Output = ()>>(
    subs: &mut SelectAll<Invocations>,
    inflight: &mut FuturesUnordered<F>,
    permits: &Arc<Semaphore>,
    stop: &CancellationToken,
    start: &impl Fn(Arc<Function>, async_nats::Message, Option<OwnedSemaphorePermit>) -> F,
) {
    let mut permit = None;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            Some(()) = inflight.next(), if !inflight.is_empty() => {}
            p = Arc::clone(permits).acquire_owned(), if permit.is_none() => permit = p.ok(),
            msg = subs.next(), if permit.is_some() => match msg {
                Some((function, msg)) => inflight.push(start(function, msg, permit.take())),
                None => return,
            },
        }
    }
}

/// How long a server shutting down waits for the calls routed to it before
/// its unsubscription took effect to be taken (not to finish).
const DRAIN_ROUTED: core::time::Duration = core::time::Duration::from_secs(2);

/// How long the last results may take to reach the NATS server on shutdown.
const FINAL_FLUSH: core::time::Duration = core::time::Duration::from_secs(2);

#[allow(clippy::too_many_arguments)]
async fn handle(
    nats: async_nats::Client,
    demux: Arc<Demux>,
    next: Arc<AtomicU64>,
    function: Arc<Function>,
    over_nats: Arc<str>,
    admitted: Arc<Admitted>,
    msg: async_nats::Message,
    opts: ServeOptions,
    permit: Option<OwnedSemaphorePermit>,
) {
    let _permit = permit;
    let Some(reply) = msg.reply.clone() else {
        return warn!(subject = %msg.subject, "dropped a NATS call without a reply subject");
    };
    let lean = msg
        .headers
        .as_ref()
        .is_some_and(|h| h.get(LEAN_HEADER).is_some());
    // A caller of ours grants a window on our result streams; we then grant
    // one on its parameter streams (see `flow`).
    let granted = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(CREDIT_HEADER))
        .and_then(|v| parse_window(v.as_str()));
    let flow = match granted {
        Some(window) => Flow {
            out_window: Some(window),
            in_window: Some(WINDOW),
            credit_to: Some(reply.to_string()),
            ..Flow::default()
        },
        None => Flow::default(),
    };
    let cx = CallerContext::nats(msg.subject.as_str(), msg.headers.as_ref()).admitted(&admitted);
    let id = next.fetch_add(1, Ordering::Relaxed);
    let mut tails = Vec::new();
    if granted.is_some() {
        tails.push(CREDIT_TAIL.to_string());
    }
    if !lean {
        tails.push("params".to_string());
        tails.extend(function.param_paths.iter().map(|p| path_tail("params", p)));
        demux.register(id, tails);
        // The handshake: where further parameters go. Not flushed: the
        // connection writes it right away without a round trip to the server.
        let mut headers = HeaderMap::new();
        if granted.is_some() {
            headers.insert(CREDIT_HEADER, WINDOW.to_string().as_str());
        }
        if let Err(err) = nats
            .publish_with_reply_and_headers(
                reply.clone(),
                demux.subject(id, ""),
                headers,
                Bytes::new(),
            )
            .await
        {
            return debug!(%err, "failed to send a NATS handshake");
        }
    } else {
        demux.register(id, tails);
    }
    let call = Arc::new(NatsCall {
        nats: nats.clone(),
        demux,
        id,
        side: Side::Server,
        lean,
        handshake: Mutex::new(Handshake::Waiting),
        pending: Mutex::new(Bytes::new()),
        reply: reply.to_string(),
        initial: Mutex::new(Some(msg.payload)),
        root: Mutex::new(RootValue::new(
            Some(Arc::clone(&function.params)),
            &opts.limits,
        )),
        flow: Mutex::new(flow),
        probe: None,
    });
    let timer = Arc::new(CallTimer::named(
        Arc::clone(&function.name),
        Arc::clone(&over_nats),
        Some(Instant::now() + opts.limits.header_timeout),
        opts.limits.stream_idle_timeout,
    ));
    let rx = Incoming::new(
        InKind::Nats(CallRx::root(Arc::clone(&call))),
        Arc::clone(&timer),
    );
    let tx = Outgoing::new(OutKind::Nats(CallTx::root(call)), timer, false);
    let outcome = tokio::select! {
        outcome = (function.handler)(Call { cx, rx, tx }) => outcome,
        () = opts.abort.cancelled() => Err("aborted: the shutdown grace period is over".into()),
    };
    if let Err(why) = &outcome {
        warn!("call to {} failed: {why}", function.name);
    }
    if !lean || function.has_async_results || function.has_no_results || outcome.is_err() {
        let mut headers = HeaderMap::new();
        if let Err(why) = &outcome {
            let clean: String = why.chars().filter(|c| !c.is_control()).take(1024).collect();
            if let Ok(value) = clean.parse::<HeaderValue>() {
                headers.insert(ERROR_HEADER, value);
            }
        }
        let subject = Subject::from(format!("{reply}.results"));
        if let Err(err) = nats
            .publish_with_headers(subject, headers, Bytes::new())
            .await
        {
            debug!(%err, "failed to end results");
        }
    }
}
