//! One wildcard subscription on an inbox, demultiplexed to the calls that
//! wait on its subjects, without a task of its own: whichever call is
//! polled reads the subscription and hands messages to the others.
//!
//! A client's demux also watches its NATS connection ([`Demux::watch_link`]):
//! when the connection is lost, what was in flight on it (requests, replies
//! on their way to the inbox) is gone, so the calls registered before fail
//! at once instead of waiting for their deadlines.

use core::sync::atomic::Ordering;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt as _;
use tracing::debug;

/// Messages buffered for one subject beyond this fail its call (NATS has no
/// flow control: a reader this far behind would otherwise stall every call).
pub(crate) const SLOT_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Slot {
    queue: VecDeque<async_nats::Message>,
    bytes: usize,
    wakers: Vec<Waker>,
    overflowed: bool,
}

impl Slot {
    fn wake(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

#[derive(Default)]
struct CallSlots {
    /// The connection to NATS was lost while the call was in flight.
    aborted: bool,
    /// By the subject's tail after `<inbox>.<call>` (`""`, `results`, `params.1`, …).
    slots: HashMap<String, Slot>,
    /// Tails with `*` tokens that create a slot on first use.
    patterns: Vec<String>,
}

struct Inner {
    sub: async_nats::Subscriber,
    calls: HashMap<u64, CallSlots>,
    closed: bool,
    /// The call whose waker the subscription holds.
    leader: Option<(u64, String)>,
}

/// Routes the messages of `<inbox>.>` by call id.
pub(crate) struct Demux {
    inbox: String,
    inner: Mutex<Inner>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn matches(pattern: &str, tail: &str) -> bool {
    let mut p = pattern.split('.');
    let mut t = tail.split('.');
    loop {
        match (p.next(), t.next()) {
            (None, None) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

impl Demux {
    /// Subscribes to `<inbox>.>` and waits until the server has the subscription.
    pub(crate) async fn new(nats: &async_nats::Client) -> Result<Self, async_nats::SubscribeError> {
        let inbox = nats.new_inbox();
        let sub = nats.subscribe(format!("{inbox}.>")).await?;
        let demux = Self {
            inbox,
            inner: Mutex::new(Inner {
                sub,
                calls: HashMap::new(),
                closed: false,
                leader: None,
            }),
        };
        demux.confirm(nats).await.map_err(|err| {
            async_nats::SubscribeError::with_source(
                async_nats::client::SubscribeErrorKind::Other,
                err,
            )
        })?;
        Ok(demux)
    }

    /// Sends a message to this inbox on `nats` and waits for it: once it is
    /// back, the server has processed everything `nats` sent before it (its
    /// subscriptions included). async-nats' `flush` only writes the socket.
    pub(crate) async fn confirm(&self, nats: &async_nats::Client) -> io::Result<()> {
        const CONFIRM: u64 = u64::MAX;
        self.register(CONFIRM, [String::new()]);
        let round_trip = async {
            nats.publish(self.subject(CONFIRM, ""), bytes::Bytes::new())
                .await
                .map_err(io::Error::other)?;
            core::future::poll_fn(|cx| self.poll_recv(CONFIRM, "", cx)).await
        };
        let outcome = tokio::time::timeout(core::time::Duration::from_secs(10), round_trip).await;
        self.unregister(CONFIRM);
        match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the NATS server did not echo a message within 10 s",
            )),
        }
    }

    /// The subject of call `id`'s `tail` (empty for the call's own subject).
    pub(crate) fn subject(&self, id: u64, tail: &str) -> String {
        if tail.is_empty() {
            format!("{}.{id}", self.inbox)
        } else {
            format!("{}.{id}.{tail}", self.inbox)
        }
    }

    /// Starts routing `tails` (exact, or with `*` tokens) of call `id`.
    pub(crate) fn register(&self, id: u64, tails: impl IntoIterator<Item = String>) {
        let mut inner = lock(&self.inner);
        let call = inner.calls.entry(id).or_default();
        for tail in tails {
            if tail.split('.').any(|t| t == "*") {
                call.patterns.push(tail);
            } else {
                call.slots.entry(tail).or_default();
            }
        }
    }

    /// Stops routing call `id`; its buffered messages are dropped.
    pub(crate) fn unregister(&self, id: u64) {
        let mut inner = lock(&self.inner);
        inner.calls.remove(&id);
        if inner
            .leader
            .as_ref()
            .is_some_and(|(leader, _)| *leader == id)
        {
            inner.leader = None;
            wake_one(&mut inner);
        }
    }

    /// The next message on call `id`'s `tail`.
    pub(crate) fn poll_recv(
        &self,
        id: u64,
        tail: &str,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<async_nats::Message>> {
        let mut inner = lock(&self.inner);
        loop {
            let closed = inner.closed;
            let Some(call) = inner.calls.get_mut(&id) else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the call is over",
                )));
            };
            let aborted = call.aborted;
            let slot = call.slots.entry(tail.to_string()).or_default();
            if let Some(msg) = slot.queue.pop_front() {
                slot.bytes -= msg.payload.len();
                let was_leader = inner
                    .leader
                    .as_ref()
                    .is_some_and(|(l, t)| *l == id && t == tail);
                if was_leader {
                    inner.leader = None;
                    wake_one(&mut inner);
                }
                return Poll::Ready(Ok(msg));
            }
            if slot.overflowed {
                return Poll::Ready(Err(io::Error::other(format!(
                    "more than {SLOT_BYTES} bytes arrived that the reader has not taken; NATS cannot slow the sender down"
                ))));
            }
            if aborted {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the connection to NATS was lost mid-call",
                )));
            }
            if closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the NATS subscription closed",
                )));
            }
            match inner.sub.poll_next_unpin(cx) {
                Poll::Ready(Some(msg)) => route(&mut inner, &self.inbox, msg),
                Poll::Ready(None) => {
                    inner.closed = true;
                    for call in inner.calls.values_mut() {
                        for slot in call.slots.values_mut() {
                            slot.wake();
                        }
                    }
                }
                Poll::Pending => {
                    inner.leader = Some((id, tail.to_string()));
                    if let Some(slot) = inner.calls.get_mut(&id).and_then(|c| c.slots.get_mut(tail))
                    {
                        if !slot.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                            slot.wakers.push(cx.waker().clone());
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Demux {
    /// Fails every call registered now: the connection they were sent on
    /// is gone.
    fn abort_in_flight(&self) {
        let mut inner = lock(&self.inner);
        for call in inner.calls.values_mut() {
            call.aborted = true;
            for slot in call.slots.values_mut() {
                slot.wake();
            }
        }
    }

    /// Watches `nats` every [`LINK_CHECK`] for as long as this demux lives:
    /// when the connection is found lost (disconnected, or reconnected
    /// since the last look), the calls in flight fail. Calls made while it
    /// is down are not failed: async-nats sends them once it is back.
    pub(crate) fn watch_link(self: &Arc<Self>, nats: async_nats::Client) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let demux = Arc::downgrade(self);
        runtime.spawn(async move {
            let stats = nats.statistics();
            let connected = || nats.connection_state() == async_nats::connection::State::Connected;
            let (mut up, mut connects) = (connected(), stats.connects.load(Ordering::Relaxed));
            let mut tick = tokio::time::interval(LINK_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(demux) = demux.upgrade() else { return };
                let (now_up, now_connects) = (connected(), stats.connects.load(Ordering::Relaxed));
                if up && (!now_up || now_connects != connects) {
                    debug!("the connection to NATS was lost; failing the calls in flight");
                    demux.abort_in_flight();
                }
                (up, connects) = (now_up, now_connects);
            }
        });
    }
}

/// How often a client's demux looks at its connection.
const LINK_CHECK: Duration = Duration::from_millis(50);

/// Wakes one waiting reader so it takes over reading the subscription.
fn wake_one(inner: &mut Inner) {
    for call in inner.calls.values_mut() {
        for slot in call.slots.values_mut() {
            if !slot.wakers.is_empty() {
                slot.wake();
                return;
            }
        }
    }
}

fn route(inner: &mut Inner, inbox: &str, msg: async_nats::Message) {
    let Some(rest) = msg
        .subject
        .as_str()
        .strip_prefix(inbox)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return;
    };
    let (id, tail) = rest.split_once('.').unwrap_or((rest, ""));
    let Ok(id) = id.parse::<u64>() else {
        return;
    };
    let Some(call) = inner.calls.get_mut(&id) else {
        // A late message of a finished call.
        return;
    };
    if !call.slots.contains_key(tail) {
        if !call.patterns.iter().any(|p| matches(p, tail)) {
            return;
        }
        call.slots.insert(tail.to_string(), Slot::default());
    }
    let Some(slot) = call.slots.get_mut(tail) else {
        return;
    };
    if slot.bytes + msg.payload.len() > SLOT_BYTES {
        slot.overflowed = true;
        slot.queue.clear();
        slot.bytes = 0;
    } else {
        slot.bytes += msg.payload.len();
        slot.queue.push_back(msg);
    }
    slot.wake();
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_whole_tokens() {
        assert!(matches("results.*", "results.3"));
        assert!(!matches("results.*", "results"));
        assert!(!matches("results.*", "results.3.1"));
        assert!(matches("params.1.*", "params.1.0"));
    }
}
