//! The client side of every transport behind one type, and the one typed
//! call all clients make: [`Connector`] turns endpoints into clients (one
//! NATS connection per server set), [`Target`] adds the deadlines from
//! [`CallOptions`] (whose defaults live in [`defaults`]), [`Prepared`] is a
//! function's types and [`Call`] one call of it, and every failed call is a
//! [`CallError`].

mod connector;
pub mod defaults;
mod error;
mod prepared;
mod typed;

pub use connector::Connector;
pub use defaults::{CallOptions, CALL_TIMEOUT, IDLE_TIMEOUT, NATS_CONNECT_TIMEOUT};
pub use error::{CallError, CallErrorKind};
pub use prepared::{Call, Deadline, Prepared, ResultPaths};
pub use typed::{Headers, TypedClient, TypedClientError};

use core::time::Duration;

use std::io;
use std::sync::Arc;

use bytes::Bytes;

use crate::call::{CallTimer, InKind, OutKind};
use crate::metrics::ClientStats;
use crate::schema::ScanPlan;
use crate::stream::{Request, StreamClient};
use crate::{Endpoint, Incoming, Outgoing};

/// One call to make, on any transport.
pub struct Invocation<'a> {
    /// The instance, e.g. `wrpc:keyvalue/store@0.2.0-draft`.
    pub instance: &'a str,
    /// The function.
    pub func: &'a str,
    /// Caller headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// The encoded synchronous parameters.
    pub params: Bytes,
    /// Whether the parameters are complete (the function has no async parameters).
    pub params_complete: bool,
    /// The result types (as a scan plan), checked before the results are
    /// decoded; `None` skips the check.
    pub results: Option<Arc<ScanPlan>>,
    /// Async paths of the results.
    pub result_paths: Arc<[Box<[Option<usize>]>]>,
    /// The call's name, deadline and idle timeout.
    pub timer: Arc<CallTimer>,
}

/// A client of one target.
#[derive(Clone)]
#[non_exhaustive]
pub enum Client {
    /// TCP, Unix or WebSocket.
    Stream(StreamClient),
    /// NATS.
    Nats(crate::nats::NatsClient),
}

impl Client {
    /// Starts a call; its streams are bounded by `inv.timer`. A call to a
    /// function without results (complete parameters, an empty result
    /// plan) returns only once the function ran.
    ///
    /// # Errors
    ///
    /// The call could not be started; the error names the call.
    pub async fn invoke(&self, inv: Invocation<'_>) -> io::Result<(Outgoing, Incoming)> {
        let timer = Arc::clone(&inv.timer);
        let without_results =
            inv.params_complete && inv.results.as_ref().is_some_and(|plan| plan.is_empty());
        let deadline = timer
            .deadline()
            .unwrap_or_else(|| tokio::time::Instant::now() + crate::MAX_DURATION);
        let started = match self {
            Self::Stream(client) => client
                .invoke(Request {
                    instance: inv.instance,
                    func: inv.func,
                    headers: inv.headers,
                    params: inv.params,
                    params_complete: inv.params_complete,
                    results: inv.results,
                    result_paths: inv.result_paths,
                    deadline,
                })
                .await
                .map(|(tx, rx)| (OutKind::Stream(tx), InKind::Stream(rx))),
            Self::Nats(client) => client
                .invoke(inv, deadline)
                .await
                .map(|(tx, rx)| (OutKind::Nats(tx), InKind::Nats(rx))),
        };
        match started {
            Ok((tx, rx)) => {
                let tx = Outgoing::new(tx, Arc::clone(&timer), true);
                let mut rx = Incoming::new(rx, timer);
                if without_results {
                    // Nothing will be read back, so the call is over when
                    // its end (or its failure) arrives: a caller that reads
                    // no results (the wasmtime polyfill, typed `()` results)
                    // returns once the function ran, and gets its failure.
                    tokio::io::AsyncReadExt::read_to_end(&mut rx, &mut Vec::new()).await?;
                }
                Ok((tx, rx))
            }
            Err(err) if err.kind() == io::ErrorKind::TimedOut => Err(timer.expired()),
            Err(err) => Err(timer.annotate(err)),
        }
    }
}

/// A target that could not be connected to; names it, without secrets.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {endpoint}: {reason}")]
pub struct TargetError {
    /// The endpoint (credentials redacted).
    pub endpoint: String,
    /// What failed.
    pub reason: String,
}

/// A client of one endpoint, and the deadlines each call to it gets: the
/// synchronous part must be done within `timeout`, a streamed value may
/// pause for at most `idle_timeout`.
#[derive(Clone)]
pub struct Target {
    client: Client,
    endpoint: Endpoint,
    /// `via ENDPOINT`, joined to a call's name only in errors.
    via: Arc<str>,
    timeout: Duration,
    idle_timeout: Duration,
}

impl Target {
    /// A target over an existing `client` of `endpoint`.
    pub fn new(
        endpoint: Endpoint,
        client: Client,
        timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            via: format!("via {endpoint}").into(),
            client,
            endpoint,
            timeout,
            idle_timeout,
        }
    }

    /// Whether calls can go now, as far as the client knows without calling:
    /// the state of a NATS connection. TCP, Unix and WebSocket targets
    /// connect per call or from their pool and are always `Ok` here.
    ///
    /// # Errors
    ///
    /// The NATS connection is not connected.
    pub fn check(&self) -> Result<(), String> {
        match &self.client {
            Client::Nats(nats) => crate::nats::check_connected(nats.nats()),
            Client::Stream(_) => Ok(()),
        }
    }

    /// `via ENDPOINT`, as a call's errors name the target.
    pub(crate) fn via(&self) -> Arc<str> {
        Arc::clone(&self.via)
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where calls go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The deadline of each call's synchronous part.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The longest pause of a streamed value.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The timer of a call named `call` (e.g. `` `instance.func` ``) starting
    /// now, its deadline `extra` later than the target's (for a call that
    /// itself waits, e.g. a request with its own timeout), counted in
    /// `stats` if given (see [`Target::stats`]).
    pub fn timer(
        &self,
        call: Arc<str>,
        extra: Duration,
        stats: Option<&Arc<ClientStats>>,
    ) -> Arc<CallTimer> {
        let timer = CallTimer::named(
            call,
            Arc::clone(&self.via),
            Some(deadline_after(self.timeout.saturating_add(extra))),
            self.idle_timeout,
        );
        Arc::new(match stats {
            Some(stats) => timer.counted(Arc::clone(stats)),
            None => timer,
        })
    }

    /// Where calls of `instance.func` to this target are counted; make it
    /// once per function.
    pub fn stats(&self, instance: &str, func: &str) -> Arc<ClientStats> {
        ClientStats::new(instance, func, &self.endpoint.to_string())
    }
}

/// `now + d`, saturating instead of overflowing.
pub fn deadline_after(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(crate::MAX_DURATION))
        .unwrap_or(now)
}
