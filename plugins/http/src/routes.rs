//! The routing table: which workload answers a request, by `Host` header
//! and path prefix, and how many of its requests are in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use host_plugin::manifest::HttpRoute;
use tokio::sync::Notify;
use wasmtime_wasi_http::handler::ProxyHandler;

use crate::handler::WorkloadHandler;

/// One workload's place on the listener.
pub(crate) struct Route {
    pub(crate) workload: String,
    pub(crate) spec: HttpRoute,
    pub(crate) handler: ProxyHandler<WorkloadHandler>,
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Route {
    pub(crate) fn new(
        workload: String,
        spec: HttpRoute,
        handler: ProxyHandler<WorkloadHandler>,
    ) -> Self {
        Self {
            workload,
            spec,
            handler,
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    /// Counts a request in until the guard is dropped; `None` once draining.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.draining.load(Ordering::SeqCst) {
            InFlight(Arc::clone(self)).release();
            return None;
        }
        Some(InFlight(Arc::clone(self)))
    }

    /// Takes no new request; returns when none is in flight.
    pub(crate) async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let idle = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Requests in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// A request counted in flight on its route, until its response is sent.
pub(crate) struct InFlight(Arc<Route>);

impl InFlight {
    fn release(&self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.release();
    }
}

/// Every workload's route.
#[derive(Default)]
pub(crate) struct Routes(RwLock<Vec<Arc<Route>>>);

impl Routes {
    /// Adds a route, unless another workload's answers exactly the same
    /// hosts and path.
    pub(crate) fn add(&self, route: Arc<Route>) -> Result<(), String> {
        let mut routes = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(taken) = routes.iter().find(|r| {
            r.workload != route.workload
                && r.spec.hosts == route.spec.hosts
                && r.spec.path == route.spec.path
        }) {
            return Err(format!(
                "`http:` route (hosts {:?}, path `{}`) is already workload `{}`'s",
                route.spec.hosts, route.spec.path, taken.workload
            ));
        }
        routes.retain(|r| r.workload != route.workload);
        routes.push(route);
        Ok(())
    }

    /// Removes `workload`'s route, returning it.
    pub(crate) fn remove(&self, workload: &str) -> Option<Arc<Route>> {
        let mut routes = self.0.write().unwrap_or_else(|e| e.into_inner());
        let index = routes.iter().position(|r| r.workload == workload)?;
        Some(routes.remove(index))
    }

    /// `workload`'s route.
    pub(crate) fn get(&self, workload: &str) -> Option<Arc<Route>> {
        let routes = self.0.read().unwrap_or_else(|e| e.into_inner());
        routes.iter().find(|r| r.workload == workload).cloned()
    }

    /// The most specific route for `host` (lower case, no port) and `path`.
    pub(crate) fn find(&self, host: Option<&str>, path: &str) -> Option<Arc<Route>> {
        let routes = self.0.read().unwrap_or_else(|e| e.into_inner());
        routes
            .iter()
            .filter(|r| r.spec.matches(host, path))
            .max_by_key(|r| r.spec.specificity())
            .cloned()
    }
}
