//! Declared interfaces the plugin does not adapt: each function is
//! forwarded as is, its values through the one codec
//! ([`transport::schema::codec`]) with Wasmtime's `Val`s as their face.
//!
//! A plain WIT function is linked with `func_new_async`; an `async func`,
//! or any function whose types hold a future or stream (WASI 0.3 guests),
//! with `func_new_concurrent`, so the guest's other tasks run while the
//! call is out and its streams flow both ways.

use std::sync::Arc;

use bytes::Bytes;
use transport::async_values::read_sync;
use transport::schema::codec::{decode_tuple, encode_tuple, Deferred};
use transport::schema::val::{AsyncVal, ToVal};
use transport::schema::{Function, Type, ValueLimits};
use transport::{Caller, Incoming, Outgoing};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Accessor, Linker, Val};
use wasmtime::{AsContextMut, Engine, StoreContextMut};
use wrpc_transport::{Index as _, Invoke as _};

use crate::values::{self, function_of, refusal};
use crate::{Router, SetupError, WrpcPluginView};

/// One forwarded function.
struct Import {
    /// The instance called on the wire.
    instance: String,
    /// The router of a labelled import's own route (else the store's).
    router: Option<Arc<Router>>,
    name: String,
    function: Function,
    /// The parameter types, for the encoder.
    params: Vec<Type>,
    /// The async paths of its results, as the transport registers them.
    result_paths: Arc<[Box<[Option<usize>]>]>,
}

/// Links the import `instance` of a component to the router.
///
/// Only resource-free instances are accepted: a remote resource would pin a
/// handle to one server and is never dropped remotely.
pub(crate) fn link<T: WrpcPluginView + 'static>(
    engine: &Engine,
    linker: &mut Linker<T>,
    component_name: &str,
    instance: &str,
    item: &ComponentItem,
    router: &Router,
) -> Result<(), SetupError> {
    link_as(
        engine,
        linker,
        component_name,
        Forwarded {
            import: instance,
            instance,
            router: None,
        },
        item,
        router,
    )
}

/// What one import is linked as.
pub(crate) struct Forwarded<'a> {
    /// The import's name in the component (a label, for labelled imports).
    pub(crate) import: &'a str,
    /// The instance called on the wire.
    pub(crate) instance: &'a str,
    /// The router its calls take, when not the store's.
    pub(crate) router: Option<Arc<Router>>,
}

/// Links an import, under its own name, to calls of `forwarded.instance`.
pub(crate) fn link_as<T: WrpcPluginView + 'static>(
    engine: &Engine,
    linker: &mut Linker<T>,
    component_name: &str,
    forwarded: Forwarded<'_>,
    item: &ComponentItem,
    router: &Router,
) -> Result<(), SetupError> {
    let instance = forwarded.instance;
    let fail = |reason: String| SetupError::Link {
        component: component_name.to_string(),
        instance: forwarded.import.to_string(),
        reason,
    };
    let ComponentItem::ComponentInstance(ty) = item else {
        return Err(fail("only interface imports can be routed".into()));
    };
    if let Some((name, _)) = ty
        .exports(engine)
        .find(|(_, e)| matches!(e.ty, ComponentItem::Resource(_)))
    {
        return Err(fail(format!(
            "it defines resource `{name}`; only resource-free interfaces are forwarded generically"
        )));
    }
    let mut imports = Vec::new();
    for (name, export) in ty.exports(engine) {
        let ComponentItem::ComponentFunc(func) = &export.ty else {
            continue;
        };
        let function = function_of(func)
            .map_err(|what| fail(format!("`{name}` uses {what}, which wRPC cannot carry")))?;
        if let Some(why) = refusal(&function) {
            return Err(fail(format!("`{name}`: {why}")));
        }
        // The router checks each function's results before they are decoded.
        router.learn(instance, name, function.signature());
        let result_paths = function.signature().result_paths().into();
        imports.push(Import {
            instance: instance.to_string(),
            router: forwarded.router.clone(),
            name: name.to_string(),
            params: function.param_types(),
            function,
            result_paths,
        });
    }
    let mut root = linker
        .instance(forwarded.import)
        .map_err(|e| fail(format!("{e:#}")))?;
    for import in imports {
        let import = Arc::new(import);
        let name = import.name.clone();
        let concurrent = import.function.is_async
            || import
                .function
                .params
                .iter()
                .map(|(_, t)| t)
                .chain(&import.function.results)
                .any(Type::is_async);
        let defined = if concurrent {
            root.func_new_concurrent(&name, move |accessor, _, params, results| {
                let import = Arc::clone(&import);
                Box::pin(async move { import.call_concurrent(accessor, params, results).await })
            })
        } else {
            root.func_new_async(&name, move |store, _, params, results| {
                let import = Arc::clone(&import);
                Box::new(async move { import.call(store, params, results).await })
            })
        };
        defined.map_err(|e| fail(format!("`{name}`: {e:#}")))?;
    }
    Ok(())
}

impl Import {
    /// The router and caller of a call: the import's own router, or the
    /// store's plugin state's.
    fn route_of<T: WrpcPluginView>(&self, data: &mut T) -> (Arc<Router>, Arc<Caller>) {
        let view = data.wrpc_plugin();
        let router = self.router.as_ref().unwrap_or(&view.ctx.router);
        (Arc::clone(router), Arc::clone(&view.ctx.caller))
    }

    /// A transport failure as the guest's trap: one line naming the
    /// function, the target and the reason (the deadline, if it passed).
    fn trap(&self, router: &Router, err: impl Into<anyhow::Error>) -> wasmtime::Error {
        let err = err.into();
        let call = router.call_error(&self.instance, &self.instance, &self.name, &err);
        wasmtime::format_err!("{call}")
    }

    /// Encodes the parameters and starts the call; returns the guest's
    /// futures and streams among them with the call's streams.
    async fn start<'v>(
        &'v self,
        router: &Router,
        caller: Arc<Caller>,
        params: &'v [Val],
    ) -> wasmtime::Result<(Vec<Deferred<'v, Val>>, Outgoing, Incoming)> {
        let mut buf = Vec::new();
        let values: Vec<&Val> = params.iter().collect();
        let deferred = encode_tuple(&self.params, &values, &mut buf).map_err(|e| {
            wasmtime::format_err!(
                "`{}.{}`: a parameter does not fit its type: {e}",
                self.instance,
                self.name
            )
        })?;
        let (tx, rx) = router
            .invoke(
                caller,
                &self.instance,
                &self.name,
                Bytes::from(buf),
                &self.result_paths[..],
            )
            .await
            .map_err(|e| self.trap(router, e))?;
        Ok((deferred, tx, rx))
    }

    /// Reads the synchronous results and decodes them, making their futures
    /// and streams with `asyncs`.
    async fn finish(&self, router: &Router, rx: &mut Incoming) -> wasmtime::Result<Vec<u8>> {
        read_sync(rx).await.map_err(|e| self.trap(router, e))
    }

    fn decode(
        &self,
        router: &Router,
        bytes: &[u8],
        limits: &ValueLimits,
        asyncs: &mut (dyn FnMut(&Type, AsyncVal) -> Result<Val, String> + Send),
    ) -> wasmtime::Result<Vec<Val>> {
        let (values, _) =
            decode_tuple(&self.function.results, bytes, limits, &mut ToVal { asyncs })
                .map_err(|e| self.trap(router, anyhow::anyhow!("malformed results: {e}")))?;
        Ok(values)
    }

    /// A call of a plain function (no futures or streams).
    async fn call<T: WrpcPluginView>(
        &self,
        mut store: StoreContextMut<'_, T>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let (router, caller) = self.route_of(store.data_mut());
        let (_, _tx, mut rx) = self.start(&router, caller, params).await?;
        let bytes = self.finish(&router, &mut rx).await?;
        let limits = router.limits().value();
        let mut refuse = |ty: &Type, _: AsyncVal| Err(format!("unexpected {ty}"));
        let values = self.decode(&router, &bytes, &limits, &mut refuse)?;
        for (slot, value) in results.iter_mut().zip(values) {
            *slot = value;
        }
        Ok(())
    }

    /// A call of an `async func` or of a function passing futures or
    /// streams: the guest runs on while it is out.
    async fn call_concurrent<T: WrpcPluginView + 'static>(
        &self,
        accessor: &Accessor<T>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let (router, caller) = accessor.with(|mut access| self.route_of(access.data_mut()));
        let (deferred, tx, mut rx) = self.start(&router, caller, params).await?;
        accessor.with(|mut access| {
            for d in &deferred {
                let out = tx.index(&d.path).map_err(|e| self.trap(&router, e))?;
                // The guest's event loop runs on while the call is out:
                // the task ends on its own once the guest's side is done.
                let _task =
                    values::send(access.as_context_mut(), d.ty, d.value, out).map_err(|why| {
                        wasmtime::format_err!("`{}.{}`: {why}", self.instance, self.name)
                    })?;
            }
            wasmtime::Result::<()>::Ok(())
        })?;
        let bytes = self.finish(&router, &mut rx).await?;
        let limits = router.limits().value();
        let values = accessor.with(|mut access| {
            let mut asyncs = |ty: &Type, part: AsyncVal| {
                values::receive(access.as_context_mut(), ty, part, &rx, limits)
            };
            self.decode(&router, &bytes, &limits, &mut asyncs)
        })?;
        for (slot, value) in results.iter_mut().zip(values) {
            *slot = value;
        }
        // The parameters' own streams keep the call's outgoing side open.
        drop(tx);
        Ok(())
    }
}
