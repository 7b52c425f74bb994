//! [`TypedClient`]: a target and the prepared functions it may call, as a
//! wRPC `Invoke` for the client functions `wit-bindgen-wrpc` generates.

use core::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use wrpc_transport::Invoke;

use crate::schema::{Signatures, WitError};
use crate::{CallError, Endpoint, Incoming, Outgoing, Target, TargetError};

use super::{Call, CallOptions, Connector, Prepared};

/// Headers sent with a call (e.g. `traceparent`); empty for none.
pub type Headers = Vec<(String, String)>;

/// Why a [`TypedClient`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedClientError {
    /// The target could not be connected to.
    #[error(transparent)]
    Connect(#[from] TargetError),
    /// The WIT does not parse.
    #[error("WIT: {0}")]
    Wit(#[from] WitError),
}

/// A client of one target, typed by the functions it may call: every call's
/// synchronous part is done within the timeout, a streamed value pauses for
/// at most the idle timeout, and results are checked before they are
/// decoded. Cheap to clone. It is `sdk::Outbound`.
#[derive(Clone)]
pub struct TypedClient {
    target: Target,
    functions: Arc<HashMap<(String, String), Prepared>>,
}

impl TypedClient {
    /// Connects to `target` as `client_name`, for calls to the functions of
    /// `wit` (packages as file lists, dependencies first).
    ///
    /// # Errors
    ///
    /// [`TypedClientError`] when NATS cannot be reached or the WIT does not parse.
    pub async fn connect(
        target: &Endpoint,
        client_name: &str,
        wit: &[&[(&str, &str)]],
        opts: CallOptions,
    ) -> Result<Self, TypedClientError> {
        Self::connect_with(&Connector::new(client_name), target, wit, opts).await
    }

    /// Like [`TypedClient::connect`], through `connector` (which shares NATS
    /// connections between its targets).
    ///
    /// # Errors
    ///
    /// As [`TypedClient::connect`].
    pub async fn connect_with(
        connector: &Connector,
        target: &Endpoint,
        wit: &[&[(&str, &str)]],
        opts: CallOptions,
    ) -> Result<Self, TypedClientError> {
        let signatures = Signatures::from_wit(wit)?;
        let functions: Vec<Prepared> = signatures
            .iter()
            .map(|(instance, func, signature)| Prepared::new(instance, func, signature))
            .collect();
        let target = connector.target(target, opts).await?;
        Ok(Self::new(target, functions))
    }

    /// Calls through `target` to `functions`.
    pub fn new(target: Target, functions: impl IntoIterator<Item = Prepared>) -> Self {
        let functions = functions
            .into_iter()
            .map(|p| ((p.instance().to_string(), p.func().to_string()), p))
            .collect();
        Self {
            target,
            functions: Arc::new(functions),
        }
    }

    /// Calls `instance.func` with `params` (a tuple of the parameters'
    /// generated Rust types) and decodes the results `R` (a tuple too):
    /// the typed call for functions without a generated client, e.g. in
    /// tests. Streamed values are not supported here.
    ///
    /// # Errors
    ///
    /// The call failed (see [`TypedClient::call_error`]) or its results did
    /// not decode.
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

    /// What a failed call of `function` (named as the caller knows it) failed with.
    pub fn call_error(&self, function: impl Into<String>, err: &anyhow::Error) -> CallError {
        CallError::of(function, &self.target, err)
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

impl Invoke for TypedClient {
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
        let call = Call::new(prepared, params).headers(&headers);
        Ok(self.target.invoke(call).await?)
    }
}
