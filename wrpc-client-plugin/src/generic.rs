//! Declared interfaces the plugin does not adapt itself: each function is
//! forwarded as is with `wrpc-runtime-wasmtime`'s polyfill.

use std::collections::HashMap;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use wrpc_runtime_wasmtime::{collect_component_resource_exports, link_item, WrpcView};

use crate::{Router, SetupError};

/// Links the import `instance` of `component` to the router.
///
/// Only resource-free instances are accepted: a remote resource would pin a
/// handle to one server and is never dropped remotely.
pub(crate) fn link<T: WrpcView + 'static>(
    engine: &Engine,
    linker: &mut Linker<T>,
    component: &Component,
    component_name: &str,
    instance: &str,
    item: ComponentItem,
    router: &Router,
) -> Result<(), SetupError> {
    let fail = |reason: String| SetupError::Link {
        component: component_name.to_string(),
        instance: instance.to_string(),
        reason,
    };
    let ComponentItem::ComponentInstance(ty) = &item else {
        return Err(fail("only interface imports can be routed".into()));
    };
    if let Some((name, _)) = ty
        .exports(engine)
        .find(|(_, t)| matches!(t, ComponentItem::Resource(_)))
    {
        return Err(fail(format!(
            "it defines resource `{name}`; only resource-free interfaces are forwarded generically"
        )));
    }
    // The router checks each function's results against its types before
    // they are decoded.
    for (name, export) in ty.exports(engine) {
        if let ComponentItem::ComponentFunc(func) = export {
            if let Some(signature) = crate::schema::signature(&func) {
                router.learn(instance, name, &signature);
            }
        }
    }
    let mut guest_resources = Vec::new();
    collect_component_resource_exports(engine, &component.component_type(), &mut guest_resources);
    link_item(
        engine,
        &mut linker.root(),
        guest_resources,
        HashMap::new(),
        item,
        "",
        instance,
    )
    .map_err(|err| fail(format!("{err:#}")))
}
