//! Proxies: the exporter's resources as the importer holds them.
//!
//! An importer's handle on an exporter's resource is a host resource of
//! type [`ResourceType::host_dynamic`]`(id)`, one id per exported resource
//! type. Its rep indexes the store's [`Proxies`] table, which keeps the
//! exporter's own handle. Passing it back to the exporter passes that
//! handle (lent for a `borrow`, given up for an `own`); dropping it drops
//! the exporter's handle, running the exporter's destructor.

use host_plugin::Ctx;
use wasmtime::component::{
    ComponentExportIndex, Instance, ResourceAny, ResourceDynamic, ResourceType, Val,
};
use wasmtime::StoreContextMut;

use super::{instance_of, Exporter};

/// One proxied resource type of an exporter.
pub(crate) struct ProxyKind {
    /// Where its type is in the exporter's instance.
    pub(crate) index: ComponentExportIndex,
    /// The proxy type id importers see.
    pub(crate) id: u32,
}

/// The exporters' handles held for importers, in one store.
#[derive(Default)]
pub(crate) struct Proxies {
    handles: Vec<Option<ResourceAny>>,
    free: Vec<u32>,
}

impl Proxies {
    fn insert(&mut self, handle: ResourceAny) -> u32 {
        if let Some(rep) = self.free.pop() {
            self.handles[rep as usize] = Some(handle);
            return rep;
        }
        self.handles.push(Some(handle));
        u32::try_from(self.handles.len() - 1).unwrap_or(u32::MAX)
    }

    fn get(&self, rep: u32) -> Option<ResourceAny> {
        self.handles.get(rep as usize).copied().flatten()
    }

    fn remove(&mut self, rep: u32) -> Option<ResourceAny> {
        let handle = self.handles.get_mut(rep as usize)?.take()?;
        self.free.push(rep);
        Some(handle)
    }

    /// Replaces every proxy among `values` (the importer's parameters) by
    /// the exporter's handle it stands for.
    pub(crate) fn to_exporter(
        store: &mut StoreContextMut<'_, Ctx>,
        exporter: &Exporter,
        values: &mut [Val],
    ) -> wasmtime::Result<()> {
        let ids: Vec<u32> = exporter.resources.iter().map(|k| k.id).collect();
        for value in values {
            each_resource(value, &mut |handle| {
                if !ids
                    .iter()
                    .any(|id| handle.ty() == ResourceType::host_dynamic(*id))
                {
                    return Ok(handle);
                }
                let owned = handle.owned();
                let proxy = ResourceDynamic::try_from_resource_any(handle, &mut *store)?;
                let table = store.data_mut().shared(Proxies::default);
                let found = if owned {
                    table.remove(proxy.rep())
                } else {
                    table.get(proxy.rep())
                };
                found.ok_or_else(|| {
                    wasmtime::format_err!(
                        "a handle on a resource of component `{}` that no longer exists",
                        exporter.name
                    )
                })
            })?;
        }
        Ok(())
    }

    /// Replaces every handle on the exporter's own resources among `values`
    /// (its results) by a proxy the importer can hold.
    pub(crate) fn to_importer(
        store: &mut StoreContextMut<'_, Ctx>,
        instance: Instance,
        exporter: &Exporter,
        values: &mut [Val],
    ) -> wasmtime::Result<()> {
        let mut types: Option<Vec<(ResourceType, u32)>> = None;
        for value in values {
            each_resource(value, &mut |handle| {
                let types = types.get_or_insert_with(|| {
                    exporter
                        .resources
                        .iter()
                        .filter_map(|k| Some((instance.get_resource(&mut *store, k.index)?, k.id)))
                        .collect()
                });
                let Some((_, id)) = types.iter().find(|(ty, _)| *ty == handle.ty()) else {
                    // The host's own resources (streams, …) cross as they are.
                    return Ok(handle);
                };
                let rep = store.data_mut().shared(Proxies::default).insert(handle);
                ResourceDynamic::new_own(rep, *id).try_into_resource_any(&mut *store)
            })?;
        }
        Ok(())
    }
}

/// Runs `f` on every resource handle in `value`, replacing it by what `f`
/// returns.
fn each_resource(
    value: &mut Val,
    f: &mut dyn FnMut(ResourceAny) -> wasmtime::Result<ResourceAny>,
) -> wasmtime::Result<()> {
    match value {
        Val::Resource(handle) => *handle = f(*handle)?,
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            for item in items {
                each_resource(item, f)?;
            }
        }
        Val::Map(entries) => {
            for (k, v) in entries {
                each_resource(k, f)?;
                each_resource(v, f)?;
            }
        }
        Val::Record(fields) => {
            for (_, v) in fields {
                each_resource(v, f)?;
            }
        }
        Val::Variant(_, Some(v))
        | Val::Option(Some(v))
        | Val::Result(Ok(Some(v)) | Err(Some(v))) => {
            each_resource(v, f)?;
        }
        _ => {}
    }
    Ok(())
}

/// The importer dropped its proxy `rep`: drops the exporter's handle, in
/// the exporter (its destructor runs as its own member).
pub(crate) async fn drop_proxy(
    mut store: StoreContextMut<'_, Ctx>,
    exporter: &Exporter,
    rep: u32,
) -> wasmtime::Result<()> {
    let Some(handle) = store.data_mut().shared(Proxies::default).remove(rep) else {
        return Ok(());
    };
    let member = store
        .data_mut()
        .shared(host_plugin::LinkedInstances::default)
        .get(&exporter.name)
        .map(|(member, _)| member);
    let _ = instance_of(&mut store, exporter)?;
    let before = member.map(|m| store.data_mut().enter(m));
    let dropped = handle.resource_drop_async(&mut store).await;
    if let Some(before) = before {
        store.data_mut().enter(before);
    }
    dropped
}
