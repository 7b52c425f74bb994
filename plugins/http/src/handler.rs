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

use std::sync::Arc;
use std::time::Instant;

use host_plugin::{describe_trap, Ctx, ResolvedWorkload, WarmPool};
use tracing::warn;
use transport::TraceContext;
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{p2, p3};

use crate::link::view;

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

/// Answers one workload's requests.
pub(crate) struct WorkloadHandler {
    component: String,
    kind: Kind,
    timeout: Duration,
    pool: Arc<WarmPool>,
}

impl WorkloadHandler {
    /// The handler of `component`, its pool (as its `pool_size` says)
    /// filling.
    pub(crate) fn new(
        workload: Arc<ResolvedWorkload>,
        component: String,
        kind: Kind,
        timeout: Duration,
    ) -> Self {
        Self {
            pool: WarmPool::new(workload, &component),
            component,
            kind,
            timeout,
        }
    }

    /// The component answering.
    pub(crate) fn component(&self) -> &str {
        &self.component
    }

    /// How many instances wait in the pool now.
    pub(crate) fn pooled(&self) -> usize {
        self.pool.ready()
    }
}

impl HandlerState for WorkloadHandler {
    type StoreData = Ctx;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Ctx, Expiry, Worker>> {
        let (mut store, instance) = self.pool.take().await?;
        let proxy = match self.kind {
            Kind::P2 => Proxy::P2(p2::bindings::Proxy::new(&mut store, &instance)?),
            Kind::P3 => Proxy::P3(p3::bindings::Service::new(&mut store, &instance)?),
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
