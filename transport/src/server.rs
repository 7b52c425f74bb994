//! What a server serves and how its listeners run: the [`Registry`] of
//! functions, the [`Call`] each handler gets, and the shared [`ServeOptions`].

use core::future::Future;
use core::pin::Pin;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
        functions.insert(
            func.to_string(),
            Arc::new(Function {
                handler,
                name: format!("`{instance}.{func}`").into(),
                params: ScanPlan::new(&signature.params),
                param_paths: signature.param_paths().into(),
                has_async_results: signature.has_async_results(),
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
