//! Delivering subscriptions to components' handlers.
//!
//! Each subscription runs one task that takes messages only while fewer
//! than `max-in-flight` are being handled, and one task per message that
//! calls the handler (through [`sdk::Outbound`], with its deadline).
//!
//! - Core NATS: at most once. The handler's error, a trap or an
//!   unreachable handler is logged and the message is gone.
//! - JetStream: at least once. A message is acknowledged only after the
//!   handler returned success; on an error, a trap or a timeout it is
//!   negatively acknowledged with a growing delay, and after `max-deliver`
//!   deliveries it is published to the dead-letter subject and terminated.
//!   A handler that cannot be reached does not use up deliveries towards
//!   the dead letter: the message waits for the handler to come back. A
//!   crash leaves messages unacknowledged, so JetStream redelivers them
//!   after `ack-wait`.
//!
//! On shutdown, no message is taken any more; those in flight finish
//! within the grace period, and JetStream messages still running then are
//! negatively acknowledged so another replica gets them at once.

use core::time::Duration;

use std::sync::Arc;

use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_nats::HeaderMap;
use futures::StreamExt as _;
use sdk::messaging::{handle_message, BrokerMessage};
use sdk::outbound::Connector;
use sdk::{Outbound, OutboundOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::subscription::{redelivery_delay, unscoped, JetStream, Mode, Subscription};

/// How long one JetStream pull request waits for messages.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// After a failed pull, the pause before the next.
const PULL_RETRY: Duration = Duration::from_secs(1);
/// On shutdown, how long messages already pulled may still arrive (they
/// are negatively acknowledged at once).
const PULL_DRAIN: Duration = Duration::from_millis(300);

/// How long the last acknowledgements may take to reach NATS on shutdown.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// Headers on a dead-lettered message.
pub mod dead_letter_headers {
    /// The subject it was published on.
    pub const SUBJECT: &str = "Messaging-Original-Subject";
    /// The stream it was stored in.
    pub const STREAM: &str = "Messaging-Stream";
    /// Its sequence number in that stream.
    pub const SEQUENCE: &str = "Messaging-Stream-Sequence";
    /// How many times it was delivered.
    pub const DELIVERIES: &str = "Messaging-Deliveries";
    /// Why the last delivery failed.
    pub const ERROR: &str = "Messaging-Error";
}

/// Why a subscription could not start.
#[derive(Debug, thiserror::Error)]
#[error("subscription {subscription}: {reason}")]
pub struct StartError {
    subscription: String,
    reason: String,
}

/// The running subscriptions.
pub struct Deliveries {
    nats: async_nats::Client,
    stop: CancellationToken,
    abort: CancellationToken,
    takers: TaskTracker,
    handlers: TaskTracker,
}

/// What one handler call came to.
enum Outcome {
    Handled,
    /// The handler returned an error, trapped or timed out.
    Failed(String),
    /// Nothing answered at the handler's address.
    Unreachable(String),
}

/// What every message of one subscription needs.
struct Route {
    /// For log lines.
    name: String,
    outbound: Outbound,
    /// The namespace whose subjects it reads (`namespace=`).
    namespace: Option<String>,
}

impl Route {
    /// A received subject as the handler sees it (the namespace's prefix
    /// removed; a subscription reads only subjects under it).
    fn unscoped(&self, subject: &str) -> String {
        unscoped(self.namespace.as_deref(), subject)
            .unwrap_or(subject)
            .to_string()
    }

    /// Calls the handler with `msg`; `headers` are the NATS message's, whose
    /// `traceparent` (set by a publishing component) the call continues.
    async fn deliver(&self, msg: &BrokerMessage, headers: Option<&HeaderMap>) -> Outcome {
        let trace = headers
            .and_then(|h| h.get(sdk::headers::TRACEPARENT))
            .and_then(|v| sdk::TraceContext::parse(v.as_str()))
            .map(|t| vec![(sdk::headers::TRACEPARENT.to_string(), t.to_string())])
            .unwrap_or_default();
        match handle_message(&self.outbound, trace, msg).await {
            Ok(Ok(())) => Outcome::Handled,
            Ok(Err(why)) => Outcome::Failed(format!("the handler returned an error: {why}")),
            Err(err) => {
                let err = self.outbound.call_error(sdk::messaging::HANDLER, &err);
                let target = err.target();
                if err.is_unreachable() {
                    Outcome::Unreachable(format!(
                        "handler unreachable at {target}: {}",
                        err.reason()
                    ))
                } else {
                    Outcome::Failed(format!("delivery to {target} failed: {}", err.reason()))
                }
            }
        }
    }
}

impl Deliveries {
    /// Subscribes each of `subs` on `nats` and starts delivering.
    ///
    /// # Errors
    ///
    /// A [`StartError`] naming the subscription: a subscribe that failed, a
    /// JetStream stream that does not exist, a consumer that cannot be made.
    pub async fn start(
        nats: &async_nats::Client,
        subs: &[Subscription],
        default_timeout: Duration,
    ) -> Result<Self, StartError> {
        let this = Self {
            nats: nats.clone(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            takers: TaskTracker::new(),
            handlers: TaskTracker::new(),
        };
        // Stops what already started if a later subscription fails.
        let stop_on_error = this.stop.clone().drop_guard();
        // Handlers on one NATS server set share a connection.
        let connector = Connector::new("messaging-nats");
        for sub in subs {
            let fail = |reason: String| StartError {
                subscription: sub.to_string(),
                reason,
            };
            let timeout = sub.timeout_or(default_timeout);
            let outbound = Outbound::connect_with(
                &connector,
                &sub.handler,
                &[sdk::messaging::WIT],
                OutboundOptions {
                    timeout,
                    ..OutboundOptions::default()
                },
            )
            .await
            .map_err(|err| fail(err.to_string()))?;
            let route = Arc::new(Route {
                name: sub.to_string(),
                outbound,
                namespace: sub.namespace.clone(),
            });
            let permits = Arc::new(Semaphore::new(sub.max_in_flight));
            match &sub.mode {
                Mode::Core { queue } => {
                    let subscriber = match queue {
                        Some(q) => nats.queue_subscribe(sub.nats_subject(), q.clone()).await,
                        None => nats.subscribe(sub.nats_subject()).await,
                    }
                    .map_err(|err| fail(format!("cannot subscribe: {err}")))?;
                    this.takers.spawn(take_core(
                        subscriber,
                        route,
                        permits,
                        this.stop.clone(),
                        this.abort.clone(),
                        this.handlers.clone(),
                    ));
                }
                Mode::JetStream(js) => {
                    // Longer than the handler's real deadline (checked with
                    // the flags): a message is never redelivered while its
                    // handler still runs.
                    let ack_wait = sub
                        .ack_wait(default_timeout)
                        .map_err(fail)?
                        .unwrap_or(timeout);
                    let consumer = jetstream_consumer(nats, sub, js, ack_wait)
                        .await
                        .map_err(fail)?;
                    let cx = Arc::new(JsContext {
                        route,
                        js: jetstream::new(nats.clone()),
                        nats: nats.clone(),
                        settings: js.clone(),
                    });
                    this.takers.spawn(take_jetstream(
                        consumer,
                        cx,
                        permits,
                        this.stop.clone(),
                        this.abort.clone(),
                        this.handlers.clone(),
                    ));
                }
            }
            info!(handler = %sub.handler, max_in_flight = sub.max_in_flight, "delivering {sub}");
        }
        // The server has every subscription once this returns.
        nats.flush().await.map_err(|err| StartError {
            subscription: "(all)".into(),
            reason: format!("cannot reach NATS: {err}"),
        })?;
        stop_on_error.disarm();
        Ok(this)
    }

    /// Stops taking messages, lets those in flight finish within `grace`,
    /// then gives the rest back (JetStream) or drops them (core NATS).
    pub async fn stop(self, grace: Duration) {
        self.stop.cancel();
        self.takers.close();
        self.takers.wait().await;
        self.handlers.close();
        if tokio::time::timeout(grace, self.handlers.wait())
            .await
            .is_err()
        {
            warn!(
                ?grace,
                "grace period over: giving back the messages still being handled"
            );
            self.abort.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.handlers.wait()).await;
        }
        // Every acknowledgement, positive or negative, on the server before
        // the process exits: publishes are only queued until flushed.
        if let Err(err) = tokio::time::timeout(FINAL_FLUSH, self.nats.flush())
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            warn!("acknowledgements may not have reached NATS: {err}");
        }
    }
}

/// Takes core NATS messages while a permit is free.
async fn take_core(
    mut subscriber: async_nats::Subscriber,
    route: Arc<Route>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    abort: CancellationToken,
    handlers: TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            m = subscriber.next() => match m { Some(m) => m, None => break },
        };
        let route = Arc::clone(&route);
        let abort = abort.clone();
        handlers.spawn(async move {
            let _permit = permit;
            let headers = msg.headers;
            let msg = BrokerMessage {
                subject: route.unscoped(&msg.subject),
                body: msg.payload,
                reply_to: msg
                    .reply
                    .as_deref()
                    .and_then(|r| unscoped(route.namespace.as_deref(), r))
                    .map(str::to_string),
            };
            let outcome = tokio::select! {
                o = route.deliver(&msg, headers.as_ref()) => o,
                () = abort.cancelled() => Outcome::Failed("shut down while it was being handled".into()),
            };
            match outcome {
                Outcome::Handled => debug!(subject = msg.subject, "handled"),
                Outcome::Failed(why) | Outcome::Unreachable(why) => warn!(
                    "{}: message on `{}` lost (core NATS delivers at most once): {why}",
                    route.name, msg.subject
                ),
            }
        });
    }
    let _ = subscriber.unsubscribe().await;
}

/// The durable pull consumer of a JetStream subscription, created or
/// updated to match the configuration, with `ack_wait`.
async fn jetstream_consumer(
    nats: &async_nats::Client,
    sub: &Subscription,
    js: &JetStream,
    ack_wait: Duration,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let context = jetstream::new(nats.clone());
    let stream_name = match &js.stream {
        Some(name) => name.clone(),
        None => context
            .stream_by_subject(sub.nats_subject())
            .await
            .map_err(|err| format!("no JetStream stream stores `{}`: {err}", sub.nats_subject()))?,
    };
    let stream = context
        .get_stream(&stream_name)
        .await
        .map_err(|err| format!("JetStream stream `{stream_name}`: {err}"))?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(js.durable.clone()),
            filter_subject: sub.nats_subject(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait,
            // Redeliveries are counted here, not by the server: the message
            // goes to the dead-letter subject before it is terminated.
            max_deliver: -1,
            ..pull::Config::default()
        })
        .await
        .map_err(|err| {
            format!(
                "durable consumer `{}` on stream `{stream_name}`: {err}",
                js.durable
            )
        })
}

/// What every message of one JetStream subscription needs.
struct JsContext {
    route: Arc<Route>,
    js: jetstream::Context,
    nats: async_nats::Client,
    settings: JetStream,
}

/// Pulls JetStream messages, as many as there are free permits.
async fn take_jetstream(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    cx: Arc<JsContext>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    abort: CancellationToken,
    handlers: TaskTracker,
) {
    'pulling: loop {
        let first = tokio::select! {
            () = stop.cancelled() => break,
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let want = permits.available_permits() + 1;
        let batch = tokio::select! {
            () = stop.cancelled() => break,
            b = consumer.batch().max_messages(want).expires(PULL_EXPIRES).messages() => b,
        };
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                warn!("{}: pulling failed: {err}", cx.route.name);
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(PULL_RETRY) => continue,
                }
            }
        };
        let mut held = Some(first);
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => {
                    // Messages this pull already asked for go back at once.
                    while let Ok(Some(Ok(msg))) = tokio::time::timeout(PULL_DRAIN, batch.next()).await {
                        let _ = msg.ack_with(AckKind::Nak(None)).await;
                    }
                    break 'pulling;
                }
                m = batch.next() => m,
            };
            let msg = match next {
                None => break,
                Some(Err(err)) => {
                    debug!("{}: pull ended: {err}", cx.route.name);
                    break;
                }
                Some(Ok(msg)) => msg,
            };
            let permit = match held.take() {
                Some(p) => p,
                None => match Arc::clone(&permits).acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break 'pulling,
                },
            };
            handlers.spawn(handle_jetstream(
                msg,
                Arc::clone(&cx),
                permit,
                abort.clone(),
            ));
        }
    }
}

async fn handle_jetstream(
    msg: jetstream::Message,
    cx: Arc<JsContext>,
    permit: OwnedSemaphorePermit,
    abort: CancellationToken,
) {
    let _permit = permit;
    let (delivered, stream, sequence) = match msg.info() {
        Ok(info) => (
            u64::try_from(info.delivered).unwrap_or(1),
            info.stream.to_string(),
            info.stream_sequence,
        ),
        Err(err) => {
            warn!(
                "{}: a message without JetStream metadata ({err}); left for redelivery",
                cx.route.name
            );
            return;
        }
    };
    // A JetStream message's reply subject is its acknowledgement, not the
    // publisher's: the handler gets none.
    let broker = BrokerMessage {
        subject: cx.route.unscoped(&msg.subject),
        body: msg.payload.clone(),
        reply_to: None,
    };
    let outcome = tokio::select! {
        o = cx.route.deliver(&broker, msg.headers.as_ref()) => o,
        () = abort.cancelled() => {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
            return;
        }
    };
    let name = &cx.route.name;
    let settings = &cx.settings;
    let delay = redelivery_delay(settings.backoff, delivered);
    match outcome {
        Outcome::Handled => {
            if let Err(err) = msg.ack().await {
                warn!("{name}: acknowledging {stream} #{sequence} failed ({err}); it will be redelivered");
            }
        }
        Outcome::Unreachable(why) => {
            warn!("{name}: {stream} #{sequence} (delivery {delivered}) not handled, retrying in {delay:?}: {why}");
            let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
        }
        Outcome::Failed(why) if delivered < settings.max_deliver => {
            warn!("{name}: {stream} #{sequence} (delivery {delivered} of {}) failed, retrying in {delay:?}: {why}", settings.max_deliver);
            let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
        }
        Outcome::Failed(why) => {
            let Some(dead_letter) = &settings.dead_letter else {
                warn!("{name}: {stream} #{sequence} failed {delivered} times, terminated (no dead-letter subject): {why}");
                let _ = msg.ack_with(AckKind::Term).await;
                return;
            };
            match publish_dead_letter(&cx, dead_letter, &msg, &stream, sequence, delivered, &why)
                .await
            {
                Ok(()) => {
                    warn!("{name}: {stream} #{sequence} failed {delivered} times, sent to `{dead_letter}`: {why}");
                    let _ = msg.ack_with(AckKind::Term).await;
                }
                Err(err) => {
                    warn!("{name}: {stream} #{sequence} failed {delivered} times and could not be dead-lettered ({err}); retrying in {delay:?}");
                    let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
                }
            }
        }
    }
}

/// Publishes `msg` on `subject` with headers saying where it came from and
/// why it failed. Through JetStream (awaiting the stream's acknowledgement)
/// when a stream stores `subject`, else core NATS (flushed).
async fn publish_dead_letter(
    cx: &JsContext,
    subject: &str,
    msg: &jetstream::Message,
    stream: &str,
    sequence: u64,
    delivered: u64,
    why: &str,
) -> Result<(), String> {
    use dead_letter_headers as h;
    let mut headers = HeaderMap::new();
    headers.insert(h::SUBJECT, msg.subject.as_str());
    headers.insert(h::STREAM, stream);
    headers.insert(h::SEQUENCE, sequence.to_string().as_str());
    headers.insert(h::DELIVERIES, delivered.to_string().as_str());
    let clean: String = why.chars().filter(|c| !c.is_control()).take(1024).collect();
    headers.insert(h::ERROR, clean.as_str());
    let acked = match cx
        .js
        .publish_with_headers(subject.to_string(), headers.clone(), msg.payload.clone())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()),
        Err(err) => Err(err),
    };
    match acked {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == jetstream::context::PublishErrorKind::StreamNotFound => {
            cx.nats
                .publish_with_headers(subject.to_string(), headers, msg.payload.clone())
                .await
                .map_err(|e| e.to_string())?;
            cx.nats.flush().await.map_err(|e| e.to_string())
        }
        Err(err) => Err(err.to_string()),
    }
}
