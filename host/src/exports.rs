//! Serving the interfaces a workload's components export: each `exports:`
//! entry becomes a wRPC server (on the transport crate's listeners) whose
//! calls each run on a fresh instance of the component, at most
//! `max_concurrency` at once, each within `timeout`.

use core::time::Duration;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use tokio::io::AsyncWriteExt as _;
use transport::async_values::read_sync;
use transport::discovery::{Document, Interface, DESCRIBE, INSTANCE as DISCOVERY, PER_INSTANCE};
use transport::schema::codec::{decode_tuple, encode_tuple, encode_value, Deferred, Value};
use transport::schema::val::{AsyncVal, ToVal};
use transport::schema::{Function, Type};
use transport::server::{Call, ListenerState, Registry, ServeOptions, Serving};
use transport::{Endpoint, Incoming, Limits, Outgoing};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ComponentExportIndex, Func, InstancePre, Val};
use wasmtime::{AsContextMut as _, Engine, Store};
use wrpc_client_plugin::values;
use wrpc_client_plugin::{Caller, InterfaceName, Router};
use wrpc_transport::Index as _;

use crate::runtime::{describe_trap, new_store, Loaded, State};
use crate::workload::{ExportEntry, Scalar};

/// How long connecting to a NATS server to serve on may take.
const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One exported function, ready to run a call.
struct Exported {
    /// `` `instance.func` `` of component `name`, for errors.
    what: String,
    component: String,
    pre: InstancePre<State>,
    func: ComponentExportIndex,
    function: Function,
    /// The parameter types, for the decoder.
    params: Vec<Type>,
    /// Whether it runs concurrently: an `async func`, or futures or
    /// streams among its values.
    concurrent: bool,
    timeout: Duration,
    engine: Engine,
    router: Arc<Router>,
    caller: Caller,
    config: Arc<BTreeMap<String, Scalar>>,
}

/// A call's parameters decoded, or why they could not be.
fn params_error(what: &str, err: impl core::fmt::Display) -> String {
    format!("{what}: the parameters do not decode: {err}")
}

impl Exported {
    /// Runs one call on a fresh instance; `Err` is sent to the caller.
    async fn call(&self, call: Call) -> Result<(), String> {
        let Call { cx, rx, tx } = call;
        // The component's own calls continue the caller's trace.
        let caller = Caller {
            trace: cx.trace(),
            ..self.caller.clone()
        };
        let mut store = new_store(
            &self.engine,
            &self.component,
            &self.config,
            Arc::clone(&self.router),
            caller,
        );
        let run = async {
            let instance = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|err| {
                    format!("cannot instantiate component `{}`: {err:#}", self.component)
                })?;
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
        store: &mut Store<State>,
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
        mut store: Store<State>,
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

/// The exports being served, until [`Exports::drain`].
pub struct Exports {
    serving: Vec<Serving>,
}

impl Exports {
    /// Serves every `exports:` entry of the workload.
    ///
    /// # Errors
    ///
    /// Fails, in one line, when no component (or more than one, unnamed)
    /// exports an entry's interface, when a function cannot travel over
    /// wRPC, or when an address cannot be served on.
    pub async fn start(
        engine: &Engine,
        workload: &str,
        namespace: &str,
        entries: &[ExportEntry],
        loaded: &[Loaded],
        router: &Arc<Router>,
    ) -> anyhow::Result<Self> {
        let mut serving = Vec::new();
        for entry in entries {
            let (component, instance) = find(engine, entry, loaded)?;
            let registry = register(
                engine, workload, namespace, entry, component, &instance, router,
            )?;
            let mut endpoint = entry.serve.clone();
            if let Endpoint::Nats(nats) = &mut endpoint {
                if nats.queue_group.is_none() {
                    nats.queue_group = Some(workload.to_string());
                }
            }
            let opts = ServeOptions::new(Limits::DEFAULT, entry.max_concurrency);
            let started = Serving::start(
                &[endpoint],
                workload,
                Arc::new(registry),
                opts,
                NATS_CONNECT_TIMEOUT,
            )
            .await
            .with_context(|| {
                format!("export `{instance}` of component `{}`", component.spec.name)
            })?;
            for addr in started.addresses() {
                tracing::info!(export = instance, component = component.spec.name, %addr, "serving");
                // For scripts and tests: where each export is served.
                println!("serving {instance} at {addr}");
            }
            serving.push(started);
        }
        Ok(Self { serving })
    }

    /// Every listener of every export, for readiness.
    pub fn listeners(&self) -> impl Iterator<Item = &ListenerState> {
        self.serving.iter().flat_map(Serving::listeners)
    }

    /// Whether the workload serves nothing.
    pub fn is_empty(&self) -> bool {
        self.serving.is_empty()
    }

    /// Stops accepting calls and lets those in flight finish within `grace`.
    pub async fn drain(self, grace: Duration) {
        futures::future::join_all(self.serving.into_iter().map(|s| s.drain(grace))).await;
    }
}

/// The component exporting `entry`'s interface, and the export's full name.
fn find<'a>(
    engine: &Engine,
    entry: &ExportEntry,
    loaded: &'a [Loaded],
) -> anyhow::Result<(&'a Loaded, String)> {
    let candidates = loaded
        .iter()
        .filter(|l| entry.component.as_ref().is_none_or(|c| *c == l.spec.name));
    let mut found: Vec<(&Loaded, String)> = Vec::new();
    let mut exported = Vec::new();
    for l in candidates {
        for (name, item) in l.component.component_type().exports(engine) {
            if matches!(item.ty, ComponentItem::ComponentInstance(_)) {
                if entry.interface.matches(name) {
                    found.push((l, name.to_string()));
                } else {
                    exported.push(name.to_string());
                }
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let whose = entry.component.as_ref().map_or_else(
                || "no component".to_string(),
                |c| format!("component `{c}`"),
            );
            let close = suggest(&entry.interface, &exported);
            bail!(
                "export `{}`: {whose} exports it ({})",
                entry.interface,
                close.unwrap_or_else(|| if exported.is_empty() {
                    "it exports no interface".into()
                } else {
                    format!("exported: {}", exported.join(", "))
                })
            )
        }
        _ => {
            let names: Vec<String> = found
                .iter()
                .map(|(l, _)| format!("`{}`", l.spec.name))
                .collect();
            bail!(
                "export `{}` is exported by components {}: name one with `component:`",
                entry.interface,
                names.join(" and ")
            )
        }
    }
}

fn suggest(wanted: &InterfaceName, exported: &[String]) -> Option<String> {
    wanted
        .suggest(exported.iter().map(String::as_str))
        .map(|close| format!("did you mean `{close}`?"))
}

/// A registry serving every function of `instance` from `component`.
fn register(
    engine: &Engine,
    workload: &str,
    namespace: &str,
    entry: &ExportEntry,
    component: &Loaded,
    instance: &str,
    router: &Arc<Router>,
) -> anyhow::Result<Registry> {
    let name = &component.spec.name;
    let ty = component.component.component_type();
    let Some(ComponentItem::ComponentInstance(instance_ty)) = ty
        .exports(engine)
        .find(|(n, _)| *n == instance)
        .map(|(_, item)| item.ty)
    else {
        bail!("component `{name}` does not export `{instance}`");
    };
    let instance_index = component
        .component
        .get_export_index(None, instance)
        .with_context(|| format!("component `{name}` does not export `{instance}`"))?;
    let caller = Caller {
        workload: workload.to_string(),
        namespace: namespace.to_string(),
        component: name.clone(),
        trace: None,
    };
    let config = Arc::new(component.spec.config.clone());
    let mut registry = Registry::new();
    for (func_name, item) in instance_ty.exports(engine) {
        let what = format!("`{instance}.{func_name}`");
        let func = match item.ty {
            ComponentItem::ComponentFunc(func) => func,
            ComponentItem::Type(_) => continue,
            ComponentItem::Resource(_) => bail!(
                "{what} of component `{name}` is a resource: only resource-free interfaces can be served"
            ),
            _ => bail!("{what} of component `{name}` is not a function"),
        };
        let function = values::function_of(&func).map_err(|ty| {
            anyhow::anyhow!("{what} of component `{name}` uses {ty}, which wRPC cannot carry")
        })?;
        if let Some(why) = values::refusal(&function) {
            bail!("{what} of component `{name}` cannot be served: {why}");
        }
        let signature = function.signature().clone();
        let concurrent = function.is_async
            || function
                .params
                .iter()
                .map(|(_, t)| t)
                .chain(&function.results)
                .any(Type::is_async);
        let func_index = component
            .component
            .get_export_index(Some(&instance_index), func_name)
            .with_context(|| format!("{what} is not exported by component `{name}`"))?;
        let exported = Arc::new(Exported {
            what: what.clone(),
            component: name.clone(),
            pre: component.pre.clone(),
            func: func_index,
            params: function.param_types(),
            function,
            concurrent,
            timeout: entry.timeout,
            engine: engine.clone(),
            router: Arc::clone(router),
            caller: caller.clone(),
            config: Arc::clone(&config),
        });
        registry
            .insert(
                instance,
                func_name,
                &signature,
                Arc::new(move |call| {
                    let exported = Arc::clone(&exported);
                    Box::pin(async move { exported.call(call).await })
                }),
            )
            .map_err(|err| anyhow::anyhow!("{err}"))?;
    }
    let served = registry
        .functions()
        .into_iter()
        .filter(|(i, _)| *i == instance)
        .map(|(_, f)| f.to_string())
        .collect();
    describe(&mut registry, instance, served)?;
    Ok(registry)
}

/// Answers discovery for `instance` as an sdk extension does (its
/// `wrpc-ext:describe`, and `describe` of the discovery instance), so a host
/// routing to this export checks it at start like any extension.
fn describe(registry: &mut Registry, instance: &str, functions: Vec<String>) -> anyhow::Result<()> {
    let document = Document {
        name: "host".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        interfaces: vec![Interface::new(instance, functions)],
        ..Document::default()
    };
    let mut answer = Vec::new();
    encode_value(
        &Type::String,
        &Value::String(document.to_json()),
        &mut answer,
    )
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    let answer: Arc<[u8]> = answer.into();
    let signature = transport::schema::Signature {
        params: Vec::new(),
        results: vec![transport::schema::WireType::String],
    };
    for (instance, func) in [(instance, PER_INSTANCE), (DISCOVERY, DESCRIBE)] {
        let answer = Arc::clone(&answer);
        registry
            .insert(
                instance,
                func,
                &signature,
                Arc::new(move |call: Call| {
                    let answer = Arc::clone(&answer);
                    Box::pin(async move {
                        let Call { mut tx, .. } = call;
                        tx.write_all(&answer).await.map_err(|e| e.to_string())?;
                        tx.flush().await.map_err(|e| e.to_string())
                    })
                }),
            )
            .map_err(|err| anyhow::anyhow!("{err}"))?;
    }
    Ok(())
}
