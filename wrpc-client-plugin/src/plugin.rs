//! [`WrpcPlugin`]: the wRPC client as a host plugin. It serves what a
//! workload declares under `wrpc:`, for the components each entry names.

use std::collections::HashMap;
use std::sync::Arc;

use host_plugin::{
    Claim, Claims, ComponentBinding, Ctx, HostPlugin, PerComponent, PluginError, PluginFuture,
    ResolvedWorkload, Slots, StoreIdentity, WorkloadBinding,
};

use crate::{
    Caller, Declaration, Defaults, PluginView, Router, WorkloadIdentity, WrpcPluginCtx,
    WrpcPluginView,
};

/// Routes what workloads declare under `wrpc:` to extensions.
pub struct WrpcPlugin {
    defaults: Defaults,
    routers: PerComponent<Arc<Router>>,
}

impl WrpcPlugin {
    /// The plugin, with the host's defaults for what declarations leave out.
    pub fn new(defaults: Defaults) -> Self {
        Self {
            defaults,
            routers: PerComponent::default(),
        }
    }

    async fn bind(&self, binding: &WorkloadBinding<'_>) -> Result<Claims, PluginError> {
        let workload = binding.workload;
        if workload.wrpc.is_empty() {
            return Ok(Claims::default());
        }
        check_declarations_used(binding)?;
        let identity = WorkloadIdentity {
            name: workload.name.clone(),
            namespace: workload.namespace.clone(),
        };
        // Components declaring the same entries share a router.
        let mut routers: Vec<(Vec<usize>, Arc<Router>)> = Vec::new();
        let mut routes = HashMap::new();
        for component in binding.components {
            let name = component.name();
            let entries: Vec<usize> = (0..workload.wrpc.len())
                .filter(|&i| {
                    workload.wrpc[i]
                        .components
                        .as_ref()
                        .is_none_or(|cs| cs.iter().any(|c| c == name))
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            let imports: Vec<String> = component
                .imports(binding.engine)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            let router = match routers.iter().find(|(e, _)| *e == entries) {
                Some((_, router)) => Arc::clone(router),
                None => {
                    let declarations: Vec<Declaration> =
                        entries.iter().map(|&i| workload.wrpc[i].clone()).collect();
                    let router = Arc::new(
                        Router::connect(&declarations, &self.defaults, &identity)
                            .await
                            .map_err(PluginError::new)?,
                    );
                    routers.push((entries, Arc::clone(&router)));
                    router
                }
            };
            router
                .check_served(&imports)
                .await
                .map_err(PluginError::new)?;
            routes.insert(name.to_string(), router);
        }
        self.routers.bind(&workload.name, routes);
        Ok(Claims {
            imports: workload
                .wrpc
                .iter()
                .map(|d| Claim {
                    interface: d.interface.clone(),
                    components: d.components.clone(),
                })
                .collect(),
            calls: Vec::new(),
        })
    }
}

/// A declaration that matches no import of the components it names is
/// named, with the closest import: it is often the typo behind an import
/// nothing provides.
fn check_declarations_used(binding: &WorkloadBinding<'_>) -> Result<(), PluginError> {
    for d in &binding.workload.wrpc {
        let imports: Vec<String> = binding
            .components
            .iter()
            .filter(|c| {
                d.components
                    .as_ref()
                    .is_none_or(|cs| cs.iter().any(|n| n == c.name()))
            })
            .flat_map(|c| c.imports(binding.engine).into_iter().map(|(name, _)| name))
            .collect();
        if imports.iter().any(|import| d.interface.matches(import)) {
            continue;
        }
        let whose = match &d.components {
            None => "any component".to_string(),
            Some(cs) => format!("component `{}`", cs.join("`, `")),
        };
        let message = match d.interface.suggest(imports.iter().map(String::as_str)) {
            Some(close) => format!(
                "`wrpc:` entry `{}` matches no import of {whose} (did you mean `{close}`?)",
                d.interface
            ),
            None => format!(
                "`wrpc:` entry `{}` matches no import of {whose} (they import: {})",
                d.interface,
                imports.join(", ")
            ),
        };
        return Err(PluginError::new(message));
    }
    Ok(())
}

impl HostPlugin for WrpcPlugin {
    fn id(&self) -> &'static str {
        "wrpc"
    }

    fn bind_workload<'a>(
        &'a self,
        workload: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        Box::pin(self.bind(workload))
    }

    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        let name = binding.component.name();
        let router = self
            .routers
            .get(&binding.workload.name, name)
            .ok_or_else(|| PluginError::new(format!("no routes for component `{name}`")))?;
        crate::add_to_linker(
            binding.linker,
            binding.engine,
            &binding.component.component,
            name,
            &router,
        )
        .map_err(PluginError::new)
    }

    fn new_store(&self, identity: &StoreIdentity, slots: &mut Slots) {
        let Some(router) = self.routers.for_store(identity) else {
            return;
        };
        slots.insert(WrpcPluginCtx::new(
            router,
            Caller {
                workload: identity.workload.to_string(),
                namespace: identity.namespace.to_string(),
                component: identity.component.to_string(),
                trace: identity.trace,
            },
        ));
    }

    fn resolved<'a>(
        &'a self,
        workload: &'a Arc<ResolvedWorkload>,
    ) -> PluginFuture<'a, Result<(), PluginError>> {
        Box::pin(async move {
            let mut seen: Vec<*const Router> = Vec::new();
            for (_, router) in self.routers.workload(&workload.workload.name) {
                if seen.contains(&Arc::as_ptr(&router)) {
                    continue;
                }
                seen.push(Arc::as_ptr(&router));
                for (interface, target) in router.targets() {
                    if matches!(target.endpoint(), transport::Endpoint::Nats(_)) {
                        let target = target.clone();
                        workload.readiness.add_now(
                            format!("route {interface} via {}", target.endpoint()),
                            move || target.check(),
                        );
                    }
                }
            }
            Ok(())
        })
    }

    fn unbind_workload<'a>(&'a self, workload: &'a str) -> PluginFuture<'a, ()> {
        self.routers.unbind(workload);
        Box::pin(async {})
    }
}

/// The store data of every host: the plugin's state is in the running
/// member's slots (put there by [`WrpcPlugin`]'s `new_store`). Should a
/// routed function run while a member without routes is current, its calls
/// fail as not routed.
impl WrpcPluginView for Ctx {
    fn wrpc_plugin(&mut self) -> PluginView<'_> {
        let (ctx, table) = if self.get::<WrpcPluginCtx>().is_some() {
            self.with_table::<WrpcPluginCtx>()
                .unwrap_or_else(|| unreachable!("checked above"))
        } else {
            self.shared_with_table(|| {
                WrpcPluginCtx::new(Arc::new(Router::unrouted()), Caller::default())
            })
        };
        PluginView { ctx, table }
    }
}
