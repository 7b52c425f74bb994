//! What a server serves and how its listeners run: the [`Registry`] of
//! functions, the [`Call`] each handler gets, and the shared [`ServeOptions`].

use core::future::Future;
use core::pin::Pin;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tracing::Instrument as _;

use crate::metrics::ServerStats;
use crate::schema::{ScanPlan, Signature};
use crate::{CallerContext, Incoming, Limits, Outgoing};

/// One call as a handler receives it.
pub struct Call {
    /// Who called.
    pub cx: CallerContext,
    /// The parameters.
    pub rx: Incoming,
    /// Where the results go.
    pub tx: Outgoing,
}

/// What a handler reports: `Err` carries a message for the caller (sent to
/// callers that speak the pooled dialect; others see the call end early).
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Serves one function: runs a call to completion, results included.
pub type Handler = Arc<dyn Fn(Call) -> HandlerFuture + Send + Sync>;

/// A served function.
pub struct Function {
    pub(crate) handler: Handler,
    /// `` `instance.func` ``, for log lines and errors.
    pub(crate) name: Arc<str>,
    pub(crate) params: Arc<ScanPlan>,
    pub(crate) param_paths: Arc<[Box<[Option<usize>]>]>,
    pub(crate) has_async_results: bool,
    /// The function returns nothing: over NATS its end of results is then
    /// the only sign the caller gets that it ran.
    pub(crate) has_no_results: bool,
}

/// A function registered twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{instance}.{func}` is registered twice")]
pub struct Duplicate {
    /// The instance.
    pub instance: String,
    /// The function.
    pub func: String,
}

/// The functions a server serves, by instance and name.
#[derive(Clone, Default)]
pub struct Registry {
    functions: HashMap<String, HashMap<String, Arc<Function>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `instance.func`, whose types are `signature`, with `handler`.
    ///
    /// Each call runs in a tracing span `call` that continues the caller's
    /// trace ([`CallerContext::trace`]), and is counted in
    /// [`crate::metrics::names`]'s server metrics.
    ///
    /// # Errors
    ///
    /// [`Duplicate`] if the function is already registered.
    pub fn insert(
        &mut self,
        instance: &str,
        func: &str,
        signature: &Signature,
        handler: Handler,
    ) -> Result<(), Duplicate> {
        let functions = self.functions.entry(instance.to_string()).or_default();
        if functions.contains_key(func) {
            return Err(Duplicate {
                instance: instance.to_string(),
                func: func.to_string(),
            });
        }
        let stats = Arc::new(ServerStats::new(instance, func));
        let span_name: Arc<str> = format!("{instance}.{func}").into();
        let handler: Handler = Arc::new(move |mut call: Call| {
            let (parent, span) = call.cx.continue_trace();
            let span = tracing::info_span!(
                "call",
                function = %span_name,
                trace_id = %span.trace_id(),
                span_id = %span.span_id(),
                parent_id = parent.map(|p| p.span_id()),
                outcome = tracing::field::Empty,
            );
            let served = stats.start();
            let handled = handler(call);
            Box::pin(
                async move {
                    let outcome = handled.await;
                    served.finish(outcome.is_ok());
                    let ok = outcome.is_ok();
                    tracing::Span::current().record("outcome", if ok { "ok" } else { "error" });
                    tracing::debug!(ok, "call served");
                    outcome
                }
                .instrument(span),
            )
        });
        functions.insert(
            func.to_string(),
            Arc::new(Function {
                handler,
                name: format!("`{instance}.{func}`").into(),
                params: ScanPlan::new(&signature.params),
                param_paths: signature.param_paths().into(),
                has_async_results: signature.has_async_results(),
                has_no_results: signature.results.is_empty(),
            }),
        );
        Ok(())
    }

    pub(crate) fn get(&self, instance: &str, func: &str) -> Option<Arc<Function>> {
        self.functions.get(instance)?.get(func).cloned()
    }

    /// `(instance, function)` of every registered function, sorted.
    pub fn functions(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .functions
            .iter()
            .flat_map(|(i, fs)| fs.keys().map(move |f| (i.as_str(), f.as_str())))
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

/// What every listener of one server shares.
#[derive(Clone)]
pub struct ServeOptions {
    /// Limits on what peers may send.
    pub limits: Limits,
    /// One permit per call in flight, across all listeners.
    pub permits: Arc<Semaphore>,
    /// Cancelled to stop accepting: idle connections are told to go away,
    /// calls in flight finish.
    pub shutdown: CancellationToken,
    /// Cancelled when the grace period is over: calls still running are dropped.
    pub abort: CancellationToken,
    /// Tracks every connection and call task, to wait for them on shutdown.
    pub tracker: TaskTracker,
}

/// Why serving could not start on an endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS at {url}: {error}")]
    NatsConnect {
        /// The configured URL (credentials redacted).
        url: String,
        /// The client's error.
        error: crate::nats::ConnectError,
    },
    /// Subscribing on NATS failed.
    #[error("cannot serve on NATS at {url}: {error}")]
    NatsSubscribe {
        /// The configured URL (credentials redacted).
        url: String,
        /// The client's error.
        error: async_nats::SubscribeError,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        error: std::io::Error,
    },
}

/// One registry served on a set of endpoints, until [`Serving::drain`].
pub struct Serving {
    opts: ServeOptions,
    nats: Vec<async_nats::Client>,
    addresses: Vec<String>,
    listeners: Vec<ListenerState>,
}

/// Whether one listener can take calls: a socket's accept loop is running,
/// a NATS connection is connected. Cheap to clone and to ask.
#[derive(Clone)]
pub struct ListenerState {
    address: String,
    kind: ListenerKind,
}

#[derive(Clone)]
enum ListenerKind {
    Socket(Arc<AtomicBool>),
    Nats(async_nats::Client),
}

impl ListenerState {
    /// The listener's address (credentials redacted).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `Ok` when it can take calls, else why not.
    ///
    /// # Errors
    ///
    /// The accept loop has stopped, or the NATS connection is not connected.
    pub fn check(&self) -> Result<(), String> {
        match &self.kind {
            ListenerKind::Socket(running) if running.load(Ordering::Relaxed) => Ok(()),
            ListenerKind::Socket(_) => Err("not accepting connections".into()),
            ListenerKind::Nats(client) => crate::nats::check_connected(client),
        }
    }
}

/// Clears its flag when dropped: the task holding it has ended.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Serving {
    /// Binds every endpoint (connecting to NATS as `client_name`, each
    /// attempt bounded by `connect_timeout`) and serves `registry` on each
    /// under `opts`. If one fails, those already started are stopped.
    ///
    /// # Errors
    ///
    /// A [`StartError`] naming the endpoint that failed.
    pub async fn start(
        endpoints: &[crate::Endpoint],
        client_name: &str,
        registry: Arc<Registry>,
        opts: ServeOptions,
        connect_timeout: core::time::Duration,
    ) -> Result<Self, StartError> {
        use crate::nats::NatsServer;
        use crate::stream::{serve, Listener};
        use crate::Endpoint;

        // Stops every serve loop already started if a later endpoint fails.
        let stop_on_error = opts.shutdown.clone().drop_guard();
        let mut nats = Vec::new();
        let mut addresses = Vec::new();
        let mut listeners = Vec::new();
        for endpoint in endpoints {
            match endpoint {
                Endpoint::Nats(ep) => {
                    let url = endpoint.to_string();
                    let client = crate::nats::connect(ep, client_name, connect_timeout)
                        .await
                        .map_err(|error| StartError::NatsConnect {
                            url: url.clone(),
                            error,
                        })?;
                    let server = NatsServer::subscribe(
                        client.clone(),
                        &ep.prefix,
                        ep.queue_group.as_deref(),
                        &registry,
                    )
                    .await
                    .map_err(|error| StartError::NatsSubscribe {
                        url: url.clone(),
                        error,
                    })?
                    .with_access(&ep.access);
                    tracing::info!(%url, "serving over NATS");
                    listeners.push(ListenerState {
                        address: url.clone(),
                        kind: ListenerKind::Nats(client.clone()),
                    });
                    addresses.push(url);
                    opts.tracker.spawn(server.run(opts.clone()));
                    nats.push(client);
                }
                _ => {
                    let listener =
                        Listener::bind(endpoint)
                            .await
                            .map_err(|error| StartError::Bind {
                                addr: endpoint.to_string(),
                                error,
                            })?;
                    tracing::info!(addr = listener.local(), "serving");
                    addresses.push(listener.local().to_string());
                    let running = Arc::new(AtomicBool::new(true));
                    listeners.push(ListenerState {
                        address: listener.local().to_string(),
                        kind: ListenerKind::Socket(Arc::clone(&running)),
                    });
                    let served = serve(listener, Arc::clone(&registry), opts.clone());
                    opts.tracker.spawn(async move {
                        let _running = ClearOnDrop(running);
                        served.await;
                    });
                }
            }
        }
        stop_on_error.disarm();
        Ok(Self {
            opts,
            nats,
            addresses,
            listeners,
        })
    }

    /// Where it serves, with the ports actually bound.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Each listener's state, for readiness.
    pub fn listeners(&self) -> &[ListenerState] {
        &self.listeners
    }

    /// Stops accepting, lets calls in flight finish within `grace`, aborts
    /// the rest, then drains the NATS connections.
    pub async fn drain(self, grace: core::time::Duration) {
        use core::time::Duration;
        let Self { opts, nats, .. } = self;
        opts.shutdown.cancel();
        opts.tracker.close();
        if tokio::time::timeout(grace, opts.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "grace period over: aborting calls still running");
            opts.abort.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), opts.tracker.wait()).await;
        }
        for nats in nats {
            let _ = tokio::time::timeout(Duration::from_secs(2), nats.drain()).await;
        }
    }
}

impl ServeOptions {
    /// Options for a new server: `limits`, at most `max_concurrency` calls at
    /// once, nothing cancelled yet.
    pub fn new(limits: Limits, max_concurrency: usize) -> Self {
        Self {
            limits,
            permits: Arc::new(Semaphore::new(max_concurrency)),
            shutdown: CancellationToken::new(),
            abort: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
