//! The `http` host plugin: components exporting `wasi:http/incoming-handler`
//! (WASI 0.2) or `wasi:http/handler` (WASI 0.3) answer requests on the
//! host's HTTP listener, on their workload's `http:` route; every
//! component's `wasi:http` imports are served in process, its outgoing
//! requests going only to the hosts a `host:` entry allows:
//!
//! ```yaml
//! http:
//!   hosts: [counter.example]
//!   path: /api
//! host:
//!   - interface: wasi:http/outgoing-handler
//!     allow: [api.example.com, "127.0.0.1:8080", "*.svc.cluster.local"]
//! ```
#![deny(missing_docs)]

mod body;
mod handler;
mod link;
mod outgoing;
mod routes;
mod server;

use core::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use host_plugin::manifest::HttpRoute;
use host_plugin::{
    manifest::HostEntry, Claim, Claims, ComponentBinding, HostPlugin, InterfaceName, PluginError,
    PluginFuture, ResolvedWorkload, Slots, StoreIdentity, WorkloadBinding,
};
use wasmtime_wasi_http::handler::ProxyHandler;

use handler::{Kind, WorkloadHandler};
pub use outgoing::{Allowed, Outgoing, OUTGOING_TIMEOUT};
use routes::Route;
pub use server::{BindError, HttpLimits, HttpServer};

/// The interfaces a component may import from this plugin.
const IMPORTS: [&str; 3] = [
    "wasi:http/types",
    "wasi:http/outgoing-handler",
    "wasi:http/client",
];

fn name(s: &str) -> InterfaceName {
    s.parse()
        .unwrap_or_else(|_| unreachable!("a valid interface name"))
}

/// Where a workload's handler is, found at binding.
struct Pending {
    route: HttpRoute,
    component: String,
    kind: Kind,
}

/// The `http` plugin (see the crate's documentation).
pub struct HttpPlugin {
    server: Option<Arc<HttpServer>>,
    grace: Duration,
    outgoing: Mutex<HashMap<String, Outgoing>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl HttpPlugin {
    /// The plugin, answering requests on `server` (none: workloads with
    /// `http:` are refused; outgoing requests are still served).
    pub fn new(server: Option<Arc<HttpServer>>) -> Self {
        Self {
            server,
            grace: Duration::from_secs(10),
            outgoing: Mutex::default(),
            pending: Mutex::default(),
        }
    }

    /// How long, when the host stops, open connections may finish.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The listener, if the host has one.
    pub fn server(&self) -> Option<&Arc<HttpServer>> {
        self.server.as_ref()
    }

    fn bind(&self, binding: &WorkloadBinding<'_>) -> Result<Claims, PluginError> {
        let workload = binding.workload;
        let allowed = std::cell::RefCell::new(Vec::new());
        let serves = self.serves();
        let mut claims = binding.claim_host_entries(self.id(), &serves, |entry| {
            allowed.borrow_mut().extend(allow_option(entry)?);
            Ok(())
        })?;
        let allowed = allowed.into_inner();
        // Every other `wasi:http` import is served too (outgoing requests
        // refused unless allowed), except what is routed elsewhere.
        for import in IMPORTS.map(name) {
            let elsewhere = workload.wrpc.iter().any(|d| d.interface.overlaps(&import))
                || workload.host.iter().any(|h| {
                    h.interface.overlaps(&import)
                        && h.plugin.as_deref().is_some_and(|p| p != "http")
                })
                || claims.imports.iter().any(|c| c.interface.overlaps(&import));
            if !elsewhere {
                claims.imports.push(Claim::all(import));
            }
        }
        if let Some(route) = &workload.http {
            let (component, kind) = handler_of(binding, route)?;
            if self.server.is_none() {
                return Err(PluginError::new(format!(
                    "workload `{}` has an `http:` route, but this host has no HTTP listener (start it with --http-listen)",
                    workload.name
                )));
            }
            let export = match kind {
                Kind::P2 => "wasi:http/incoming-handler",
                Kind::P3 => "wasi:http/handler",
            };
            claims.calls.push(Claim {
                interface: name(export),
                components: Some(vec![component.clone()]),
                label: None,
            });
            lock(&self.pending).insert(
                workload.name.clone(),
                Pending {
                    route: route.clone(),
                    component,
                    kind,
                },
            );
        }
        lock(&self.outgoing).insert(workload.name.clone(), Outgoing::new(allowed));
        Ok(claims)
    }

    fn serve(&self, workload: &Arc<ResolvedWorkload>) -> Result<(), PluginError> {
        let name = &workload.workload.name;
        let Some(pending) = lock(&self.pending).remove(name) else {
            return Ok(());
        };
        let Some(server) = &self.server else {
            return Ok(());
        };
        let handler = WorkloadHandler::new(
            Arc::clone(workload),
            pending.component,
            pending.kind,
            pending.route.timeout,
        );
        let route = Route::new(name.clone(), pending.route, ProxyHandler::new(handler));
        server.routes.add(Arc::new(route)).map_err(PluginError::new)
    }

    /// Requests of `workload` in flight now, and instances waiting in its
    /// pool (`None` without a route).
    pub fn load(&self, workload: &str) -> Option<(usize, usize)> {
        let route = self.server.as_ref()?.routes.get(workload)?;
        Some((route.in_flight(), route.handler.state().pooled()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `host:` entry's `allow:` list (the only option there is).
fn allow_option(entry: &HostEntry) -> Result<Vec<Allowed>, String> {
    let mut allowed = Vec::new();
    for (key, value) in &entry.options {
        if key != "allow" {
            return Err(format!("unknown option `{key}` (there is: allow)"));
        }
        let list: Vec<String> = serde_yaml::from_value(value.clone())
            .map_err(|_| "`allow` must be a list of hosts".to_string())?;
        for written in list {
            allowed.push(Allowed::parse(&written)?);
        }
    }
    Ok(allowed)
}

/// The component answering `route`, and which handler it exports.
fn handler_of(
    binding: &WorkloadBinding<'_>,
    route: &HttpRoute,
) -> Result<(String, Kind), PluginError> {
    let handlers: Vec<(String, Kind)> = binding
        .components
        .iter()
        .filter_map(|c| {
            let kind = c
                .exports(binding.engine)
                .iter()
                .find_map(|(export, _)| Kind::of_export(export))?;
            Some((c.name().to_string(), kind))
        })
        .collect();
    let workload = &binding.workload.name;
    if let Some(wanted) = &route.component {
        return handlers
            .into_iter()
            .find(|(c, _)| c == wanted)
            .ok_or_else(|| PluginError::new(format!(
                "`http.component`: component `{wanted}` of workload `{workload}` exports neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3"
            )));
    }
    match handlers.len() {
        1 => Ok(handlers.into_iter().next().unwrap_or_else(|| unreachable!())),
        0 => Err(PluginError::new(format!(
            "workload `{workload}` has an `http:` route, but no component exports wasi:http/incoming-handler@0.2 or wasi:http/handler@0.3"
        ))),
        _ => {
            let names: Vec<&str> = handlers.iter().map(|(c, _)| c.as_str()).collect();
            Err(PluginError::new(format!(
                "workload `{workload}`: components `{}` all export an HTTP handler; pick one with `http.component`",
                names.join("`, `")
            )))
        }
    }
}

impl HostPlugin for HttpPlugin {
    fn id(&self) -> &'static str {
        "http"
    }

    fn serves(&self) -> Vec<InterfaceName> {
        vec![name("wasi:http")]
    }

    fn start(&self) -> PluginFuture<'_, Result<(), PluginError>> {
        if let Some(server) = &self.server {
            server.start();
        }
        Box::pin(async { Ok(()) })
    }

    fn bind_workload<'a>(
        &'a self,
        workload: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        let outcome = self.bind(workload);
        Box::pin(async move { outcome })
    }

    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        link::add_to_linker(binding.linker).map_err(|err| PluginError::new(format!("{err:#}")))
    }

    fn new_store(&self, identity: &StoreIdentity, slots: &mut Slots) {
        if let Some(outgoing) = lock(&self.outgoing).get(&*identity.workload) {
            slots.insert(outgoing::HttpState::new(outgoing.clone()));
        }
    }

    fn resolved<'a>(
        &'a self,
        workload: &'a Arc<ResolvedWorkload>,
    ) -> PluginFuture<'a, Result<(), PluginError>> {
        let outcome = self.serve(workload);
        Box::pin(async move { outcome })
    }

    fn drain<'a>(&'a self, workload: &'a str, grace: Duration) -> PluginFuture<'a, ()> {
        Box::pin(async move {
            let Some(server) = &self.server else { return };
            if let Some(route) = server.routes.get(workload) {
                if tokio::time::timeout(grace, route.drain()).await.is_err() {
                    tracing::warn!(
                        workload,
                        in_flight = route.in_flight(),
                        "HTTP requests still running after the grace period"
                    );
                }
            }
        })
    }

    fn unbind_workload<'a>(&'a self, workload: &'a str) -> PluginFuture<'a, ()> {
        lock(&self.pending).remove(workload);
        lock(&self.outgoing).remove(workload);
        if let Some(server) = &self.server {
            server.routes.remove(workload);
        }
        Box::pin(async {})
    }

    fn stop(&self) -> PluginFuture<'_, ()> {
        Box::pin(async move {
            if let Some(server) = &self.server {
                server.stop(self.grace).await;
            }
        })
    }
}
