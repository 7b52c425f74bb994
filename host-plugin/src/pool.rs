//! [`WarmPool`]: instances of one component made ahead of the requests,
//! served calls or messages they will handle, each in a store of its own,
//! so one of those pays no instantiation.
//!
//! An instance is used once: the store is dropped after its request,
//! whatever happened, and the pool makes another in the background.

use std::sync::{Arc, Mutex};

use tracing::warn;
use wasmtime::component::Instance;
use wasmtime::Store;

use crate::{describe_trap, Ctx, ResolvedWorkload};

/// Instances waiting in a pool, by `workload` and `component`.
pub const POOL_READY: &str = "host_pool_ready";

/// Instances that handled a request, served call or message, by
/// `workload`, `component` and `source`: `pool` (made ahead) or `new`.
pub const INSTANCES: &str = "host_instances_total";

/// A store with a component instantiated in it (after the components it
/// calls in process).
pub type Warm = (Store<Ctx>, Instance);

/// Up to `size` instances of one component, made ahead.
pub struct WarmPool {
    workload: Arc<ResolvedWorkload>,
    component: String,
    size: usize,
    ready: Mutex<Vec<Warm>>,
}

impl WarmPool {
    /// A pool of `component`'s instances as its `pool_size` says, filling
    /// in the background (empty for a size of 0).
    pub fn new(workload: Arc<ResolvedWorkload>, component: &str) -> Arc<Self> {
        let size = workload
            .workload
            .component(component)
            .map_or(0, |c| c.pool_size);
        let pool = Arc::new(Self {
            workload,
            component: component.to_string(),
            size,
            ready: Mutex::new(Vec::with_capacity(size)),
        });
        for _ in 0..size {
            pool.refill();
        }
        pool
    }

    /// How many wait now.
    pub fn ready(&self) -> usize {
        self.ready.lock().map_or(0, |r| r.len())
    }

    fn report(&self, ready: usize) {
        metrics::gauge!(
            POOL_READY,
            "workload" => self.workload.workload.name.clone(),
            "component" => self.component.clone()
        )
        .set(ready as f64);
    }

    fn count(&self, source: &'static str) {
        metrics::counter!(
            INSTANCES,
            "workload" => self.workload.workload.name.clone(),
            "component" => self.component.clone(),
            "source" => source
        )
        .increment(1);
    }

    /// An instance for one request: from the pool (which then makes
    /// another), or made now. A store from the pool continues no trace
    /// until told ([`Ctx::set_trace`]).
    ///
    /// # Errors
    ///
    /// It could not be instantiated (the message names the component).
    pub async fn take(self: &Arc<Self>) -> wasmtime::Result<Warm> {
        let pooled = self.ready.lock().ok().and_then(|mut ready| {
            let taken = ready.pop();
            if taken.is_some() {
                self.report(ready.len());
            }
            taken
        });
        if let Some(warm) = pooled {
            self.count("pool");
            self.refill();
            return Ok(warm);
        }
        self.count("new");
        make(&self.workload, &self.component).await
    }

    /// Makes one instance for the pool, in the background.
    fn refill(self: &Arc<Self>) {
        if self.size == 0 {
            return;
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(pool) = pool.upgrade() else { return };
            match make(&pool.workload, &pool.component).await {
                Ok(warm) => {
                    if let Ok(mut ready) = pool.ready.lock() {
                        if ready.len() < pool.size {
                            ready.push(warm);
                        }
                        pool.report(ready.len());
                    }
                }
                Err(err) => warn!(
                    workload = %pool.workload.workload.name,
                    component = pool.component,
                    "cannot fill the pool: {}",
                    describe_trap(&err)
                ),
            }
        });
    }
}

async fn make(workload: &ResolvedWorkload, component: &str) -> wasmtime::Result<Warm> {
    let mut store = workload.new_store(component, None)?;
    let instance = workload.instantiate(&mut store, component).await?;
    Ok((store, instance))
}
