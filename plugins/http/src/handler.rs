//! One workload's handler component answering requests: an instance per
//! request in a store of its own (taken warm from the pool when there is
//! one), under the route's deadline.
//!
//! Reuse policy: fresh per request. A store is never reused after a request,
//! clean or not, so nothing a request leaves in the component's memory is
//! seen by the next one (another tenant's, perhaps), and a trap costs only
//! its own request. `pool_size` buys back the instantiation: instances are
//! made ahead, off the request's path.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use host_plugin::{describe_trap, Ctx, ResolvedWorkload};
use tracing::warn;
use transport::TraceContext;
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{p2, p3};

use crate::link::view;

/// Instances that answered a request, by `workload` and `source`: `pool`
/// (made ahead) or `new` (instantiated for it).
pub const INSTANCES: &str = "host_http_instances_total";

/// Instances waiting in a workload's pool now, by `workload`.
pub const POOL_READY: &str = "host_http_pool_ready";

/// Which `wasi:http` handler a component exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `wasi:http/incoming-handler@0.2.x`.
    P2,
    /// `wasi:http/handler@0.3.x`.
    P3,
}

impl Kind {
    /// The handler `export` (an export's name) is, if it is one.
    pub(crate) fn of_export(export: &str) -> Option<Self> {
        if export.starts_with("wasi:http/incoming-handler@0.2.") {
            Some(Kind::P2)
        } else if export.starts_with("wasi:http/handler@0.3.") {
            Some(Kind::P3)
        } else {
            None
        }
    }
}

/// A store with the handler instantiated in it, ready for one request.
type Ready = (Store<Ctx>, Proxy);

/// Answers one workload's requests.
pub(crate) struct WorkloadHandler {
    workload: Arc<ResolvedWorkload>,
    component: String,
    kind: Kind,
    timeout: Duration,
    pool: Arc<Pool>,
}

/// Instances made ahead of requests.
struct Pool {
    workload: String,
    size: usize,
    ready: Mutex<Vec<Ready>>,
}

impl Pool {
    fn report(&self, ready: usize) {
        metrics::gauge!(POOL_READY, "workload" => self.workload.clone()).set(ready as f64);
    }
}

impl WorkloadHandler {
    /// The handler of `component`; with `pool_size` > 0 it starts filling
    /// the pool.
    pub(crate) fn new(
        workload: Arc<ResolvedWorkload>,
        component: String,
        kind: Kind,
        timeout: Duration,
        pool_size: usize,
    ) -> Self {
        let handler = Self {
            workload: Arc::clone(&workload),
            component,
            kind,
            timeout,
            pool: Arc::new(Pool {
                workload: workload.workload.name.clone(),
                size: pool_size,
                ready: Mutex::new(Vec::with_capacity(pool_size)),
            }),
        };
        for _ in 0..pool_size {
            handler.refill();
        }
        handler
    }

    /// The component answering.
    pub(crate) fn component(&self) -> &str {
        &self.component
    }

    /// How many instances wait in the pool now.
    pub(crate) fn pooled(&self) -> usize {
        self.pool.ready.lock().map_or(0, |r| r.len())
    }

    /// Makes one instance for the pool, in the background.
    fn refill(&self) {
        if self.pool.size == 0 {
            return;
        }
        let pool = Arc::clone(&self.pool);
        let workload = Arc::clone(&self.workload);
        let component = self.component.clone();
        let kind = self.kind;
        tokio::spawn(async move {
            match make(&workload, &component, kind).await {
                Ok(ready) => {
                    if let Ok(mut slots) = pool.ready.lock() {
                        if slots.len() < pool.size {
                            slots.push(ready);
                        }
                        pool.report(slots.len());
                    }
                }
                Err(err) => warn!(
                    workload = %workload.workload.name,
                    component,
                    "cannot fill the pool: {}",
                    describe_trap(&err)
                ),
            }
        });
    }
}

/// A store with `component` instantiated as a handler of `kind`.
async fn make(workload: &ResolvedWorkload, component: &str, kind: Kind) -> wasmtime::Result<Ready> {
    let mut store = workload.new_store(component, None)?;
    let instance = workload.instantiate(&mut store, component).await?;
    let proxy = match kind {
        Kind::P2 => Proxy::P2(p2::bindings::Proxy::new(&mut store, &instance)?),
        Kind::P3 => Proxy::P3(p3::bindings::Service::new(&mut store, &instance)?),
    };
    Ok((store, proxy))
}

impl HandlerState for WorkloadHandler {
    type StoreData = Ctx;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Ctx, Expiry, Worker>> {
        let pooled = self.pool.ready.lock().ok().and_then(|mut r| {
            let taken = r.pop();
            if taken.is_some() {
                self.pool.report(r.len());
            }
            taken
        });
        let source = if pooled.is_some() { "pool" } else { "new" };
        metrics::counter!(
            INSTANCES,
            "workload" => self.workload.workload.name.clone(),
            "source" => source
        )
        .increment(1);
        let (store, proxy) = match pooled {
            Some(ready) => {
                self.refill();
                ready
            }
            None => make(&self.workload, &self.component, self.kind).await?,
        };
        Ok(Instance {
            store,
            proxy,
            view,
            expiration: Expiry {
                timeout: self.timeout,
                sleep: Box::pin(tokio::time::sleep(self.timeout)),
            },
            state: Worker {
                timeout: self.timeout,
            },
        })
    }
}

/// How long after a request's deadline its instance is dropped.
const EXPIRY_MARGIN: Duration = Duration::from_secs(1);

/// When a worker's instance is dropped: once its request is done, or its
/// deadline passed (the second line of defence the handler asks for).
pub(crate) struct Expiry {
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let timeout = match status {
            // Fresh per request: an idle worker has served its request.
            WorkerStatus::Idle => Duration::ZERO,
            // The request's own deadline answers 504 first; this one drops
            // an instance that still runs a moment later.
            WorkerStatus::Requests | WorkerStatus::PostReturn => {
                self.timeout.saturating_add(EXPIRY_MARGIN)
            }
        };
        let Some(deadline) = start.checked_add(timeout) else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

/// A worker: one request, under the deadline.
pub(crate) struct Worker {
    timeout: Duration,
}

impl WorkerState for Worker {
    type StoreData = Ctx;
    type RequestData = TraceContext;

    fn should_accept_request(&self, _concurrent: usize, total: usize) -> ShouldAccept {
        if total == 0 {
            ShouldAccept::Yes
        } else {
            ShouldAccept::Never
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, Ctx>,
        trace: TraceContext,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        store.data_mut().set_trace(Some(trace));
        Box::pin(tokio::time::sleep(self.timeout))
    }

    fn drop(&self, store: Store<Ctx>, result: wasmtime::Result<()>) {
        if let Err(err) = result {
            let identity = store.data().identity();
            warn!(
                workload = %identity.workload,
                component = %identity.component,
                "HTTP handler trapped: {}",
                describe_trap(&err)
            );
        }
    }
}
