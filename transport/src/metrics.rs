//! What the transport counts, through the `metrics` facade: calls served
//! and made, by interface, function and outcome, their latency and the calls
//! in flight. A binary that installs a recorder (the host, every sdk
//! extension) exports them; without one they cost next to nothing.

use core::time::Duration;

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Label};

/// Metric names, for dashboards and tests.
pub mod names {
    /// Calls served, by `interface`, `function` and `outcome` (`ok`,
    /// `error`, `aborted`).
    pub const SERVER_CALLS: &str = "wrpc_server_calls_total";
    /// Seconds from a served call's arrival to its last result, by
    /// `interface` and `function`.
    pub const SERVER_DURATION: &str = "wrpc_server_call_duration_seconds";
    /// Served calls running now, by `interface` and `function`.
    pub const SERVER_IN_FLIGHT: &str = "wrpc_server_calls_in_flight";
    /// Calls to functions this server does not serve.
    pub const SERVER_UNKNOWN: &str = "wrpc_server_unknown_function_calls_total";
    /// Connections (and NATS calls) a listener's access policy refused.
    pub const SERVER_REFUSED: &str = "wrpc_server_refused_callers_total";
    /// Calls made, by `interface`, `function`, `target` and `outcome` (`ok`,
    /// `error`, `timeout`, `unreachable`).
    pub const CLIENT_CALLS: &str = "wrpc_client_calls_total";
    /// Seconds from a call's start to its end, by `interface`, `function`
    /// and `target`.
    pub const CLIENT_DURATION: &str = "wrpc_client_call_duration_seconds";
}

fn labels(pairs: &[(&'static str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_string()))
        .collect()
}

/// The handles of one served function, made on its first call (so a
/// recorder installed after registration still sees them).
pub(crate) struct ServerStats {
    instance: Box<str>,
    func: Box<str>,
    handles: OnceLock<ServerHandles>,
}

struct ServerHandles {
    in_flight: Gauge,
    ok: Counter,
    error: Counter,
    aborted: Counter,
    duration: Histogram,
}

impl ServerStats {
    pub(crate) fn new(instance: &str, func: &str) -> Self {
        Self {
            instance: instance.into(),
            func: func.into(),
            handles: OnceLock::new(),
        }
    }

    fn handles(&self) -> &ServerHandles {
        self.handles.get_or_init(|| {
            let base = [("interface", &*self.instance), ("function", &*self.func)];
            let outcome = |o: &'static str| {
                let mut l = labels(&base);
                l.push(Label::new("outcome", o));
                metrics::counter!(names::SERVER_CALLS, l)
            };
            ServerHandles {
                in_flight: metrics::gauge!(names::SERVER_IN_FLIGHT, labels(&base)),
                ok: outcome("ok"),
                error: outcome("error"),
                aborted: outcome("aborted"),
                duration: metrics::histogram!(names::SERVER_DURATION, labels(&base)),
            }
        })
    }

    /// Counts a call as started; the guard counts how it ended.
    pub(crate) fn start(self: &Arc<Self>) -> ServedCall {
        self.handles().in_flight.increment(1.0);
        ServedCall {
            stats: Arc::clone(self),
            started: tokio::time::Instant::now(),
            ended: false,
        }
    }
}

/// A served call in flight; dropped unfinished, it counts as `aborted`.
pub(crate) struct ServedCall {
    stats: Arc<ServerStats>,
    started: tokio::time::Instant,
    ended: bool,
}

impl ServedCall {
    pub(crate) fn finish(mut self, ok: bool) {
        self.ended = true;
        let h = self.stats.handles();
        if ok {
            h.ok.increment(1);
        } else {
            h.error.increment(1);
        }
    }
}

impl Drop for ServedCall {
    fn drop(&mut self) {
        let h = self.stats.handles();
        h.in_flight.decrement(1.0);
        h.duration.record(self.started.elapsed().as_secs_f64());
        if !self.ended {
            h.aborted.increment(1);
        }
    }
}

/// Counts a call to a function that is not served.
pub(crate) fn unknown_function() {
    metrics::counter!(names::SERVER_UNKNOWN).increment(1);
}

/// Counts a caller a listener's access policy refused.
pub(crate) fn refused_caller() {
    metrics::counter!(names::SERVER_REFUSED).increment(1);
}

/// How a call made by a client ended, as its timer saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Outcome {
    Ok = 0,
    Error = 1,
    Timeout = 2,
    Unreachable = 3,
}

impl Outcome {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Error,
            2 => Self::Timeout,
            3 => Self::Unreachable,
            _ => Self::Ok,
        }
    }
}

/// The handles of one function called on one target; keep one per
/// function (e.g. beside its prepared signature) and give it to each
/// call's timer ([`crate::Target::timer`]).
pub struct ClientStats {
    by_outcome: [Counter; 4],
    duration: Histogram,
}

impl core::fmt::Debug for ClientStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ClientStats")
    }
}

impl ClientStats {
    /// The handles for calls of `instance.func` on `target` (shown without
    /// credentials).
    pub fn new(instance: &str, func: &str, target: &str) -> Arc<Self> {
        let base = [
            ("interface", instance),
            ("function", func),
            ("target", target),
        ];
        let outcome = |o: &'static str| {
            let mut l = labels(&base);
            l.push(Label::new("outcome", o));
            metrics::counter!(names::CLIENT_CALLS, l)
        };
        Arc::new(Self {
            by_outcome: [
                outcome("ok"),
                outcome("error"),
                outcome("timeout"),
                outcome("unreachable"),
            ],
            duration: metrics::histogram!(names::CLIENT_DURATION, labels(&base)),
        })
    }

    pub(crate) fn record(&self, outcome: Outcome, took: Duration) {
        self.by_outcome[outcome as usize].increment(1);
        self.duration.record(took.as_secs_f64());
    }
}
