//! Binding a workload: compile its components, let every plugin claim what
//! it serves, decide where each import comes from, link each component
//! (exporters first), and hand the linked workload to the plugins.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use host_plugin::manifest::Workload;
use host_plugin::{
    Claims, CompiledComponent, ComponentBinding, Ctx, HostPlugin, ResolvedComponent,
    ResolvedWorkload, StoreSetup, WorkloadBinding,
};
use ops::Readiness;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use crate::imports::{self, Claimed, Plan, Provider};
use crate::local::{self, Exporter, ProxyTypes};
use crate::sources::Sources;

/// A plugin asked to bind a workload, with what it claimed (often nothing).
pub(crate) struct Bound {
    pub(crate) plugin: Arc<dyn HostPlugin>,
    pub(crate) claims: Claims,
}

/// Compiles every component (or takes it from the compiled cache); those
/// loaded from one file or image are compiled once.
pub(crate) async fn compile(
    engine: &Engine,
    sources: &Sources,
    workload: &Workload,
) -> anyhow::Result<Vec<CompiledComponent>> {
    let mut by_source: HashMap<(Option<PathBuf>, Option<String>), Component> = HashMap::new();
    let mut compiled = Vec::new();
    for spec in &workload.components {
        let key = (spec.file.clone(), spec.image.clone());
        let component = match by_source.get(&key) {
            Some(component) => component.clone(),
            None => {
                let component = sources.component(engine, spec).await?;
                by_source.insert(key, component.clone());
                component
            }
        };
        compiled.push(CompiledComponent {
            spec: spec.clone(),
            component,
        });
    }
    Ok(compiled)
}

/// Asks every plugin what it serves of the workload: returns each with its
/// claims (empty for most), and keeps every plugin asked in `asked` (to
/// unbind, whatever happens).
pub(crate) async fn claim(
    plugins: &[Arc<dyn HostPlugin>],
    binding: &WorkloadBinding<'_>,
    asked: &mut Vec<Arc<dyn HostPlugin>>,
) -> anyhow::Result<Vec<Bound>> {
    let mut bound = Vec::new();
    for plugin in plugins {
        asked.push(Arc::clone(plugin));
        let claims = plugin
            .bind_workload(binding)
            .await
            .with_context(|| format!("plugin `{}`", plugin.id()))?;
        bound.push(Bound {
            plugin: Arc::clone(plugin),
            claims,
        });
    }
    check_conflicts(binding, &bound)?;
    check_host_entries(binding, plugins, &bound)?;
    Ok(bound)
}

/// Two plugins claiming one import of one component stop the workload.
fn check_conflicts(binding: &WorkloadBinding<'_>, bound: &[Bound]) -> anyhow::Result<()> {
    for (i, a) in bound.iter().enumerate() {
        for b in &bound[i + 1..] {
            for ca in &a.claims.imports {
                for cb in &b.claims.imports {
                    if !ca.interface.overlaps(&cb.interface) || !ca.labels_meet(cb) {
                        continue;
                    }
                    let shared = binding.components.iter().map(|c| c.name()).find(|name| {
                        [ca, cb].iter().all(|c| {
                            c.components
                                .as_ref()
                                .is_none_or(|cs| cs.iter().any(|n| n == name))
                        })
                    });
                    if let Some(component) = shared {
                        anyhow::bail!(
                            "plugins `{}` and `{}` both claim `{}` for component `{component}` (as `{}` and `{}`): serve it one way, or give the entries `components:` that do not meet",
                            a.plugin.id(),
                            b.plugin.id(),
                            if ca.interface.interface.is_some() { &ca.interface } else { &cb.interface },
                            ca.interface,
                            cb.interface,
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// A `host:` entry no plugin took is named, with the plugins there are.
fn check_host_entries(
    binding: &WorkloadBinding<'_>,
    plugins: &[Arc<dyn HostPlugin>],
    bound: &[Bound],
) -> anyhow::Result<()> {
    for entry in &binding.workload.host {
        let taken = bound.iter().any(|b| {
            b.claims
                .imports
                .iter()
                .any(|c| c.interface.overlaps(&entry.interface))
        });
        if taken {
            continue;
        }
        let ids: Vec<String> = plugins
            .iter()
            .map(|p| {
                let serves: Vec<String> = p.serves().iter().map(ToString::to_string).collect();
                if serves.is_empty() {
                    format!("`{}`", p.id())
                } else {
                    format!("`{}` ({})", p.id(), serves.join(", "))
                }
            })
            .collect();
        anyhow::bail!(
            "`host:` entry `{}`: no plugin on this host serves it (plugins: {})",
            entry.interface,
            if ids.is_empty() {
                "none".into()
            } else {
                ids.join(", ")
            }
        );
    }
    Ok(())
}

/// Decides where each import comes from.
pub(crate) fn plan(binding: &WorkloadBinding<'_>, bound: &[Bound]) -> anyhow::Result<Plan> {
    let serves: Vec<_> = bound.iter().map(|b| b.plugin.serves()).collect();
    let claimed: Vec<Claimed<'_>> = bound
        .iter()
        .zip(&serves)
        .map(|(b, serves)| Claimed {
            id: b.plugin.id(),
            claims: &b.claims,
            serves,
        })
        .collect();
    imports::plan(
        binding.engine,
        binding.workload,
        binding.components,
        &claimed,
    )
    .map_err(anyhow::Error::msg)
}

/// Links every component, exporters first, and returns the workload ready
/// to run.
pub(crate) fn link(
    binding: &WorkloadBinding<'_>,
    bound: &[Bound],
    plan: &Plan,
    readiness: Readiness,
) -> anyhow::Result<ResolvedWorkload> {
    let engine = binding.engine;
    let components = binding.components;
    let mut types = ProxyTypes::default();
    for import in plan.imports.iter().flatten() {
        if let Provider::Local(exporter) = import.provider {
            types.register(components[exporter].name(), &import.name, &import.resources);
        }
    }
    let mut exporters: HashMap<usize, Arc<Exporter>> = HashMap::new();
    let mut resolved: Vec<Option<ResolvedComponent>> = vec![None; components.len()];
    for &index in &plan.order {
        let compiled = &components[index];
        let name = compiled.name();
        let mut linker: Linker<Ctx> = Linker::new(engine);
        // Each component gets the WASI it imports: 0.2, 0.3, or both.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        for b in bound {
            let claimed: Vec<String> = plan.imports[index]
                .iter()
                .filter(|i| matches!(i.provider, Provider::Plugin(p) if Arc::ptr_eq(&bound[p].plugin, &b.plugin)))
                .map(|i| i.name.clone())
                .collect();
            if claimed.is_empty() {
                continue;
            }
            let mut cb = ComponentBinding {
                workload: binding.workload,
                engine,
                component: compiled,
                linker: &mut linker,
                claimed,
            };
            b.plugin
                .bind_component(&mut cb)
                .with_context(|| format!("plugin `{}`: component `{name}`", b.plugin.id()))?;
        }
        for import in &plan.imports[index] {
            match import.provider {
                Provider::Local(exporter) => {
                    let exporter = match exporters.get(&exporter) {
                        Some(e) => Arc::clone(e),
                        None => {
                            let e = Exporter::new(
                                components[exporter].name(),
                                &components[exporter].component,
                                &types,
                            )
                            .map_err(anyhow::Error::msg)?;
                            exporters.insert(exporter, Arc::clone(&e));
                            e
                        }
                    };
                    local::link(
                        engine,
                        &mut linker,
                        name,
                        (&import.name, &import.item, &import.resources),
                        &exporter,
                        &types,
                    )
                    .map_err(anyhow::Error::msg)?;
                }
                Provider::TypesOnly => {
                    let _ = linker.instance(&import.name);
                }
                Provider::Wasi | Provider::Plugin(_) => {}
            }
        }
        let pre = linker
            .instantiate_pre(&compiled.component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{name}` cannot be linked"))?;
        resolved[index] = Some(ResolvedComponent {
            spec: compiled.spec.clone(),
            component: compiled.component.clone(),
            pre,
            links: plan
                .links(index)
                .into_iter()
                .map(|i| components[i].name().to_string())
                .collect(),
        });
    }
    // Only the plugins serving the workload take part in its stores.
    let plugins: Vec<Arc<dyn HostPlugin>> = bound
        .iter()
        .filter(|b| b.claims != Claims::default())
        .map(|b| Arc::clone(&b.plugin))
        .collect();
    let stores = StoreSetup::new(binding.workload, plugins)?;
    Ok(ResolvedWorkload::new(
        Arc::new(binding.workload.clone()),
        engine.clone(),
        resolved.into_iter().flatten().collect(),
        readiness,
        Arc::new(stores),
    ))
}
