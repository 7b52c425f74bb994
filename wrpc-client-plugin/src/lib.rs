//! The host plugin that routes a workload's declared imports to wRPC extensions.
//!
//! A workload lists the interfaces it wants served remotely (`wrpc:` in its
//! manifest). For each, the plugin links the component's import to a
//! [`Router`], which sends every call to the declared [`Target`] (NATS or TCP)
//! with a deadline. Nothing else is routed.
//!
//! - `wasi:keyvalue@0.2.0-draft` is adapted here: the bucket resource stays in
//!   the host and each call travels as flat `wrpc:keyvalue@0.2.0-draft`. A
//!   failed call reaches the guest as `error::other` naming the interface,
//!   the function and the target, never as a trap.
//! - `wasi:blobstore@0.2.0-draft` likewise travels as `wrpc:blobstore@0.2.0`:
//!   containers, object bodies and name listings are host resources, bodies
//!   stream both ways in bounded memory, and failures are the interface's
//!   error strings.
//! - `wasmcloud:messaging/consumer@0.2.0` travels as itself; adapting it
//!   makes a failed `publish` or `request` the function's `err(string)`.
//! - Any other declared interface without resources is forwarded as is, its
//!   values through the one codec of `transport::schema`: plain functions,
//!   `async func`s and their futures and streams (WASI 0.3 guests).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use wasmtime::component::{Component, Linker, ResourceTable};
//! # use wrpc_client_plugin::*;
//! struct State { plugin: WrpcPluginCtx, table: ResourceTable }
//! impl WrpcPluginView for State {
//!     fn wrpc_plugin(&mut self) -> PluginView<'_> {
//!         PluginView { ctx: &mut self.plugin, table: &mut self.table }
//!     }
//! }
//! # async fn f(engine: wasmtime::Engine, component: Component) -> anyhow::Result<()> {
//! let decl = Declaration {
//!     target: Some("tcp://127.0.0.1:7761".parse()?),
//!     ..Declaration::new("wasi:keyvalue".parse()?)
//! };
//! let workload = WorkloadIdentity { name: "demo".into(), namespace: "default".into() };
//! let router = Arc::new(Router::connect(&[decl], &Defaults::default(), &workload).await?);
//! router.check_served(&["wasi:keyvalue/store@0.2.0-draft".to_string()]).await?;
//! let mut linker = Linker::<State>::new(&engine);
//! add_to_linker(&mut linker, &engine, &component, "api", &router)?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod adapted;
mod blobstore;
mod discovery;
mod error;
mod generic;
mod keyvalue;
mod messaging;
mod plugin;
mod router;
pub mod values;

use std::sync::Arc;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::Engine;

pub use error::{CallError, SetupError};
pub use host_plugin::manifest::Declaration;
pub use host_plugin::{InterfaceName, InterfaceNameError};
pub use plugin::WrpcPlugin;
pub use router::{Defaults, Router, WorkloadIdentity};
pub use transport::{headers, Caller, Endpoint, Incoming, Outgoing};
pub use values::function_of;

/// The plugin's per-store state.
pub struct WrpcPluginCtx {
    router: Arc<Router>,
    caller: Arc<Caller>,
}

impl WrpcPluginCtx {
    /// State for one component instance calling through `router` as `caller`.
    pub fn new(router: Arc<Router>, caller: Caller) -> Self {
        Self {
            router,
            caller: Arc::new(caller),
        }
    }

    /// The router calls go through.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Who calls.
    pub fn caller(&self) -> &Arc<Caller> {
        &self.caller
    }

    /// Calls from now on continue `trace`.
    pub fn set_trace(&mut self, trace: Option<transport::TraceContext>) {
        let mut caller = (*self.caller).clone();
        caller.trace = trace;
        self.caller = Arc::new(caller);
    }
}

/// What the plugin borrows from a store's data.
pub struct PluginView<'a> {
    /// The plugin's state.
    pub ctx: &'a mut WrpcPluginCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

/// Implemented by a host's store data to give the plugin its state.
pub trait WrpcPluginView: Send {
    /// Borrows the plugin's state and the resource table.
    fn wrpc_plugin(&mut self) -> PluginView<'_>;
}

/// Links every import of `component` that `router` routes into `linker`.
///
/// # Errors
///
/// [`SetupError::Link`] if a routed import cannot be served: an adapted
/// package at a version the plugin does not implement, a generic interface
/// with resources, or a linker conflict.
pub fn add_to_linker<T>(
    linker: &mut Linker<T>,
    engine: &Engine,
    component: &Component,
    component_name: &str,
    router: &Router,
) -> Result<(), SetupError>
where
    T: WrpcPluginView + 'static,
{
    let mut linked: Vec<adapted::Kind> = Vec::new();
    for (instance, import) in component.component_type().imports(engine) {
        if !router.routes(instance) {
            continue;
        }
        let fail = |reason: String| SetupError::Link {
            component: component_name.to_string(),
            instance: instance.to_string(),
            reason,
        };
        if let Some(adapted) = adapted::for_import(instance) {
            if !instance.ends_with(&format!("@{}", adapted.version)) {
                return Err(fail(format!(
                    "the plugin implements {}@{} only",
                    adapted.guest, adapted.version
                )));
            }
            if !linked.contains(&adapted.kind) {
                match adapted.kind {
                    adapted::Kind::Keyvalue => keyvalue::add_to_linker(linker),
                    adapted::Kind::Blobstore => blobstore::add_to_linker(linker),
                    adapted::Kind::Messaging => messaging::add_to_linker(linker),
                }
                .map_err(|err| fail(format!("{err:#}")))?;
                linked.push(adapted.kind);
            }
            continue;
        }
        generic::link(engine, linker, component_name, instance, &import.ty, router)?;
    }
    Ok(())
}

/// Links the labelled imports of `component` (`import label: ns:pkg/iface;`
/// in WIT) that `route` gives a router for, by label and interface: each is
/// forwarded as calls of the interface it implements, through that router.
///
/// # Errors
///
/// [`SetupError::Link`] naming the label: an adapted interface (its adapter
/// serves the unlabelled import only), an interface with resources, or a
/// linker conflict.
pub fn add_labelled_to_linker<T>(
    linker: &mut Linker<T>,
    engine: &Engine,
    component: &Component,
    component_name: &str,
    route: impl Fn(&str, &str) -> Option<Arc<Router>>,
) -> Result<(), SetupError>
where
    T: WrpcPluginView + 'static,
{
    for (label, import) in component.component_type().imports(engine) {
        let Some(interface) = import.implements else {
            continue;
        };
        let Some(router) = route(label, interface) else {
            continue;
        };
        if let Some(adapted) = adapted::for_import(interface) {
            return Err(SetupError::Link {
                component: component_name.to_string(),
                instance: label.to_string(),
                reason: format!(
                    "it implements `{interface}`, and the plugin adapts `{}` for the unlabelled import only: import it without a label",
                    adapted.guest
                ),
            });
        }
        let forwarded = generic::Forwarded {
            import: label,
            instance: interface,
            router: Some(Arc::clone(&router)),
        };
        generic::link_as(
            engine,
            linker,
            component_name,
            forwarded,
            &import.ty,
            &router,
        )?;
    }
    Ok(())
}
