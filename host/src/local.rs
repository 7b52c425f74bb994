//! In-process links: an import of one component served by the export of
//! another component of the same workload, in the same store.
//!
//! Each function of the imported instance becomes a trampoline in the
//! importer's linker that calls the exporter's instance in the same store
//! (instantiated there before the importer; see
//! [`ResolvedWorkload::instantiate`](host_plugin::ResolvedWorkload::instantiate)).
//! While the exporter runs it is the store's current member, so its WASI
//! calls see its own arguments, environment and directories.
//!
//! The exporter's own resources reach the importer as proxies: a resource
//! type of the host's (one per exported resource) whose handles index the
//! exporter's handles kept in the store ([`proxy`]). Handles of the host's
//! own resources (`wasi:io` streams, …) cross unchanged: both components
//! import them from the same host.

mod proxy;

use std::collections::HashMap;
use std::sync::Arc;

use host_plugin::{Ctx, LinkedInstances};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Linker, ResourceType, Val};
use wasmtime::Engine;

use proxy::{Proxies, ProxyKind};

/// The resource types of a workload's exporters as its importers see
/// them: one host type per exported resource, shared by every importer.
#[derive(Default)]
pub(crate) struct ProxyTypes {
    ids: HashMap<(String, String, String), u32>,
    next: u32,
}

impl ProxyTypes {
    /// Gives each of `resources`, defined by the instance `instance` of
    /// `exporter`, its proxy type, once.
    pub(crate) fn register(&mut self, exporter: &str, instance: &str, resources: &[String]) {
        for name in resources {
            let key = (exporter.to_string(), instance.to_string(), name.clone());
            if !self.ids.contains_key(&key) {
                self.ids.insert(key, self.next);
                self.next += 1;
            }
        }
    }

    /// The proxy type id of `resource` of `instance` exported by `exporter`.
    fn id(&self, exporter: &str, instance: &str, resource: &str) -> Option<u32> {
        self.ids
            .get(&(
                exporter.to_string(),
                instance.to_string(),
                resource.to_string(),
            ))
            .copied()
    }

    /// Every proxied resource of `exporter`: instance, resource, proxy id.
    fn of(&self, exporter: &str) -> Vec<(String, String, u32)> {
        self.ids
            .iter()
            .filter(|((e, ..), _)| e == exporter)
            .map(|((_, i, r), id)| (i.clone(), r.clone(), *id))
            .collect()
    }
}

/// What a trampoline needs to reach the exporter.
pub(crate) struct Exporter {
    /// The exporting component's name.
    name: Arc<str>,
    /// The exporting component.
    component: Component,
    /// Its proxied resources: where to find each type in its instance, and
    /// the proxy id importers see.
    resources: Arc<[ProxyKind]>,
}

impl Exporter {
    /// The exporter `name`, compiled as `component`, once every import
    /// linked to it is [registered](ProxyTypes::register).
    pub(crate) fn new(
        name: &str,
        component: &Component,
        types: &ProxyTypes,
    ) -> Result<Arc<Self>, String> {
        let mut resources = Vec::new();
        for (instance, resource, id) in types.of(name) {
            let index = export_index(component, &instance, &resource).ok_or_else(|| {
                format!("component `{name}` does not export `{instance}.{resource}`")
            })?;
            resources.push(ProxyKind { index, id });
        }
        Ok(Arc::new(Self {
            name: name.into(),
            component: component.clone(),
            resources: resources.into(),
        }))
    }
}

fn export_index(component: &Component, instance: &str, item: &str) -> Option<ComponentExportIndex> {
    let (_, instance) = component.get_export(None, instance)?;
    component.get_export_index(Some(&instance), item)
}

/// Links the import `instance` of `importer` (typed `item`, defining
/// `resources`) to the export of the same name of `exporter`, its
/// resources [registered](ProxyTypes::register) in `types`. Resources the
/// instance only uses from another import are left to that import.
///
/// # Errors
///
/// A function the link cannot carry (an `async func`, futures or streams),
/// or the linker refused a definition; in one line naming both components.
pub(crate) fn link(
    engine: &Engine,
    linker: &mut Linker<Ctx>,
    importer: &str,
    (instance, item, defined): (&str, &ComponentItem, &[String]),
    exporter: &Arc<Exporter>,
    types: &ProxyTypes,
) -> Result<(), String> {
    let exporter_name = &*exporter.name;
    let fail = |why: String| {
        format!(
            "component `{importer}`: import `{instance}` from component `{exporter_name}`: {why}"
        )
    };
    let ComponentItem::ComponentInstance(ty) = item else {
        return Err(fail("only interface imports can be linked".into()));
    };
    let exports: Vec<(String, ComponentItem)> = ty
        .exports(engine)
        .map(|(name, e)| (name.to_string(), e.ty))
        .collect();
    let mut resources = Vec::new();
    for name in defined {
        let id = types
            .id(exporter_name, instance, name)
            .ok_or_else(|| fail(format!("resource `{name}` has no proxy type")))?;
        resources.push((name.clone(), id));
    }
    let mut root = linker
        .instance(instance)
        .map_err(|e| fail(format!("{e:#}")))?;
    for (name, id) in resources {
        let exporter = Arc::clone(exporter);
        root.resource_async(&name, ResourceType::host_dynamic(id), move |store, rep| {
            let exporter = Arc::clone(&exporter);
            Box::new(async move { proxy::drop_proxy(store, &exporter, rep).await })
        })
        .map_err(|e| fail(format!("resource `{name}`: {e:#}")))?;
    }
    let component = &exporter.component;
    let (_, instance_index) = component
        .get_export(None, instance)
        .ok_or_else(|| fail("the exporter does not export it".into()))?;
    for (name, item) in exports {
        let ComponentItem::ComponentFunc(func) = item else {
            continue;
        };
        if func.async_() {
            return Err(fail(format!(
                "`{name}` is an `async func`; in-process links carry plain functions (route it under `wrpc:`)"
            )));
        }
        let func_index = component
            .get_export_index(Some(&instance_index), &name)
            .ok_or_else(|| fail(format!("the exporter does not export `{name}`")))?;
        let call = Arc::new(Trampoline {
            what: format!("`{instance}.{name}`"),
            exporter: Arc::clone(exporter),
            func: func_index,
        });
        root.func_new_async(&name, move |store, _, params, results| {
            let call = Arc::clone(&call);
            Box::new(async move { call.call(store, params, results).await })
        })
        .map_err(|e| fail(format!("`{name}`: {e:#}")))?;
    }
    Ok(())
}

/// One linked function.
struct Trampoline {
    /// `` `instance.func` ``, for errors.
    what: String,
    exporter: Arc<Exporter>,
    func: ComponentExportIndex,
}

impl Trampoline {
    async fn call(
        &self,
        mut store: wasmtime::StoreContextMut<'_, Ctx>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let (member, instance) = store
            .data_mut()
            .shared(LinkedInstances::default)
            .get(&self.exporter.name)
            .ok_or_else(|| {
                wasmtime::format_err!(
                    "component `{}` is not instantiated in this store",
                    self.exporter.name
                )
            })?;
        let func = instance.get_func(&mut store, self.func).ok_or_else(|| {
            wasmtime::format_err!(
                "{} is not a function of `{}`",
                self.what,
                self.exporter.name
            )
        })?;
        // Only an exporter with resources has handles to swap for proxies.
        let proxied = !self.exporter.resources.is_empty();
        let mut swapped = Vec::new();
        if proxied {
            swapped = params.to_vec();
            Proxies::to_exporter(&mut store, &self.exporter, &mut swapped)?;
        }
        let params = if proxied { &swapped[..] } else { params };
        let before = store.data_mut().enter(member);
        let outcome = func.call_async(&mut store, params, results).await;
        store.data_mut().enter(before);
        outcome.map_err(|err| {
            err.context(format!(
                "component `{}` failed in {}",
                self.exporter.name, self.what
            ))
        })?;
        if proxied {
            Proxies::to_importer(&mut store, instance, &self.exporter, results)?;
        }
        Ok(())
    }
}

/// The exporter's instance in this store.
fn instance_of(
    store: &mut wasmtime::StoreContextMut<'_, Ctx>,
    exporter: &Exporter,
) -> wasmtime::Result<wasmtime::component::Instance> {
    store
        .data_mut()
        .shared(LinkedInstances::default)
        .get(&exporter.name)
        .map(|(_, instance)| instance)
        .ok_or_else(|| wasmtime::format_err!("component `{}` is not instantiated", exporter.name))
}
