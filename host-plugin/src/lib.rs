//! What the host and its plugins share.
//!
//! A *plugin* ([`HostPlugin`]) serves some of a workload's imports in
//! process, or calls its components' exports: the wRPC client (imports
//! declared under `wrpc:`), served exports (`exports:`), the built-in
//! logging, configuration, keyvalue and blobstore (`host:`), and whatever
//! an embedder adds. The host drives every plugin through the same steps
//! (see [`HostPlugin`]), with the workload's [`manifest`] and, for each
//! store it makes, one [`Ctx`] whose slots hold each plugin's state.
#![deny(missing_docs)]

mod binding;
mod ctx;
mod per_component;
mod plugin;
pub mod pool;
mod stores;
mod trap;

pub use binding::{
    CompiledComponent, ComponentBinding, LinkedInstances, ResolvedComponent, ResolvedWorkload,
    WorkloadBinding,
};
pub use ctx::{Ctx, Member, Slots, StoreIdentity};
pub use host_manifest as manifest;
pub use host_manifest::{InterfaceName, InterfaceNameError};
pub use per_component::PerComponent;
pub use plugin::{Claim, Claims, HostPlugin, PluginError, PluginFuture};
pub use pool::WarmPool;
pub use stores::{StoreError, StoreSetup};
pub use trap::describe_trap;
pub use wasmtime;
