//! Calling out: a client of one target with deadlines, for extensions that
//! call into components (a messaging extension delivering to a handler).
//!
//! [`Outbound`] implements wRPC's `Invoke`, so the client functions
//! `wit-bindgen-wrpc` generates for an imported interface call through it.
//! Every call's synchronous part must be done within the timeout, a
//! streamed value may pause for at most the idle timeout, and results are
//! checked against the WIT before they are decoded.

use core::time::Duration;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
pub use transport::call::failure_reason;
use transport::metrics::ClientStats;
use transport::schema::{ScanPlan, Signatures};
use transport::{Endpoint, Incoming, Invocation, Limits, Outgoing, Target};
use wrpc_transport::Invoke;

/// How long connecting to a NATS server may take.
const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadlines and limits of an [`Outbound`] client.
#[derive(Clone, Copy, Debug)]
pub struct OutboundOptions {
    /// Deadline of each call's synchronous part.
    pub timeout: Duration,
    /// Longest pause of a streamed value.
    pub idle_timeout: Duration,
    /// What results may declare.
    pub limits: Limits,
}

impl Default for OutboundOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            limits: Limits::DEFAULT,
        }
    }
}

/// Why an [`Outbound`] client could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The target could not be connected to.
    #[error(transparent)]
    Connect(#[from] transport::TargetError),
    /// The WIT does not parse.
    #[error("WIT: {0}")]
    Wit(#[from] transport::schema::WitError),
}

/// What is known of one function's types.
struct Prepared {
    name: Arc<str>,
    params_complete: bool,
    results: Arc<ScanPlan>,
    result_paths: Arc<[Box<[Option<usize>]>]>,
    /// Where its calls are counted, made on the first call.
    stats: OnceLock<Arc<ClientStats>>,
}

/// A client of one target, typed by the WIT of what it calls. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    target: Target,
    functions: Arc<HashMap<(String, String), Prepared>>,
}

/// Headers sent with a call (e.g. `traceparent`); empty for none.
pub type Headers = Vec<(String, String)>;

impl Outbound {
    /// Connects to `target` as `client_name`, for calls to the functions of
    /// `wit` (packages as file lists, dependencies first).
    ///
    /// # Errors
    ///
    /// [`OutboundError`] when NATS cannot be reached or the WIT does not parse.
    pub async fn connect(
        target: &Endpoint,
        client_name: &str,
        wit: &[&[(&str, &str)]],
        opts: OutboundOptions,
    ) -> Result<Self, OutboundError> {
        let signatures = Signatures::from_wit(wit)?;
        let functions = signatures
            .iter()
            .map(|(instance, func, signature)| {
                let prepared = Prepared {
                    name: format!("`{instance}.{func}`").into(),
                    params_complete: !signature.has_async_params(),
                    results: ScanPlan::new(&signature.results),
                    result_paths: signature.result_paths().into(),
                    stats: OnceLock::new(),
                };
                ((instance.to_string(), func.to_string()), prepared)
            })
            .collect();
        let target = Target::connect(
            target,
            client_name,
            opts.limits,
            Vec::new(),
            NATS_CONNECT_TIMEOUT,
            opts.timeout,
            opts.idle_timeout,
        )
        .await?;
        Ok(Self {
            target,
            functions: Arc::new(functions),
        })
    }

    /// Calls `instance.func` with `params` (a tuple of the parameters'
    /// generated Rust types) and decodes the results `R` (a tuple too):
    /// the typed call for functions without a generated client, e.g. in
    /// tests. Streamed values are not supported here.
    ///
    /// # Errors
    ///
    /// The call failed (see [`failure_reason`]) or its results did not decode.
    pub async fn call<P, R>(
        &self,
        headers: Headers,
        instance: &str,
        func: &str,
        params: P,
    ) -> anyhow::Result<R>
    where
        P: wrpc_transport::TupleEncode<Outgoing> + Send,
        R: wrpc_transport::TupleDecode<Incoming> + Send,
        <P::Encoder as tokio_util::codec::Encoder<P>>::Error:
            std::error::Error + Send + Sync + 'static,
        <R::Decoder as tokio_util::codec::Decoder>::Error:
            std::error::Error + Send + Sync + 'static,
    {
        use wrpc_transport::InvokeExt as _;
        let no_paths: [[Option<usize>; 0]; 0] = [];
        self.invoke_values_blocking(headers, instance, func, params, no_paths)
            .await
    }

    /// Where calls go.
    pub fn endpoint(&self) -> &Endpoint {
        self.target.endpoint()
    }

    /// The deadline of each call's synchronous part.
    pub fn timeout(&self) -> Duration {
        self.target.timeout()
    }
}

/// Whether a call failed because nothing answered at the target (refused,
/// no NATS responders, unreachable): the callee never saw the call.
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| transport::call::is_unreachable(e.kind()))
    })
}

impl Invoke for Outbound {
    type Context = Headers;
    type Outgoing = Outgoing;
    type Incoming = Incoming;

    async fn invoke<P>(
        &self,
        cx: Self::Context,
        instance: &str,
        func: &str,
        params: Bytes,
        _paths: impl AsRef<[P]> + Send,
    ) -> anyhow::Result<(Self::Outgoing, Self::Incoming)>
    where
        P: AsRef<[Option<usize>]> + Send + Sync,
    {
        let Some(prepared) = self
            .functions
            .get(&(instance.to_string(), func.to_string()))
        else {
            anyhow::bail!("`{instance}.{func}` is not in the WIT this client was made for");
        };
        let headers: Vec<(&str, &str)> = cx.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (tx, rx) = self
            .target
            .client()
            .invoke(Invocation {
                instance,
                func,
                headers: &headers,
                params,
                params_complete: prepared.params_complete,
                results: Some(Arc::clone(&prepared.results)),
                result_paths: Arc::clone(&prepared.result_paths),
                timer: self.target.timer(
                    Arc::clone(&prepared.name),
                    Duration::ZERO,
                    Some(
                        prepared
                            .stats
                            .get_or_init(|| self.target.stats(instance, func)),
                    ),
                ),
            })
            .await?;
        Ok((tx, rx))
    }
}
