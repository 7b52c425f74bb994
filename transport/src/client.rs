//! The client side of every transport behind one type.

use std::io;
use std::sync::Arc;

use bytes::Bytes;

use crate::call::{CallTimer, InKind, OutKind};
use crate::schema::ScanPlan;
use crate::stream::{Request, StreamClient};
use crate::{Incoming, Outgoing};

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
    /// Starts a call; its streams are bounded by `inv.timer`.
    ///
    /// # Errors
    ///
    /// The call could not be started; the error names the call.
    pub async fn invoke(&self, inv: Invocation<'_>) -> io::Result<(Outgoing, Incoming)> {
        let timer = Arc::clone(&inv.timer);
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
            Ok((tx, rx)) => Ok((
                Outgoing::new(tx, Arc::clone(&timer), true),
                Incoming::new(rx, timer),
            )),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => Err(timer.expired()),
            Err(err) => Err(timer.annotate(err)),
        }
    }
}
