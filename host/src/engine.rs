//! The Wasmtime engine every workload of a host runs on.

use core::time::Duration;

use tracing::warn;
use wasmtime::Engine;

/// How often a running guest yields to the runtime, so a call's deadline
/// can stop even a guest that never waits (epoch interruption).
const YIELD_EVERY: Duration = Duration::from_millis(10);

/// The fewest instances the pool is sized for.
pub(crate) const MIN_POOLED_INSTANCES: u32 = 1000;

/// The engine: epoch interruption ticking every [`YIELD_EVERY`], WASI 0.3's
/// async functions, futures and streams, and the pooling allocator sized for
/// `instances` at once (serving an export instantiates per call: pooled
/// memories and stacks are reused instead of mapped and unmapped each time).
/// Falls back to allocating on demand if the pool's address space cannot be
/// reserved.
pub(crate) fn engine(instances: u32) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model_async(true);
    // Labelled imports (`import primary: ns:pkg/iface;`), routed per label.
    config.wasm_component_model_implements(true);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    // Components built by wit-bindgen have one memory and a few core
    // instances and tables (the module and its shims).
    let instances = instances.max(MIN_POOLED_INSTANCES);
    pool.total_component_instances(instances)
        .total_stacks(instances)
        .total_memories(instances)
        .total_core_instances(instances.saturating_mul(4))
        .total_tables(instances.saturating_mul(4));
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(err) => {
            warn!("instance pooling unavailable ({err}); allocating instances on demand");
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)?
        }
    };
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(YIELD_EVERY);
            }
        })?;
    Ok(engine)
}
