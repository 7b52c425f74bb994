//! Registering exported functions.
//!
//! Each function is looked up in the WIT the extension serves: its signature
//! decides how the synchronous parameters are checked before they are
//! decoded, and which async paths (streams, futures) exist. A call runs on
//! the task of the connection or subscription it arrived on; its
//! parameters, streamed ones included, are received inside that call.

use core::future::Future;
use core::pin::pin;

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bytes::BytesMut;
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio_util::codec::{Decoder, Encoder, FramedRead};
use transport::schema::{Function, Signatures, WitError};
use transport::server::{Call, Duplicate, Handler, Registry};
use wrpc_transport::{Deferred as _, Serve, ServeExt as _, TupleDecode, TupleEncode};

use crate::{CallerContext, Incoming, Outgoing};

/// Why a function cannot be registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The WIT given to [`Functions::add_wit`] does not parse.
    #[error("WIT: {0}")]
    Wit(#[from] WitError),
    /// The function is not in any WIT given to [`Functions::add_wit`].
    #[error("`{instance}.{func}` is not a function of the WIT this extension serves")]
    Unknown {
        /// The instance.
        instance: String,
        /// The function.
        func: String,
    },
    /// The function is registered twice.
    #[error(transparent)]
    Duplicate(#[from] Duplicate),
    /// An instance given to [`Functions::export`] is not in the WIT.
    #[error("`{0}` is not an interface of the WIT this extension serves")]
    UnknownInstance(String),
    /// An exported instance has functions nobody registered.
    #[error("`{instance}` is exported but {} not registered: {}", if .functions.len() == 1 { "this function is" } else { "these functions are" }, .functions.join(", "))]
    Missing {
        /// The instance.
        instance: String,
        /// The functions of its WIT that have no handler.
        functions: Vec<String>,
    },
}

/// The functions an extension serves, with the WIT that types them.
#[derive(Default)]
pub struct Functions {
    registry: Registry,
    signatures: Signatures,
    exported: Vec<String>,
    /// The WIT packages given, as `(file name, contents)`, in order.
    wit: Vec<Vec<(String, String)>>,
}

impl Functions {
    /// No functions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the signatures of a WIT package given as its files `(name, contents)`
    /// (list dependency packages first).
    ///
    /// # Errors
    ///
    /// [`RegisterError::Wit`] when the WIT does not parse.
    pub fn add_wit(&mut self, packages: &[&[(&str, &str)]]) -> Result<(), RegisterError> {
        self.signatures.extend(Signatures::from_wit(packages)?);
        for files in packages {
            let files: Vec<(String, String)> = files
                .iter()
                .map(|(name, contents)| ((*name).to_string(), (*contents).to_string()))
                .collect();
            if !self.wit.contains(&files) {
                self.wit.push(files);
            }
        }
        Ok(())
    }

    /// Adds the signature of a function that no WIT declares (the sdk's own,
    /// such as discovery's per-instance `describe`).
    pub(crate) fn add_signature(&mut self, instance: &str, func: &str, function: Function) {
        self.signatures.insert(instance, func, function);
    }

    /// Declares `instances` exported: each must be in the WIT, and every
    /// function of each must be registered before the extension starts
    /// ([`Functions::check_complete`]).
    ///
    /// # Errors
    ///
    /// [`RegisterError::UnknownInstance`] if an instance is not in the WIT.
    pub fn export(&mut self, instances: &[&str]) -> Result<(), RegisterError> {
        for instance in instances {
            if self.signatures.functions(instance).next().is_none() {
                return Err(RegisterError::UnknownInstance((*instance).to_string()));
            }
            if !self.exported.iter().any(|known| known == instance) {
                self.exported.push((*instance).to_string());
            }
        }
        Ok(())
    }

    /// Checks that every function of every exported instance is registered.
    ///
    /// # Errors
    ///
    /// [`RegisterError::Missing`] names the first instance with functions
    /// that have no handler, and those functions.
    pub fn check_complete(&self) -> Result<(), RegisterError> {
        let registered = self.registry.functions();
        for instance in &self.exported {
            let functions: Vec<String> = self
                .signatures
                .functions(instance)
                .map(|(func, _)| func)
                .filter(|func| !registered.contains(&(instance.as_str(), *func)))
                .map(str::to_string)
                .collect();
            if !functions.is_empty() {
                return Err(RegisterError::Missing {
                    instance: instance.clone(),
                    functions,
                });
            }
        }
        Ok(())
    }

    /// The instances declared with [`Functions::export`], and every other
    /// instance with a registered function, in that order.
    pub fn exported(&self) -> Vec<&str> {
        let mut instances: Vec<&str> = self.exported.iter().map(String::as_str).collect();
        for (instance, _) in self.registry.functions() {
            if !instances.contains(&instance) {
                instances.push(instance);
            }
        }
        instances
    }

    /// Serves `instance.func` with `handler`, which gets the caller and the
    /// decoded parameters `P` and returns the results `R`.
    ///
    /// Parameters are checked against the WIT signature before they are
    /// decoded. A `stream<u8>` parameter should be typed
    /// [`crate::IncomingBytes`] and a `stream<u8>` result
    /// [`crate::OutgoingBytes`] (bounded buffers); other async types use
    /// wRPC's codecs, received and sent inside the call.
    ///
    /// # Errors
    ///
    /// [`RegisterError::Unknown`] if the function is not in the WIT,
    /// [`RegisterError::Duplicate`] if it is already registered.
    pub fn serve<P, R, H, F>(
        &mut self,
        instance: &str,
        func: &str,
        handler: H,
    ) -> Result<(), RegisterError>
    where
        P: TupleDecode<Incoming> + Send + 'static,
        R: TupleEncode<Outgoing> + Send + 'static,
        <P::Decoder as Decoder>::Error: std::error::Error + Send + Sync + 'static,
        <R::Encoder as Encoder<R>>::Error: std::error::Error + Send + Sync + 'static,
        H: Fn(CallerContext, P) -> F + Send + Sync + 'static,
        F: Future<Output = anyhow::Result<R>> + Send + 'static,
    {
        let signature = self
            .signatures
            .get(instance, func)
            .ok_or_else(|| RegisterError::Unknown {
                instance: instance.to_string(),
                func: func.to_string(),
            })?
            .clone();
        let handler = Arc::new(handler);
        // Two futures, chosen once here: a call allocates only the state of
        // the path its function needs (the streamed one is much larger).
        let serve: Handler = if signature.has_async_params() {
            Arc::new(move |call: Call| {
                let handler = Arc::clone(&handler);
                Box::pin(async move {
                    run_streamed::<P, R, H, F>(call, handler)
                        .await
                        .map_err(|err| format!("{err:#}"))
                })
            })
        } else {
            Arc::new(move |call: Call| {
                let handler = Arc::clone(&handler);
                Box::pin(async move {
                    run_sync::<P, R, H, F>(call, handler)
                        .await
                        .map_err(|err| format!("{err:#}"))
                })
            })
        };
        self.registry.insert(instance, func, &signature, serve)?;
        Ok(())
    }

    /// The WIT packages given to [`Functions::add_wit`], as `(file name,
    /// contents)` lists, in the order given (each once).
    pub fn wit(&self) -> &[Vec<(String, String)>] {
        &self.wit
    }

    /// The signatures known from the WIT.
    pub fn signatures(&self) -> &Signatures {
        &self.signatures
    }

    /// `(instance, function)` of every registered function, sorted.
    pub fn registered(&self) -> Vec<(&str, &str)> {
        self.registry.functions()
    }

    /// The registry the listeners serve.
    pub fn into_registry(self) -> Registry {
        self.registry
    }
}

/// A call whose parameters are all synchronous.
async fn run_sync<P, R, H, F>(call: Call, handler: Arc<H>) -> anyhow::Result<()>
where
    P: TupleDecode<Incoming> + Send + 'static,
    R: TupleEncode<Outgoing> + Send + 'static,
    <P::Decoder as Decoder>::Error: std::error::Error + Send + Sync + 'static,
    <R::Encoder as Encoder<R>>::Error: std::error::Error + Send + Sync + 'static,
    H: Fn(CallerContext, P) -> F,
    F: Future<Output = anyhow::Result<R>>,
{
    let Call { cx, rx, tx } = call;
    // A small read buffer (FramedRead::new allocates 8 KiB per call): the
    // checked value arrives whole, and the buffer grows to it if needed.
    let mut params = FramedRead::with_capacity(rx, P::Decoder::default(), 256);
    let received = params
        .try_next()
        .await
        .context("failed to receive parameters")?
        .context("incomplete parameters")?;
    let results = (*handler)(cx, received).await?;
    send_results(tx, results).await
}

/// A call with async parameters: wRPC's decoders defer their receivers to a
/// future built around its private buffered reader; a one-shot `Serve` gets
/// it built, and it runs here, beside the handler.
async fn run_streamed<P, R, H, F>(call: Call, handler: Arc<H>) -> anyhow::Result<()>
where
    P: TupleDecode<Incoming> + Send + 'static,
    R: TupleEncode<Outgoing> + Send + 'static,
    <P::Decoder as Decoder>::Error: std::error::Error + Send + Sync + 'static,
    <R::Encoder as Encoder<R>>::Error: std::error::Error + Send + Sync + 'static,
    H: Fn(CallerContext, P) -> F,
    F: Future<Output = anyhow::Result<R>>,
{
    let Call { cx, rx, tx } = call;
    let one = OneCall(Mutex::new(Some((cx, tx, rx))));
    let calls = one
        .serve_values::<P, R>("", "", Vec::<Box<[Option<usize>]>>::new())
        .await?;
    let mut calls = pin!(calls);
    let (cx, params, receive, reply) = calls
        .next()
        .await
        .context("the call was already taken")?
        .context("failed to receive parameters")?;
    let handled = (*handler)(cx, params);
    let Some(receive) = receive else {
        return reply(handled.await?).await;
    };
    // The deferred receivers hand each streamed parameter its reader; they
    // run beside the handler and, when the handler answers before reading
    // its streams (results that are futures of the work), beside the reply.
    let mut receive = pin!(receive);
    let mut handled = pin!(handled);
    let mut received = false;
    let results = loop {
        tokio::select! {
            results = &mut handled => break results?,
            done = &mut receive, if !received => {
                done.context("failed to receive streamed parameters")?;
                received = true;
            }
        }
    };
    if received {
        return reply(results).await;
    }
    let (replied, done) = tokio::join!(reply(results), receive);
    done.context("failed to receive streamed parameters")?;
    replied
}

/// Sends `results`: the synchronous part (one write), then any streamed part.
async fn send_results<R>(mut tx: Outgoing, results: R) -> anyhow::Result<()>
where
    R: TupleEncode<Outgoing>,
    <R::Encoder as Encoder<R>>::Error: std::error::Error + Send + Sync + 'static,
{
    let mut enc = R::Encoder::default();
    let mut buf = BytesMut::new();
    enc.encode(results, &mut buf)
        .context("failed to encode results")?;
    let deferred = enc.take_deferred();
    tx.write_all(&buf).await.context("failed to send results")?;
    tx.flush().await.context("failed to send results")?;
    if let Some(deferred) = deferred {
        deferred(tx, Vec::new())
            .await
            .context("failed to send streamed results")?;
    }
    Ok(())
}

/// One accepted call, handed to wRPC's `serve_values` exactly once.
struct OneCall(Mutex<Option<(CallerContext, Outgoing, Incoming)>>);

impl Serve for OneCall {
    type Context = CallerContext;
    type Outgoing = Outgoing;
    type Incoming = Incoming;

    async fn serve(
        &self,
        _instance: &str,
        _func: &str,
        _paths: impl Into<Arc<[Box<[Option<usize>]>]>> + Send,
    ) -> anyhow::Result<
        impl Stream<Item = anyhow::Result<(Self::Context, Self::Outgoing, Self::Incoming)>>
            + Send
            + 'static,
    > {
        let taken = self.0.lock().ok().and_then(|mut slot| slot.take());
        Ok(futures::stream::iter(taken.map(Ok)))
    }
}
