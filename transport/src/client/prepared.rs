//! The one typed call: a function's types prepared once ([`Prepared`]), and
//! each call of it ([`Call`]) made through [`Target::invoke`].

use core::time::Duration;

use std::io;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::time::Instant;

use crate::metrics::ClientStats;
use crate::schema::{ScanPlan, Signature, WireType};
use crate::{CallTimer, Incoming, Invocation, Outgoing, Target};

/// Async result paths, as `Invoke::invoke` takes them.
pub type ResultPaths = Arc<[Box<[Option<usize>]>]>;

/// What a client knows of one function: its name in errors, whether its
/// parameters are complete in the first message, the result types checked
/// before results are decoded, and where its calls are counted.
#[derive(Debug)]
pub struct Prepared {
    instance: Box<str>,
    func: Box<str>,
    /// `` `instance.func` ``, for errors.
    name: Arc<str>,
    params_complete: bool,
    results: Option<Arc<ScanPlan>>,
    result_paths: ResultPaths,
    /// Where its calls are counted (made on the first call), if they are.
    stats: Option<OnceLock<Arc<ClientStats>>>,
}

impl Prepared {
    /// `instance.func` typed by `signature`; its calls are counted.
    pub fn new(instance: &str, func: &str, signature: &Signature) -> Self {
        Self {
            params_complete: !signature.has_async_params(),
            results: Some(ScanPlan::new(&signature.results)),
            result_paths: signature.result_paths().into(),
            stats: Some(OnceLock::new()),
            ..Self::untyped(instance, func)
        }
    }

    /// `instance.func` taking no async parameters and returning `results`
    /// (without async values), not counted: a question a client asks of a
    /// target itself (what it serves), not a call it was asked to make.
    pub fn answering(instance: &str, func: &str, results: &[WireType]) -> Self {
        Self {
            params_complete: true,
            results: Some(ScanPlan::new(results)),
            ..Self::untyped(instance, func)
        }
    }

    /// `instance.func` of unknown types: parameters may follow the first
    /// message, results are not checked, calls are not counted.
    pub fn untyped(instance: &str, func: &str) -> Self {
        Self {
            instance: instance.into(),
            func: func.into(),
            name: format!("`{instance}.{func}`").into(),
            params_complete: false,
            results: None,
            result_paths: Arc::from([]),
            stats: None,
        }
    }

    /// The instance.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The function.
    pub fn func(&self) -> &str {
        &self.func
    }

    /// `` `instance.func` ``, as errors name it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// When a call's synchronous part must be done.
#[derive(Clone, Copy, Debug)]
pub enum Deadline {
    /// The target's timeout from now, plus this much (for a function that
    /// waits by design, e.g. a request with its own timeout).
    After(Duration),
    /// At this instant (a command bounded as a whole).
    At(Instant),
}

/// One call of a [`Prepared`] function.
pub struct Call<'a> {
    prepared: &'a Prepared,
    params: Bytes,
    headers: &'a [(&'a str, &'a str)],
    result_paths: Option<ResultPaths>,
    deadline: Deadline,
}

impl<'a> Call<'a> {
    /// `prepared` with the encoded synchronous `params`, no headers, its
    /// own result paths and the target's deadline.
    pub fn new(prepared: &'a Prepared, params: Bytes) -> Self {
        Self {
            prepared,
            params,
            headers: &[],
            result_paths: None,
            deadline: Deadline::After(Duration::ZERO),
        }
    }

    /// Caller headers (e.g. `traceparent`).
    #[must_use]
    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// The async result paths the caller reads (instead of the prepared ones).
    #[must_use]
    pub fn result_paths(mut self, paths: ResultPaths) -> Self {
        self.result_paths = Some(paths);
        self
    }

    /// When the synchronous part must be done.
    #[must_use]
    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }
}

impl Target {
    /// Starts `call`: its synchronous part bounded by its deadline, its
    /// streamed values by the target's idle timeout, counted if its function
    /// is. A function without results returns only once it ran.
    ///
    /// # Errors
    ///
    /// The call could not be started; the error names the call and the
    /// target ([`crate::CallError::of`] tells why).
    pub async fn invoke(&self, call: Call<'_>) -> io::Result<(Outgoing, Incoming)> {
        let Call {
            prepared,
            params,
            headers,
            result_paths,
            deadline,
        } = call;
        let stats = prepared
            .stats
            .as_ref()
            .map(|s| s.get_or_init(|| self.stats(&prepared.instance, &prepared.func)));
        let timer = match deadline {
            Deadline::After(extra) => self.timer(Arc::clone(&prepared.name), extra, stats),
            Deadline::At(at) => {
                let timer = CallTimer::named(
                    Arc::clone(&prepared.name),
                    self.via(),
                    Some(at),
                    self.idle_timeout(),
                );
                Arc::new(match stats {
                    Some(stats) => timer.counted(Arc::clone(stats)),
                    None => timer,
                })
            }
        };
        self.client()
            .invoke(Invocation {
                instance: &prepared.instance,
                func: &prepared.func,
                headers,
                params,
                params_complete: prepared.params_complete,
                results: prepared.results.clone(),
                result_paths: result_paths.unwrap_or_else(|| Arc::clone(&prepared.result_paths)),
                timer,
            })
            .await
    }
}
