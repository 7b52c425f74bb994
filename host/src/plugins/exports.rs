//! Served exports, as a plugin: each `exports:` entry becomes a wRPC server
//! (on the transport crate's listeners) whose calls each run on a fresh
//! store and instance of the component, at most `max_concurrency` at once,
//! each within `timeout`.

mod call;

use core::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use host_plugin::manifest::ExportEntry;
use host_plugin::WarmPool;
use host_plugin::{
    Claim, Claims, HostPlugin, InterfaceName, PluginError, PluginFuture, ResolvedComponent,
    ResolvedWorkload, WorkloadBinding,
};
use tokio::io::AsyncWriteExt as _;
use transport::discovery::{Document, Interface, DESCRIBE, INSTANCE as DISCOVERY, PER_INSTANCE};
use transport::schema::codec::{encode_value, Value};
use transport::schema::Type;
use transport::server::{Call, Registry, ServeOptions, Serving};
use transport::{Endpoint, Limits};
use wasmtime::component::types::ComponentItem;
use wrpc_client_plugin::values;

use call::Exported;

/// Serves what workloads list under `exports:`.
#[derive(Default)]
pub struct ExportsPlugin {
    serving: Mutex<HashMap<String, Vec<Serving>>>,
}

impl ExportsPlugin {
    fn take(&self, workload: &str) -> Vec<Serving> {
        self.serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(workload)
            .unwrap_or_default()
    }

    async fn serve(&self, workload: &Arc<ResolvedWorkload>) -> Result<(), PluginError> {
        let name = &workload.workload.name;
        let mut serving = Vec::new();
        let outcome = async {
            for entry in &workload.workload.exports {
                serving.push(serve_entry(workload, entry).await?);
            }
            Ok::<_, String>(())
        }
        .await;
        for started in &serving {
            for listener in started.listeners() {
                let listener = listener.clone();
                workload
                    .readiness
                    .add_now(format!("export {}", listener.address()), move || {
                        listener.check()
                    });
            }
        }
        self.serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), serving);
        outcome.map_err(PluginError::new)
    }
}

impl HostPlugin for ExportsPlugin {
    fn id(&self) -> &'static str {
        "exports"
    }

    fn bind_workload<'a>(
        &'a self,
        workload: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        let calls = workload
            .workload
            .exports
            .iter()
            .map(|e| Claim {
                interface: e.interface.clone(),
                components: e.component.clone().map(|c| vec![c]),
                label: None,
            })
            .collect();
        Box::pin(async move {
            Ok(Claims {
                imports: Vec::new(),
                calls,
            })
        })
    }

    fn resolved<'a>(
        &'a self,
        workload: &'a Arc<ResolvedWorkload>,
    ) -> PluginFuture<'a, Result<(), PluginError>> {
        Box::pin(self.serve(workload))
    }

    fn drain<'a>(&'a self, workload: &'a str, grace: Duration) -> PluginFuture<'a, ()> {
        let serving = self.take(workload);
        Box::pin(async move {
            futures::future::join_all(serving.into_iter().map(|s| s.drain(grace))).await;
        })
    }

    fn unbind_workload<'a>(&'a self, workload: &'a str) -> PluginFuture<'a, ()> {
        let serving = self.take(workload);
        Box::pin(async move {
            futures::future::join_all(serving.into_iter().map(|s| s.drain(Duration::ZERO))).await;
        })
    }
}

/// Starts serving one entry.
async fn serve_entry(
    workload: &Arc<ResolvedWorkload>,
    entry: &ExportEntry,
) -> Result<Serving, String> {
    let name = &workload.workload.name;
    let (component, instance) = find(workload, entry)?;
    let registry = register(workload, entry, component, &instance)?;
    let mut endpoint = entry.serve.clone();
    if let Endpoint::Nats(nats) = &mut endpoint {
        if nats.queue_group.is_none() {
            nats.queue_group = Some(name.clone());
        }
    }
    let opts = ServeOptions::new(Limits::DEFAULT, entry.max_concurrency);
    let started = Serving::start(
        &[endpoint],
        name,
        Arc::new(registry),
        opts,
        transport::client::NATS_CONNECT_TIMEOUT,
    )
    .await
    .map_err(|err| {
        format!(
            "export `{instance}` of component `{}`: {err:#}",
            component.spec.name
        )
    })?;
    for addr in started.addresses() {
        tracing::info!(export = instance, component = component.spec.name, %addr, "serving");
        // For scripts and tests: where each export is served.
        println!("serving {instance} at {addr}");
    }
    Ok(started)
}

/// The component exporting `entry`'s interface, and the export's full name.
fn find<'a>(
    workload: &'a ResolvedWorkload,
    entry: &ExportEntry,
) -> Result<(&'a ResolvedComponent, String), String> {
    let candidates = workload
        .components
        .iter()
        .filter(|c| entry.component.as_ref().is_none_or(|n| *n == c.spec.name));
    let mut found: Vec<(&ResolvedComponent, String)> = Vec::new();
    let mut exported = Vec::new();
    for c in candidates {
        for (name, item) in c.component.component_type().exports(&workload.engine) {
            if matches!(item.ty, ComponentItem::ComponentInstance(_)) {
                if entry.interface.matches(name) {
                    found.push((c, name.to_string()));
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
            Err(format!(
                "export `{}`: {whose} exports it ({})",
                entry.interface,
                close.unwrap_or_else(|| if exported.is_empty() {
                    "it exports no interface".into()
                } else {
                    format!("exported: {}", exported.join(", "))
                })
            ))
        }
        _ => {
            let names: Vec<String> = found
                .iter()
                .map(|(c, _)| format!("`{}`", c.spec.name))
                .collect();
            Err(format!(
                "export `{}` is exported by components {}: name one with `component:`",
                entry.interface,
                names.join(" and ")
            ))
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
    workload: &Arc<ResolvedWorkload>,
    entry: &ExportEntry,
    component: &ResolvedComponent,
    instance: &str,
) -> Result<Registry, String> {
    let engine = &workload.engine;
    let name = &component.spec.name;
    let ty = component.component.component_type();
    let Some(ComponentItem::ComponentInstance(instance_ty)) = ty
        .exports(engine)
        .find(|(n, _)| *n == instance)
        .map(|(_, item)| item.ty)
    else {
        return Err(format!("component `{name}` does not export `{instance}`"));
    };
    let instance_index = component
        .component
        .get_export_index(None, instance)
        .ok_or_else(|| format!("component `{name}` does not export `{instance}`"))?;
    let mut registry = Registry::new();
    let pool = WarmPool::new(Arc::clone(workload), name);
    for (func_name, item) in instance_ty.exports(engine) {
        let what = format!("`{instance}.{func_name}`");
        let func = match item.ty {
            ComponentItem::ComponentFunc(func) => func,
            ComponentItem::Type(_) => continue,
            ComponentItem::Resource(_) => {
                return Err(format!(
                    "{what} of component `{name}` is a resource: only resource-free interfaces can be served"
                ))
            }
            _ => return Err(format!("{what} of component `{name}` is not a function")),
        };
        let function = values::function_of(&func).map_err(|ty| {
            format!("{what} of component `{name}` uses {ty}, which wRPC cannot carry")
        })?;
        if let Some(why) = values::refusal(&function) {
            return Err(format!(
                "{what} of component `{name}` cannot be served: {why}"
            ));
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
            .ok_or_else(|| format!("{what} is not exported by component `{name}`"))?;
        let exported = Arc::new(Exported {
            what: what.clone(),
            component: name.clone(),
            func: func_index,
            params: function.param_types(),
            function,
            concurrent,
            timeout: entry.timeout,
            pool: Arc::clone(&pool),
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
            .map_err(|err| err.to_string())?;
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
fn describe(registry: &mut Registry, instance: &str, functions: Vec<String>) -> Result<(), String> {
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
    .map_err(|err| err.to_string())?;
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
            .map_err(|err| err.to_string())?;
    }
    Ok(())
}
