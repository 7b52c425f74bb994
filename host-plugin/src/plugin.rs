//! [`HostPlugin`]: how a plugin takes part in running a workload.

use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

use std::sync::Arc;

use transport::TraceContext;

use crate::{
    ComponentBinding, InterfaceName, ResolvedWorkload, Slots, StoreIdentity, WorkloadBinding,
};

/// A boxed future a plugin returns (plugins are used as trait objects).
pub type PluginFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a plugin refused a workload or failed: its own error, shown as is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PluginError(Box<dyn std::error::Error + Send + Sync>);

impl PluginError {
    /// A plugin's error (its message is what the user reads).
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }

    /// The plugin's own error, to match on.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// What a plugin serves to a workload's components, and which of their
/// exports it calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Imports it provides.
    pub imports: Vec<Claim>,
    /// Exports it calls (serves to the outside, or drives).
    pub calls: Vec<Claim>,
}

/// An interface claimed, for every component or for some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The interface or package.
    pub interface: InterfaceName,
    /// Which components; `None` for all of them.
    pub components: Option<Vec<String>>,
    /// Only the labelled imports with this label; `None` for the
    /// unlabelled import and every labelled one.
    pub label: Option<String>,
}

impl Claim {
    /// `interface` for every component.
    pub fn all(interface: InterfaceName) -> Self {
        Self {
            interface,
            components: None,
            label: None,
        }
    }

    /// Whether the unlabelled import (or export) `instance` of `component`
    /// falls under it.
    pub fn covers(&self, component: &str, instance: &str) -> bool {
        self.label.is_none() && self.covers_instance(component, instance)
    }

    /// Whether the import of `component` labelled `label`, implementing
    /// `interface`, falls under it.
    pub fn covers_labelled(&self, component: &str, label: &str, interface: &str) -> bool {
        self.label.as_deref().is_none_or(|l| l == label)
            && self.covers_instance(component, interface)
    }

    /// Whether two claims can meet on one import: neither is for one label,
    /// or both are for the same.
    pub fn labels_meet(&self, other: &Claim) -> bool {
        match (&self.label, &other.label) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    fn covers_instance(&self, component: &str, instance: &str) -> bool {
        self.interface.matches(instance)
            && self
                .components
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == component))
    }
}

/// A host plugin: built in (the wRPC client, served exports, logging,
/// configuration, the embedded keyvalue and blobstore) or an embedder's.
///
/// The host calls it in this order: [`start`](Self::start) once; for each
/// workload [`bind_workload`](Self::bind_workload) (it says what it will
/// serve), [`bind_component`](Self::bind_component) for each component with
/// an import it claimed, [`new_store`](Self::new_store) for every store made
/// for the workload from then on, [`resolved`](Self::resolved) once every
/// component is linked, then [`drain`](Self::drain) and
/// [`unbind_workload`](Self::unbind_workload) when it stops (unbind also when
/// a later step of binding failed); [`stop`](Self::stop) with the host.
pub trait HostPlugin: Send + Sync + 'static {
    /// A short name, unique among a host's plugins (`wrpc`, `logging`, …),
    /// used in messages and to pick a plugin for a `host:` entry.
    fn id(&self) -> &'static str;

    /// The interfaces it can serve, whether a workload asks or not: what the
    /// host says it supports, and what `host:` entries may name.
    fn serves(&self) -> Vec<InterfaceName> {
        Vec::new()
    }

    /// Starts with the host.
    ///
    /// # Errors
    ///
    /// The plugin cannot run; the host does not start.
    fn start(&self) -> PluginFuture<'_, Result<(), PluginError>> {
        Box::pin(async { Ok(()) })
    }

    /// A workload is binding: check what the manifest asks of this plugin,
    /// make what it needs, and say what it will serve. Nothing is claimed by
    /// default.
    ///
    /// # Errors
    ///
    /// The workload's configuration is unusable; it does not start.
    fn bind_workload<'a>(
        &'a self,
        workload: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        let _ = workload;
        Box::pin(async { Ok(Claims::default()) })
    }

    /// Adds the functions of the imports it claimed to one component's linker.
    ///
    /// # Errors
    ///
    /// An import cannot be served as the component imports it.
    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        let _ = binding;
        Ok(())
    }

    /// A component of a bound workload enters a store (made for it, or
    /// joined to call it in process): put the plugin's state for it in its
    /// slots, where its host functions find it ([`Ctx::get`](crate::Ctx::get)).
    fn new_store(&self, identity: &StoreIdentity, slots: &mut Slots) {
        let _ = (identity, slots);
    }

    /// A store made ahead of the request it serves (a warm pool's) learns
    /// the trace its calls continue: update what `new_store` put in `slots`
    /// that carries the trace. Nothing by default.
    fn retrace(&self, trace: Option<TraceContext>, slots: &mut Slots) {
        let _ = (trace, slots);
    }

    /// Every component is linked: what it needs to instantiate components
    /// and call their exports is in `workload`.
    ///
    /// # Errors
    ///
    /// What it serves cannot start (an address in use, …); the workload
    /// does not start.
    fn resolved<'a>(
        &'a self,
        workload: &'a Arc<ResolvedWorkload>,
    ) -> PluginFuture<'a, Result<(), PluginError>> {
        let _ = workload;
        Box::pin(async { Ok(()) })
    }

    /// The workload is stopping: take no new work for it, and let what runs
    /// finish within `grace`.
    fn drain<'a>(&'a self, workload: &'a str, grace: Duration) -> PluginFuture<'a, ()> {
        let _ = (workload, grace);
        Box::pin(async {})
    }

    /// Releases everything kept for the workload (also after a binding that
    /// failed midway: it may never have been resolved).
    fn unbind_workload<'a>(&'a self, workload: &'a str) -> PluginFuture<'a, ()> {
        let _ = workload;
        Box::pin(async {})
    }

    /// Stops with the host.
    fn stop(&self) -> PluginFuture<'_, ()> {
        Box::pin(async {})
    }
}
