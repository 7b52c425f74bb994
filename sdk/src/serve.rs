//! Running an extension: bind every transport, serve the exports, drain on shutdown.

use core::future::Future;
use core::time::Duration;

use std::io::Write as _;
use std::sync::Arc;

use ops::{OpsEndpoint, Readiness};
use tracing::{info, warn};
use transport::server::{ServeOptions, Serving, StartError};

use crate::dispatch::{Functions, RegisterError};
use crate::{ConfigError, ServeArgs};

/// A backend check: `Ok` when the backend answers, else why not.
type Probe = Arc<
    dyn Fn() -> core::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// What an extension exports: its functions, registered with the WIT that
/// types them. The sdk's wire modules (e.g. [`crate::keyvalue`]) implement it
/// for handler types.
pub trait Exports: Send + Sync + 'static {
    /// Adds the WIT and registers every exported function in `functions`.
    ///
    /// # Errors
    ///
    /// A function is not in the WIT, or is registered twice.
    fn register(&self, functions: &mut Functions) -> Result<(), RegisterError>;
}

/// Why an extension could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exports could not be registered.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// A transport could not be set up (NATS unreachable, address in use…).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The health endpoint could not be bound.
    #[error(transparent)]
    Bind(#[from] ops::BindError),
}

/// An extension server: a name, shared flags, and then [`Extension::run`].
pub struct Extension {
    name: String,
    version: Option<String>,
    args: ServeArgs,
    probe: Probe,
}

impl Extension {
    /// An extension called `name` (used as the NATS client name and default
    /// queue group), configured by `args`.
    pub fn new(name: impl Into<String>, args: ServeArgs) -> Self {
        Self {
            name: name.into(),
            version: None,
            args,
            probe: Arc::new(|| Box::pin(async { Ok(()) })),
        }
    }

    /// Sets the version the extension reports (`/describe` and discovery),
    /// usually `env!("CARGO_PKG_VERSION")`.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the backend check behind `/readyz` (reported as `backend`):
    /// `Ok(())` when the backend answers.
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
        self.run_until(exports, transport::server::shutdown_signal())
            .await
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
        self.start(exports).await?.stop_after(shutdown).await;
        Ok(())
    }

    /// Binds every transport and starts serving `exports`; returns once the
    /// extension is ready.
    ///
    /// Each bound address is printed on stdout as `listening URL` (with the
    /// port actually bound, so `:0` can be used), then `ready`: every
    /// listener is bound and takes calls. Whether the backend answers is
    /// `/readyz`'s (the `readiness` check), not `ready`'s.
    ///
    /// # Errors
    ///
    /// Returns a [`ServeError`] if a transport cannot be set up.
    pub async fn start(self, exports: impl Exports) -> Result<Running, ServeError> {
        let Self {
            name,
            version,
            args,
            probe,
        } = self;
        args.validate()?;
        raise_open_files_limit();
        crate::memory::release_large_buffers();
        ops::metrics::install();
        let mut functions = Functions::new();
        exports.register(&mut functions)?;
        functions.check_complete()?;
        let served = crate::discovery::Served::of(&name, version.as_deref(), &functions);
        let description = ops::Description::default();
        crate::discovery::register(&mut functions, &description)?;
        let registry = Arc::new(functions.into_registry());
        let opts = ServeOptions::new(args.limits.limits(), args.max_concurrency);
        // Stops the health endpoint after the drain, or if start-up fails.
        let http_stop = tokio_util::sync::CancellationToken::new();
        let stop_on_error = http_stop.clone().drop_guard();
        let readiness = Readiness::new();
        let mut addresses = Vec::new();

        let http = OpsEndpoint::bind(args.http_addr).await?;
        let http_addr = http.local_addr();
        info!(
            addr = %http_addr,
            "health endpoint listening (/healthz, /readyz, /metrics)"
        );
        addresses.push(format!("http://{http_addr}"));
        // /readyz says `draining` while calls finish.
        http.describe(Arc::clone(&description))
            .spawn(readiness.clone(), http_stop.clone());

        let serving = Serving::start(
            &args.endpoints(&name),
            &name,
            Arc::clone(&registry),
            opts,
            transport::client::NATS_CONNECT_TIMEOUT,
        )
        .await?;
        for listener in serving.listeners() {
            let listener = listener.clone();
            readiness.add_now(format!("listener {}", listener.address()), move || {
                listener.check()
            });
        }
        readiness.add("backend", move || probe());
        addresses.extend(serving.addresses().iter().cloned());
        let _ = description.set(served.document(&addresses));
        stop_on_error.disarm();
        readiness.set_started();
        for addr in &addresses {
            announce(&format!("listening {addr}"));
        }
        info!(functions = registry.functions().len(), "{name} ready");
        announce("ready");
        Ok(Running {
            serving,
            readiness,
            http_stop,
            addresses,
            grace: args.shutdown_grace,
        })
    }
}

/// A started extension.
pub struct Running {
    serving: Serving,
    readiness: Readiness,
    http_stop: tokio_util::sync::CancellationToken,
    addresses: Vec<String>,
    grace: Duration,
}

impl Running {
    /// Where it serves: the health endpoint (`http://…`) first, then each
    /// transport, with the ports actually bound.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Waits for `shutdown`, then stops accepting, lets calls in flight
    /// finish within the grace period, aborts the rest and returns.
    pub async fn stop_after(self, shutdown: impl Future<Output = ()> + Send) {
        let Self {
            serving,
            readiness,
            http_stop,
            grace,
            ..
        } = self;
        shutdown.await;
        info!("shutting down: no new calls accepted");
        readiness.set_draining();
        serving.drain(grace).await;
        http_stop.cancel();
        ops::otlp::flush(Duration::from_secs(2));
    }
}

/// Raises the soft limit on open files to the hard limit: a listener is
/// meant to hold thousands of connections (`--max-connections`), and the
/// usual soft default of 1024 would refuse them long before.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            warn!(%err, "could not raise the open-files limit");
        }
    }
}

/// One line on stdout for whoever started the extension (tests, scripts).
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
