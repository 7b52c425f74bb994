//! What a plugin sees of a workload at each step: while it binds
//! ([`WorkloadBinding`]), while a component's linker is filled
//! ([`ComponentBinding`]), and once it can run ([`ResolvedWorkload`]).

use std::sync::Arc;

use ops::Readiness;
use transport::TraceContext;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store};

use crate::manifest::{ComponentSpec, HostEntry, Workload};
use crate::{Claim, Claims, Ctx, InterfaceName, PluginError, StoreError, StoreSetup};

/// A component of a workload, compiled.
#[derive(Clone)]
pub struct CompiledComponent {
    /// Its manifest entry.
    pub spec: ComponentSpec,
    /// The compiled component.
    pub component: Component,
}

impl CompiledComponent {
    /// Its name within the workload.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Its imports: instance names (`ns:pkg/iface@version`) and types.
    pub fn imports(&self, engine: &Engine) -> Vec<(String, ComponentItem)> {
        self.component
            .component_type()
            .imports(engine)
            .map(|(name, item)| (name.to_string(), item.ty))
            .collect()
    }

    /// Its labelled imports, by label, with the interface each implements
    /// (`import primary: ns:pkg/iface;` in WIT: an import named `primary`
    /// annotated `(implements "ns:pkg/iface@version")`).
    pub fn labelled_imports(&self, engine: &Engine) -> Vec<(String, String)> {
        self.component
            .component_type()
            .imports(engine)
            .filter_map(|(name, item)| Some((name.to_string(), item.implements?.to_string())))
            .collect()
    }

    /// The interface the import `name` is an instance of: the one it
    /// implements, for a labelled import; its own name otherwise.
    pub fn interface_of(&self, engine: &Engine, name: &str) -> String {
        self.labelled_imports(engine)
            .into_iter()
            .find(|(label, _)| label == name)
            .map_or_else(|| name.to_string(), |(_, interface)| interface)
    }

    /// Its exports: names and types.
    pub fn exports(&self, engine: &Engine) -> Vec<(String, ComponentItem)> {
        self.component
            .component_type()
            .exports(engine)
            .map(|(name, item)| (name.to_string(), item.ty))
            .collect()
    }
}

/// A workload being bound: its manifest and its compiled components.
pub struct WorkloadBinding<'a> {
    /// The manifest.
    pub workload: &'a Workload,
    /// The engine everything is compiled for.
    pub engine: &'a Engine,
    /// Every component, in manifest order.
    pub components: &'a [CompiledComponent],
}

impl WorkloadBinding<'_> {
    /// The `host:` entries a plugin with id `plugin` serving `serves` is
    /// asked for (those naming another plugin left out).
    pub fn host_entries<'b>(
        &'b self,
        plugin: &'b str,
        serves: &'b [InterfaceName],
    ) -> impl Iterator<Item = &'b HostEntry> + 'b {
        self.workload.host.iter().filter(move |entry| {
            entry.plugin.as_deref().is_none_or(|p| p == plugin)
                && serves.iter().any(|s| s.overlaps(&entry.interface))
        })
    }

    /// Claims what the `host:` entries for plugin `plugin` (serving
    /// `serves`) ask, each entry's options checked by `check` first.
    ///
    /// # Errors
    ///
    /// The first entry `check` refuses, named.
    pub fn claim_host_entries(
        &self,
        plugin: &str,
        serves: &[InterfaceName],
        check: impl Fn(&HostEntry) -> Result<(), String>,
    ) -> Result<Claims, PluginError> {
        let mut claims = Claims::default();
        for entry in self.host_entries(plugin, serves) {
            check(entry).map_err(|why| {
                PluginError::new(format!("`host:` entry `{}`: {why}", entry.interface))
            })?;
            claims.imports.push(Claim {
                interface: entry.interface.clone(),
                components: entry.components.clone(),
                label: None,
            });
        }
        Ok(claims)
    }

    /// Every import of every component: the component and the instance name.
    pub fn imports(&self) -> impl Iterator<Item = (&CompiledComponent, String)> + '_ {
        self.components.iter().flat_map(move |c| {
            c.imports(self.engine)
                .into_iter()
                .map(move |(name, _)| (c, name))
        })
    }
}

/// One component's linker being filled: a plugin adds the functions of the
/// imports it claimed.
pub struct ComponentBinding<'a> {
    /// The manifest.
    pub workload: &'a Workload,
    /// The engine.
    pub engine: &'a Engine,
    /// The component.
    pub component: &'a CompiledComponent,
    /// Its linker.
    pub linker: &'a mut Linker<Ctx>,
    /// The imports of this component the plugin claimed, as instance names.
    pub claimed: Vec<String>,
}

/// A component linked, ready to instantiate.
#[derive(Clone)]
pub struct ResolvedComponent {
    /// Its manifest entry.
    pub spec: ComponentSpec,
    /// The compiled component.
    pub component: Component,
    /// The component with every import linked.
    pub pre: InstancePre<Ctx>,
    /// The components it calls in process, directly or not, in the order
    /// they are instantiated (each before those that import from it).
    pub links: Vec<String>,
}

/// The instances of a store's components linked in process, by name, with
/// their member positions (see [`Ctx::enter`]).
#[derive(Default)]
pub struct LinkedInstances(Vec<(Arc<str>, usize, Instance)>);

impl LinkedInstances {
    /// The instance of `component` in this store, and its member position.
    pub fn get(&self, component: &str) -> Option<(usize, Instance)> {
        self.0
            .iter()
            .find(|(name, ..)| &**name == component)
            .map(|(_, member, instance)| (*member, *instance))
    }
}

/// A workload whose components are all linked: what a plugin needs to
/// instantiate them and call their exports.
pub struct ResolvedWorkload {
    /// The manifest.
    pub workload: Arc<Workload>,
    /// The engine.
    pub engine: Engine,
    /// Every component, in manifest order.
    pub components: Vec<ResolvedComponent>,
    /// The host's readiness (`/readyz`): add a check for what a plugin
    /// serves or depends on.
    pub readiness: Readiness,
    stores: Arc<StoreSetup>,
}

impl ResolvedWorkload {
    /// The workload's components linked, their stores made by `stores`.
    pub fn new(
        workload: Arc<Workload>,
        engine: Engine,
        components: Vec<ResolvedComponent>,
        readiness: Readiness,
        stores: Arc<StoreSetup>,
    ) -> Self {
        Self {
            workload,
            engine,
            components,
            readiness,
            stores,
        }
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&ResolvedComponent> {
        self.components.iter().find(|c| c.spec.name == name)
    }

    /// A new store for `component`, its calls continuing `trace`: where to
    /// instantiate it (one store per run or per served call, so a trap never
    /// outlives it).
    ///
    /// # Errors
    ///
    /// No such component, or one of its directories cannot be opened.
    pub fn new_store(
        &self,
        component: &str,
        trace: Option<TraceContext>,
    ) -> Result<Store<Ctx>, StoreError> {
        self.stores.store(&self.engine, component, trace)
    }

    /// Instantiates `component` in `store` (made for it by
    /// [`new_store`](Self::new_store)), after the components it calls in
    /// process: one instance of each per store, shared by all its importers.
    ///
    /// # Errors
    ///
    /// An instantiation failed (a trap in a start function, or no instance
    /// left in the pool); the message names the component.
    pub async fn instantiate(
        &self,
        store: &mut Store<Ctx>,
        component: &str,
    ) -> wasmtime::Result<Instance> {
        let resolved = self
            .component(component)
            .ok_or_else(|| wasmtime::format_err!("workload has no component `{component}`"))?;
        for link in &resolved.links {
            if store
                .data_mut()
                .shared(LinkedInstances::default)
                .get(link)
                .is_some()
            {
                continue;
            }
            let linked = self
                .component(link)
                .ok_or_else(|| wasmtime::format_err!("workload has no component `{link}`"))?;
            let member = match store.data().position(link) {
                Some(member) => member,
                None => store.data_mut().join(link)?,
            };
            let before = store.data_mut().enter(member);
            let instance = linked.pre.instantiate_async(&mut *store).await;
            store.data_mut().enter(before);
            let instance = instance
                .map_err(|err| err.context(format!("cannot instantiate component `{link}`")))?;
            store.data_mut().shared(LinkedInstances::default).0.push((
                link.as_str().into(),
                member,
                instance,
            ));
        }
        resolved
            .pre
            .instantiate_async(&mut *store)
            .await
            .map_err(|err| err.context(format!("cannot instantiate component `{component}`")))
    }

    /// How the workload's stores are made.
    pub fn store_setup(&self) -> &Arc<StoreSetup> {
        &self.stores
    }
}
