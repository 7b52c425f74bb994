//! [`StoreSetup`]: how a workload's stores are made, the one place for a
//! component's WASI context (arguments, environment, directories) and the
//! plugins' state in it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use transport::TraceContext;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::manifest::Workload;
use crate::{Ctx, HostPlugin, Member, Slots, StoreIdentity};

/// A store could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No component of that name in the workload.
    #[error("workload `{workload}` has no component `{component}`")]
    NoComponent {
        /// The workload.
        workload: String,
        /// The name asked for.
        component: String,
    },
    /// A `dirs:` entry cannot be opened.
    #[error(
        "component `{component}`: directory {host} (seen as {guest}) cannot be opened: {reason}"
    )]
    Dir {
        /// The component.
        component: String,
        /// The host path.
        host: String,
        /// The path the component sees.
        guest: String,
        /// Why.
        reason: String,
    },
}

/// What each component's WASI context is made from.
struct ComponentEnv {
    name: Arc<str>,
    env: Vec<(String, String)>,
    dirs: Vec<(PathBuf, String)>,
}

/// Makes the stores of one workload: each component's WASI context, and
/// the state of every plugin serving it.
pub struct StoreSetup {
    workload: Arc<str>,
    namespace: Arc<str>,
    components: HashMap<String, ComponentEnv>,
    plugins: Vec<Arc<dyn HostPlugin>>,
}

impl StoreSetup {
    /// The set-up of `workload`'s stores, with the state of `plugins` (those
    /// that serve it) in each.
    ///
    /// # Errors
    ///
    /// A `dirs:` entry that is not a directory that can be opened.
    pub fn new(workload: &Workload, plugins: Vec<Arc<dyn HostPlugin>>) -> Result<Self, StoreError> {
        let mut components = HashMap::new();
        for spec in &workload.components {
            let env = ComponentEnv {
                name: spec.name.as_str().into(),
                env: spec
                    .config
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect(),
                dirs: spec
                    .dirs
                    .iter()
                    .map(|(guest, host)| (host.clone(), guest.clone()))
                    .collect(),
            };
            for (host, guest) in &env.dirs {
                if let Err(err) = std::fs::read_dir(host) {
                    return Err(StoreError::Dir {
                        component: spec.name.clone(),
                        host: host.display().to_string(),
                        guest: guest.clone(),
                        reason: err.to_string(),
                    });
                }
            }
            components.insert(spec.name.clone(), env);
        }
        Ok(Self {
            workload: workload.name.as_str().into(),
            namespace: workload.namespace.as_str().into(),
            components,
            plugins,
        })
    }

    /// The plugins serving the workload, whose state is in each store.
    pub fn plugins(&self) -> &[Arc<dyn HostPlugin>] {
        &self.plugins
    }

    /// The workload's name.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// `component`'s part of a store: its WASI context and every plugin's
    /// state, its calls continuing `trace`.
    ///
    /// # Errors
    ///
    /// No such component, or one of its directories cannot be opened.
    pub fn member(
        &self,
        component: &str,
        trace: Option<TraceContext>,
    ) -> Result<Member, StoreError> {
        let env = self
            .components
            .get(component)
            .ok_or_else(|| StoreError::NoComponent {
                workload: self.workload.to_string(),
                component: component.to_string(),
            })?;
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdio().arg(&*env.name).envs(&env.env);
        for (host, guest) in &env.dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(|err| StoreError::Dir {
                    component: component.to_string(),
                    host: host.display().to_string(),
                    guest: guest.clone(),
                    reason: err.to_string(),
                })?;
        }
        let identity = StoreIdentity {
            workload: Arc::clone(&self.workload),
            namespace: Arc::clone(&self.namespace),
            component: Arc::clone(&env.name),
            trace,
        };
        let mut slots = Slots::default();
        for plugin in &self.plugins {
            plugin.new_store(&identity, &mut slots);
        }
        Ok(Member::new(identity, wasi.build(), slots))
    }

    /// A store running `component`, yielding at every epoch tick so a
    /// deadline can stop a guest that never waits.
    ///
    /// # Errors
    ///
    /// As [`member`](Self::member).
    pub fn store(
        self: &Arc<Self>,
        engine: &Engine,
        component: &str,
        trace: Option<TraceContext>,
    ) -> Result<Store<Ctx>, StoreError> {
        let member = self.member(component, trace)?;
        let mut store = Store::new(engine, Ctx::new(member, Arc::clone(self)));
        store.epoch_deadline_async_yield_and_update(1);
        Ok(store)
    }
}
