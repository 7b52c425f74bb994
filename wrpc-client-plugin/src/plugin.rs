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
    routers: PerComponent<Routers>,
}

/// One component's routers: its unlabelled `wrpc:` entries', and one per
/// label its labelled entries name.
#[derive(Clone)]
struct Routers {
    unlabelled: Arc<Router>,
    labelled: Arc<Vec<(String, Arc<Router>)>>,
}

impl Routers {
    /// The router a labelled import takes: its label's, else the
    /// unlabelled entries' if one of them routes the interface.
    fn for_label(&self, label: &str, interface: &str) -> Option<Arc<Router>> {
        self.labelled
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, router)| Arc::clone(router))
            .or_else(|| {
                self.unlabelled
                    .routes(interface)
                    .then(|| Arc::clone(&self.unlabelled))
            })
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Router>> {
        std::iter::once(&self.unlabelled).chain(self.labelled.iter().map(|(_, r)| r))
    }
}

impl WrpcPlugin {
    /// The plugin, with the host's defaults for what declarations leave out.
    pub fn new(defaults: Defaults) -> Self {
        Self {
            defaults,
            routers: PerComponent::default(),
        }
    }

    /// The router of `entries` (indexes into the workload's `wrpc:`),
    /// shared by every component of the workload with the same entries.
    async fn router(
        &self,
        binding: &WorkloadBinding<'_>,
        made: &mut Vec<(Vec<usize>, Arc<Router>)>,
        entries: Vec<usize>,
    ) -> Result<Arc<Router>, PluginError> {
        if let Some((_, router)) = made.iter().find(|(e, _)| *e == entries) {
            return Ok(Arc::clone(router));
        }
        let workload = binding.workload;
        let identity = WorkloadIdentity {
            name: workload.name.clone(),
            namespace: workload.namespace.clone(),
        };
        let declarations: Vec<Declaration> =
            entries.iter().map(|&i| workload.wrpc[i].clone()).collect();
        let router = Arc::new(
            Router::connect(&declarations, &self.defaults, &identity)
                .await
                .map_err(PluginError::new)?,
        );
        made.push((entries, Arc::clone(&router)));
        Ok(router)
    }

    async fn bind(&self, binding: &WorkloadBinding<'_>) -> Result<Claims, PluginError> {
        let workload = binding.workload;
        if workload.wrpc.is_empty() {
            return Ok(Claims::default());
        }
        check_declarations_used(binding)?;
        // Components declaring the same entries share a router.
        let mut made: Vec<(Vec<usize>, Arc<Router>)> = Vec::new();
        let mut routes = HashMap::new();
        for component in binding.components {
            let name = component.name();
            let covering: Vec<usize> = (0..workload.wrpc.len())
                .filter(|&i| workload.wrpc[i].covers_component(name))
                .collect();
            if covering.is_empty() {
                continue;
            }
            let (unlabelled, labelled): (Vec<usize>, Vec<usize>) = covering
                .into_iter()
                .partition(|&i| workload.wrpc[i].label.is_none());
            let unlabelled = if unlabelled.is_empty() {
                Arc::new(Router::unrouted())
            } else {
                self.router(binding, &mut made, unlabelled).await?
            };
            let mut labels: Vec<(String, Arc<Router>)> = Vec::new();
            for &i in &labelled {
                let label = workload.wrpc[i].label.clone().unwrap_or_default();
                if labels.iter().any(|(l, _)| *l == label) {
                    continue;
                }
                let entries = labelled
                    .iter()
                    .copied()
                    .filter(|&j| workload.wrpc[j].label.as_deref() == Some(&label))
                    .collect();
                labels.push((label, self.router(binding, &mut made, entries).await?));
            }
            let routers = Routers {
                unlabelled,
                labelled: Arc::new(labels),
            };
            // Each router is asked about the instances its calls will reach:
            // a labelled import's is the interface it implements.
            let mut asked: Vec<(Arc<Router>, Vec<String>)> = vec![(
                Arc::clone(&routers.unlabelled),
                component
                    .imports(binding.engine)
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect(),
            )];
            for (label, interface) in component.labelled_imports(binding.engine) {
                if let Some(router) = routers.for_label(&label, &interface) {
                    match asked.iter_mut().find(|(r, _)| Arc::ptr_eq(r, &router)) {
                        Some((_, instances)) => instances.push(interface),
                        None => asked.push((router, vec![interface])),
                    }
                }
            }
            for (router, instances) in &asked {
                router
                    .check_served(instances)
                    .await
                    .map_err(PluginError::new)?;
            }
            routes.insert(name.to_string(), routers);
        }
        self.routers.bind(&workload.name, routes);
        Ok(Claims {
            imports: workload
                .wrpc
                .iter()
                .map(|d| Claim {
                    interface: d.interface.clone(),
                    components: d.components.clone(),
                    label: d.label.clone(),
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
        let covered: Vec<_> = binding
            .components
            .iter()
            .filter(|c| d.covers_component(c.name()))
            .collect();
        let labelled: Vec<(String, String)> = covered
            .iter()
            .flat_map(|c| c.labelled_imports(binding.engine))
            .collect();
        if let Some(label) = &d.label {
            if labelled
                .iter()
                .any(|(l, interface)| l == label && d.interface.matches(interface))
            {
                continue;
            }
            let whose = match &d.components {
                None => "any component".to_string(),
                Some(cs) => format!("component `{}`", cs.join("`, `")),
            };
            let there: Vec<String> = labelled
                .iter()
                .map(|(l, interface)| format!("{l} ({interface})"))
                .collect();
            return Err(PluginError::new(format!(
                "`wrpc:` entry `{}` with label `{label}` matches no labelled import of {whose} (labelled imports: {})",
                d.interface,
                if there.is_empty() { "none".to_string() } else { there.join(", ") }
            )));
        }
        let imports: Vec<String> = covered
            .iter()
            .flat_map(|c| c.imports(binding.engine).into_iter().map(|(name, _)| name))
            .chain(labelled.into_iter().map(|(_, interface)| interface))
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
        let routers = self
            .routers
            .get(&binding.workload.name, name)
            .ok_or_else(|| PluginError::new(format!("no routes for component `{name}`")))?;
        crate::add_to_linker(
            binding.linker,
            binding.engine,
            &binding.component.component,
            name,
            &routers.unlabelled,
        )
        .map_err(PluginError::new)?;
        crate::add_labelled_to_linker(
            binding.linker,
            binding.engine,
            &binding.component.component,
            name,
            |label, interface| routers.for_label(label, interface),
        )
        .map_err(PluginError::new)
    }

    fn new_store(&self, identity: &StoreIdentity, slots: &mut Slots) {
        let Some(routers) = self.routers.for_store(identity) else {
            return;
        };
        slots.insert(WrpcPluginCtx::new(
            routers.unlabelled,
            Caller {
                workload: identity.workload.to_string(),
                namespace: identity.namespace.to_string(),
                component: identity.component.to_string(),
                trace: identity.trace,
            },
        ));
    }

    fn retrace(&self, trace: Option<transport::TraceContext>, slots: &mut Slots) {
        if let Some(ctx) = slots.get::<WrpcPluginCtx>() {
            ctx.set_trace(trace);
        }
    }

    fn resolved<'a>(
        &'a self,
        workload: &'a Arc<ResolvedWorkload>,
    ) -> PluginFuture<'a, Result<(), PluginError>> {
        Box::pin(async move {
            let mut seen: Vec<*const Router> = Vec::new();
            let all = self.routers.workload(&workload.workload.name);
            for router in all.iter().flat_map(|(_, routers)| routers.all()) {
                if seen.contains(&Arc::as_ptr(router)) {
                    continue;
                }
                seen.push(Arc::as_ptr(router));
                for (interface, target) in router.targets() {
                    if matches!(target.endpoint(), transport::Endpoint::Nats(_)) {
                        let target = target.clone();
                        workload.readiness.add_now_for(
                            &workload.workload.name,
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
