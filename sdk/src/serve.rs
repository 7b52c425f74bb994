//! Running an extension: connect the transports, serve the exports, drain on shutdown.

use core::future::Future;
use core::net::SocketAddr;
use core::pin::Pin;

use std::sync::Arc;

use futures::stream::{select_all, Stream, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument as _};
use wrpc_transport::Serve;

use crate::health::{serve_http, Health, Probe};
use crate::transport::{accept_tcp, NatsServer, TcpServer};
use crate::{CallerContext, ConfigError, ListenAddr, ServeArgs};

/// One invocation, ready to run.
pub type Invocation = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'static>>;

/// The invocations of one exported function, as the generated `serve` returns them.
pub type Invocations = Pin<Box<dyn Stream<Item = anyhow::Result<Invocation>> + Send + 'static>>;

/// What an extension exports: something that can register its handlers on any
/// transport. The sdk's generated wire modules (e.g. [`crate::keyvalue`])
/// implement it for handler types.
pub trait Exports: Clone + Send + Sync + 'static {
    /// Registers every exported function on `wrpc` and returns, per function,
    /// `(instance, function, invocations)`.
    fn serve<T>(
        &self,
        wrpc: &T,
    ) -> impl Future<Output = anyhow::Result<Vec<(&'static str, &'static str, Invocations)>>> + Send
    where
        T: Serve<Context = CallerContext> + Send + Sync;
}

/// Why an extension could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS at {url}: {error}")]
    NatsConnect {
        /// The configured URL.
        url: String,
        /// The client's error.
        error: async_nats::ConnectError,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// Every transport stopped delivering calls (e.g. the NATS connection closed for good).
    #[error("every transport stopped delivering calls")]
    TransportsClosed,
    /// Registering handlers on a transport failed.
    #[error("cannot serve on {transport}: {error:#}")]
    Register {
        /// The transport, e.g. `nats://…` or `tcp://…`.
        transport: String,
        /// The underlying error.
        error: anyhow::Error,
    },
}

/// An extension server: a name, shared flags, and then [`Extension::run`].
pub struct Extension {
    name: String,
    args: ServeArgs,
    probe: Probe,
}

impl Extension {
    /// An extension called `name` (used as the NATS client name and default
    /// queue group), configured by `args`.
    pub fn new(name: impl Into<String>, args: ServeArgs) -> Self {
        Self {
            name: name.into(),
            args,
            probe: Arc::new(|| Box::pin(async { Ok(()) })),
        }
    }

    /// Sets the backend check behind `/readyz`: `Ok(())` when the backend answers.
    #[must_use]
    pub fn readiness<F, Fut>(mut self, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.probe = Arc::new(move || Box::pin(probe()));
        self
    }

    /// Serves `exports` on every configured transport until SIGTERM or ctrl-c,
    /// then stops accepting, lets in-flight calls finish within the grace
    /// period and returns.
    ///
    /// # Errors
    ///
    /// Returns a [`ServeError`] if a transport cannot be set up.
    pub async fn run(self, exports: impl Exports) -> Result<(), ServeError> {
        self.run_until(exports, shutdown_signal()).await
    }

    /// Like [`Extension::run`], but stops when `shutdown` completes.
    ///
    /// # Errors
    ///
    /// Returns a [`ServeError`] if a transport cannot be set up.
    pub async fn run_until(
        self,
        exports: impl Exports,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let Self { name, args, probe } = self;
        args.validate()?;
        let stop = CancellationToken::new();
        // Stops the health endpoint and accept loops on every way out, errors included.
        let _stop_on_exit = stop.clone().drop_guard();
        let health = Arc::new(Health::new(probe));

        let http = bind(args.http_addr).await?;
        info!(addr = %local(&http), "health endpoint listening (/healthz, /readyz)");
        tokio::spawn(serve_http(http, Arc::clone(&health), stop.clone()));

        let mut streams = Vec::new();
        let mut nats_client = None;
        if let Some(url) = &args.nats_url {
            let nats = async_nats::ConnectOptions::new()
                .name(&name)
                .connection_timeout(core::time::Duration::from_secs(5))
                .connect(url.as_str())
                .await
                .map_err(|error| ServeError::NatsConnect {
                    url: url.clone(),
                    error,
                })?;
            let register = |error| ServeError::Register {
                transport: url.clone(),
                error,
            };
            let queue_group = args.queue_group.clone().unwrap_or_else(|| name.clone());
            let client = wrpc_transport_nats::Client::new(
                nats.clone(),
                args.prefix.as_str(),
                Some(queue_group.as_str().into()),
            )
            .await
            .map_err(register)?;
            streams.extend(
                exports
                    .serve(&NatsServer::new(client))
                    .await
                    .map_err(register)?,
            );
            info!(%url, prefix = args.prefix, queue_group, "serving over NATS");
            nats_client = Some(nats);
        }
        for addr in &args.listen {
            let ListenAddr::Tcp(sock) = addr;
            let listener = bind(*sock).await?;
            let server = Arc::new(TcpServer::default());
            let registered = exports.serve(server.as_ref()).await;
            streams.extend(registered.map_err(|error| ServeError::Register {
                transport: addr.to_string(),
                error,
            })?);
            info!(addr = %format!("tcp://{}", local(&listener)), "serving over TCP");
            tokio::spawn(accept_tcp(listener, server, stop.clone()));
        }
        health.set_listening(true);
        info!(functions = streams.len(), "{name} ready");

        let (in_flight, ended) = drive(streams, args.max_concurrency, shutdown).await;

        info!("shutting down: no new calls accepted");
        health.set_listening(false);
        stop.cancel();
        drain(in_flight, args.shutdown_grace).await;
        if let Some(nats) = nats_client {
            let _ = nats.drain().await;
        }
        match ended {
            Ended::Shutdown => Ok(()),
            Ended::TransportsClosed => Err(ServeError::TransportsClosed),
        }
    }
}

/// Why [`drive`] stopped.
enum Ended {
    Shutdown,
    TransportsClosed,
}

/// Runs invocations, each in its own task, at most `limit` at once, until
/// `shutdown` completes or every stream ends; returns the calls still running.
async fn drive(
    streams: Vec<(&'static str, &'static str, Invocations)>,
    limit: usize,
    shutdown: impl Future<Output = ()> + Send,
) -> (JoinSet<()>, Ended) {
    let mut invocations = select_all(
        streams
            .into_iter()
            .map(|(instance, func, s)| s.map(move |inv| (instance, func, inv))),
    );
    let permits = Arc::new(Semaphore::new(limit));
    let mut shutdown = core::pin::pin!(shutdown);
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return (tasks, Ended::Shutdown),
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return (tasks, Ended::Shutdown),
            },
        };
        let next = tokio::select! {
            () = &mut shutdown => return (tasks, Ended::Shutdown),
            next = invocations.next() => next,
        };
        let Some((instance, func, invocation)) = next else {
            return (tasks, Ended::TransportsClosed);
        };
        let invocation = match invocation {
            Ok(invocation) => invocation,
            Err(err) => {
                warn!(instance, func, "failed to accept invocation: {err:#}");
                continue;
            }
        };
        let span = tracing::debug_span!("invocation", instance, func);
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(
            async move {
                let _permit = permit;
                match invocation.await {
                    Ok(()) => debug!("call complete"),
                    Err(err) => warn!("call failed: {err:#}"),
                }
            }
            .instrument(span),
        );
    }
}

/// Waits up to `grace` for in-flight calls, then aborts what is left.
async fn drain(mut tasks: JoinSet<()>, grace: core::time::Duration) {
    let in_flight = tasks.len();
    if in_flight > 0 {
        info!(in_flight, ?grace, "waiting for in-flight calls");
    }
    let finished =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        warn!(
            aborted = tasks.len(),
            "grace period over: aborting calls still running"
        );
        tasks.shutdown().await;
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError::Bind {
            addr: addr.to_string(),
            error,
        })
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
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
