//! Serving the interfaces a workload's components export: each `exports:`
//! entry becomes a wRPC server (on the transport crate's listeners) whose
//! calls each run on a fresh instance of the component, at most
//! `max_concurrency` at once, each within `timeout`.

use core::time::Duration;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use transport::server::{Call, ListenerState, Registry, ServeOptions, Serving};
use transport::{Endpoint, Limits};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{ComponentExportIndex, InstancePre};
use wasmtime::Engine;
use wrpc_client_plugin::{Caller, InterfaceName, Router};

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
    params: Vec<Type>,
    results: Vec<Type>,
    timeout: Duration,
    engine: Engine,
    router: Arc<Router>,
    caller: Caller,
    config: Arc<BTreeMap<String, Scalar>>,
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
            wrpc_runtime_wasmtime::call(
                &mut store,
                rx,
                tx,
                &[],
                &HashMap::new(),
                &[],
                self.params.iter(),
                &self.results,
                func,
            )
            .await
            .map_err(|err| match err {
                wrpc_runtime_wasmtime::CallError::Call(err) => format!(
                    "component `{}` trapped in {}: {}",
                    self.component,
                    self.what,
                    // wRPC's own context adds nothing to the trap.
                    describe_trap(&err).trim_start_matches("failed to call function: ")
                ),
                other => format!("{}: {other:#}", self.what),
            })
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
            if matches!(item, ComponentItem::ComponentInstance(_)) {
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
        .map(|(_, item)| item)
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
        let func = match item {
            ComponentItem::ComponentFunc(func) => func,
            ComponentItem::Type(_) => continue,
            ComponentItem::Resource(_) => bail!(
                "{what} of component `{name}` is a resource: only resource-free interfaces can be served"
            ),
            _ => bail!("{what} of component `{name}` is not a function"),
        };
        let signature = wrpc_client_plugin::signature(&func).with_context(|| {
            format!("{what} of component `{name}` has a type wRPC cannot carry")
        })?;
        let func_index = component
            .component
            .get_export_index(Some(&instance_index), func_name)
            .with_context(|| format!("{what} is not exported by component `{name}`"))?;
        let exported = Arc::new(Exported {
            what: what.clone(),
            component: name.clone(),
            pre: component.pre.clone(),
            func: func_index,
            params: func.params().map(|(_, t)| t).collect(),
            results: func.results().collect(),
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
    Ok(registry)
}
