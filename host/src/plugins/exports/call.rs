//! One served call: decode the parameters, run the export on a fresh
//! store and instance (made ahead when the component has a `pool_size`),
//! send the results (and their streams).

use core::time::Duration;

use std::sync::Arc;

use host_plugin::{describe_trap, Ctx, WarmPool};
use tokio::io::AsyncWriteExt as _;
use transport::async_values::read_sync;
use transport::schema::codec::{decode_tuple, encode_tuple, Deferred};
use transport::schema::val::{AsyncVal, ToVal};
use transport::schema::{Function, Type};
use transport::server::Call;
use transport::{Incoming, Limits, Outgoing};
use wasmtime::component::{ComponentExportIndex, Func, Val};
use wasmtime::{AsContextMut as _, Store};
use wrpc_client_plugin::values;
use wrpc_transport::Index as _;

/// One exported function, ready to run a call.
pub(super) struct Exported {
    /// `` `instance.func` `` of component `name`, for errors.
    pub(super) what: String,
    pub(super) component: String,
    pub(super) func: ComponentExportIndex,
    pub(super) function: Function,
    /// The parameter types, for the decoder.
    pub(super) params: Vec<Type>,
    /// Whether it runs concurrently: an `async func`, or futures or
    /// streams among its values.
    pub(super) concurrent: bool,
    pub(super) timeout: Duration,
    /// Where its instances come from (made ahead with `pool_size`).
    pub(super) pool: Arc<WarmPool>,
}

/// A call's parameters decoded, or why they could not be.
fn params_error(what: &str, err: impl core::fmt::Display) -> String {
    format!("{what}: the parameters do not decode: {err}")
}

impl Exported {
    /// Runs one call on a fresh instance; `Err` is sent to the caller.
    pub(super) async fn call(&self, call: Call) -> Result<(), String> {
        let Call { cx, rx, tx } = call;
        let run = async {
            let (mut store, instance) =
                self.pool.take().await.map_err(|err| describe_trap(&err))?;
            // The component's own calls continue the caller's trace.
            store.data_mut().set_trace(cx.trace());
            let func = instance
                .get_func(&mut store, self.func)
                .ok_or_else(|| format!("{} is not a function", self.what))?;
            if self.concurrent {
                self.run_concurrent(store, func, rx, tx).await
            } else {
                self.run_plain(&mut store, func, rx, tx).await
            }
        };
        let outcome = match tokio::time::timeout(self.timeout, run).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!(
                "{} did not finish within {:?}",
                self.what, self.timeout
            )),
        };
        if let Err(why) = &outcome {
            tracing::warn!("{why}");
        }
        outcome
    }

    fn trapped(&self, err: &wasmtime::Error) -> String {
        format!(
            "component `{}` trapped in {}: {}",
            self.component,
            self.what,
            describe_trap(err)
        )
    }

    /// Encodes the results; returns their bytes and their futures and streams.
    fn encode<'v>(
        &'v self,
        results: &'v [Val],
    ) -> Result<(Vec<u8>, Vec<Deferred<'v, Val>>), String> {
        let mut out = Vec::new();
        let values: Vec<&Val> = results.iter().collect();
        let deferred = encode_tuple(&self.function.results, &values, &mut out)
            .map_err(|e| format!("{}: a result does not fit its type: {e}", self.what))?;
        Ok((out, deferred))
    }

    async fn send(&self, tx: &mut Outgoing, bytes: &[u8]) -> Result<(), String> {
        tx.write_all(bytes)
            .await
            .map_err(|e| format!("{}: sending the results failed: {e}", self.what))?;
        tx.flush()
            .await
            .map_err(|e| format!("{}: sending the results failed: {e}", self.what))
    }

    /// A plain function: decode, call, encode.
    async fn run_plain(
        &self,
        store: &mut Store<Ctx>,
        func: Func,
        mut rx: Incoming,
        mut tx: Outgoing,
    ) -> Result<(), String> {
        let bytes = read_sync(&mut rx)
            .await
            .map_err(|e| params_error(&self.what, e))?;
        let mut refuse = |ty: &Type, _: AsyncVal| Err(format!("unexpected {ty}"));
        let limits = Limits::DEFAULT.value();
        let (params, _) = decode_tuple(
            &self.params,
            &bytes,
            &limits,
            &mut ToVal {
                asyncs: &mut refuse,
            },
        )
        .map_err(|e| params_error(&self.what, e))?;
        let mut results = vec![Val::Bool(false); self.function.results.len()];
        func.call_async(&mut *store, &params, &mut results)
            .await
            .map_err(|err| self.trapped(&err))?;
        let (bytes, _) = self.encode(&results)?;
        self.send(&mut tx, &bytes).await
    }

    /// An `async func`, or a function passing futures or streams: the
    /// store's event loop runs until the results' streams are sent.
    async fn run_concurrent(
        &self,
        mut store: Store<Ctx>,
        func: Func,
        mut rx: Incoming,
        mut tx: Outgoing,
    ) -> Result<(), String> {
        let bytes = read_sync(&mut rx)
            .await
            .map_err(|e| params_error(&self.what, e))?;
        let limits = Limits::DEFAULT.value();
        let ran = store
            .run_concurrent(async |accessor| -> Result<(), String> {
                let params = accessor.with(|mut access| {
                    let mut asyncs = |ty: &Type, part: AsyncVal| {
                        values::receive(access.as_context_mut(), ty, part, &rx, limits)
                    };
                    decode_tuple(
                        &self.params,
                        &bytes,
                        &limits,
                        &mut ToVal {
                            asyncs: &mut asyncs,
                        },
                    )
                    .map(|(params, _)| params)
                    .map_err(|e| params_error(&self.what, e))
                })?;
                let mut results = vec![Val::Bool(false); self.function.results.len()];
                func.call_concurrent(accessor, &params, &mut results)
                    .await
                    .map_err(|err| self.trapped(&err))?;
                let (bytes, deferred) = self.encode(&results)?;
                let tasks = accessor.with(|mut access| {
                    deferred
                        .iter()
                        .map(|d| {
                            let out = tx
                                .index(&d.path)
                                .map_err(|e| format!("{}: {e:#}", self.what))?;
                            values::send(access.as_context_mut(), d.ty, d.value, out)
                                .map_err(|why| format!("{}: {why}", self.what))
                        })
                        .collect::<Result<Vec<_>, String>>()
                })?;
                self.send(&mut tx, &bytes).await?;
                // The guest writes its streams while the event loop runs.
                for task in tasks {
                    let _ = task.await;
                }
                Ok(())
            })
            .await;
        match ran {
            Ok(outcome) => outcome,
            Err(err) => Err(self.trapped(&err)),
        }
    }
}
