//! `wasi:config/store`: each component's `config` map, as it is in the
//! manifest (the same values are also its environment variables).

use std::sync::Arc;

use host_plugin::{
    Claims, ComponentBinding, Ctx, HostPlugin, InterfaceName, PerComponent, PluginError,
    PluginFuture, Slots, StoreIdentity, WorkloadBinding,
};
use wasmtime::component::HasData;

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/config",
        world: "imports",
    });
}

use bindings::wasi::config::store::{Error, Host};

/// The interface it serves.
const SERVES: &str = "wasi:config/store@0.2.0-draft";

/// One component's configuration.
type Values = Arc<Vec<(String, String)>>;

/// Serves `wasi:config/store` to components whose workload lists it under `host:`.
#[derive(Default)]
pub struct ConfigPlugin {
    workloads: PerComponent<Values>,
}

/// A member's configuration, in its slots.
struct ConfigState(Values);

struct Config;

impl HasData for Config {
    type Data<'a> = ConfigView;
}

struct ConfigView(Option<Values>);

impl Host for ConfigView {
    fn get(&mut self, key: String) -> Result<Option<String>, Error> {
        Ok(self
            .0
            .as_ref()
            .and_then(|values| values.iter().find(|(k, _)| *k == key))
            .map(|(_, v)| v.clone()))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, Error> {
        Ok(self.0.as_deref().cloned().unwrap_or_default())
    }
}

impl HostPlugin for ConfigPlugin {
    fn id(&self) -> &'static str {
        "config"
    }

    fn serves(&self) -> Vec<InterfaceName> {
        vec![SERVES
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name"))]
    }

    fn bind_workload<'a>(
        &'a self,
        workload: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        let serves = self.serves();
        let outcome = workload.claim_host_entries(self.id(), &serves, |entry| entry.no_options());
        if matches!(&outcome, Ok(c) if !c.imports.is_empty()) {
            let values = workload
                .workload
                .components
                .iter()
                .map(|c| {
                    let values = c
                        .config
                        .iter()
                        .map(|(k, v)| (k.clone(), v.0.clone()))
                        .collect();
                    (c.name.clone(), Arc::new(values))
                })
                .collect();
            self.workloads.bind(&workload.workload.name, values);
        }
        Box::pin(async move { outcome })
    }

    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        bindings::wasi::config::store::add_to_linker::<Ctx, Config>(binding.linker, |ctx| {
            ConfigView(ctx.get::<ConfigState>().map(|s| Arc::clone(&s.0)))
        })
        .map_err(|err| PluginError::new(format!("{err:#}")))
    }

    fn new_store(&self, identity: &StoreIdentity, slots: &mut Slots) {
        if let Some(values) = self.workloads.for_store(identity) {
            slots.insert(ConfigState(values));
        }
    }

    fn unbind_workload<'a>(&'a self, workload: &'a str) -> PluginFuture<'a, ()> {
        self.workloads.unbind(workload);
        Box::pin(async {})
    }
}
