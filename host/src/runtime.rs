//! Compiling, linking and running a workload's components.

use core::time::Duration;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use futures::future::join_all;
use ops::Readiness;
use tracing::{info, warn, Instrument as _};
use transport::TraceContext;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};
use wrpc_client_plugin::{
    Caller, Defaults, PluginView, Router, WorkloadIdentity, WrpcPluginCtx, WrpcPluginView,
};

use crate::exports::Exports;
use crate::workload::{ComponentSpec, Scalar, Workload};

/// WASI packages the host serves in-process.
const BUILTIN_PACKAGES: &[&str] = &[
    "wasi:cli",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
];

/// The data of one component instance's store.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    plugin: WrpcPluginCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WrpcPluginView for State {
    fn wrpc_plugin(&mut self) -> PluginView<'_> {
        PluginView {
            ctx: &mut self.plugin,
            table: &mut self.table,
        }
    }
}

/// Which `wasi:cli/run` a component exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// None: it only serves exports.
    No,
    /// `wasi:cli/run@0.2.x`.
    P2,
    /// `wasi:cli/run@0.3.x`.
    P3,
}

/// A component compiled and linked, ready to instantiate.
pub(crate) struct Loaded {
    pub(crate) spec: ComponentSpec,
    pub(crate) component: Component,
    pub(crate) pre: InstancePre<State>,
    run: Run,
}

/// How often a running guest yields to the runtime, so a call's deadline
/// can stop even a guest that never waits (epoch interruption).
const YIELD_EVERY: Duration = Duration::from_millis(10);

/// The engine: epoch interruption ticking every [`YIELD_EVERY`], and the
/// pooling allocator sized for `instances` at once (serving an export
/// instantiates per call: pooled memories and stacks are reused instead of
/// mapped and unmapped each time). Falls back to allocating on demand if
/// the pool's address space cannot be reserved.
fn engine(instances: u32) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    // WASI 0.3 components: async functions, futures and streams.
    config.wasm_component_model_async(true);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    // Components built by wit-bindgen have one memory and a few core
    // instances and tables (the module and its shims).
    let instances = instances.max(1000);
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

/// A store for one instance of component `name`, calling out through `router`
/// as `caller`, with `config` as its environment.
pub(crate) fn new_store(
    engine: &Engine,
    name: &str,
    config: &BTreeMap<String, Scalar>,
    router: Arc<Router>,
    caller: Caller,
) -> Store<State> {
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stdio().arg(name);
    for (k, v) in config {
        wasi.env(k, &v.0);
    }
    let state = State {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        plugin: WrpcPluginCtx::new(router, caller),
    };
    let mut store = Store::new(engine, state);
    // Yield at every epoch tick: deadlines (tokio timeouts) can then cancel it.
    store.epoch_deadline_async_yield_and_update(1);
    store
}

/// Loads every component of `workload`, serves its `exports:`, then runs
/// the components that export `wasi:cli/run`, concurrently. Without
/// exports, returns when they are done; with exports, keeps serving until
/// SIGTERM or ctrl-c, then drains calls in flight within `grace`. Returns
/// the exit code: 0 if all runs succeeded, else the first failing one's.
///
/// # Errors
///
/// Fails before running anything if a component cannot be compiled, imports
/// something nothing provides, a route cannot be set up, or an export
/// cannot be served.
pub async fn run(
    workload: Workload,
    defaults: Defaults,
    grace: Duration,
    readiness: Readiness,
) -> anyhow::Result<i32> {
    // Every export call may run at once, beside every component's run.
    let instances = workload
        .exports
        .iter()
        .map(|e| u32::try_from(e.max_concurrency).unwrap_or(u32::MAX))
        .fold(
            u32::try_from(workload.components.len()).unwrap_or(u32::MAX),
            u32::saturating_add,
        );
    let engine = engine(instances)?;
    let identity = WorkloadIdentity {
        name: workload.name.clone(),
        namespace: workload.namespace.clone(),
    };
    let router = Arc::new(Router::connect(&workload.declarations(), &defaults, &identity).await?);

    // Components loaded from one file are compiled once.
    let mut by_file: HashMap<PathBuf, Component> = HashMap::new();
    let mut compiled = Vec::new();
    for spec in workload.components {
        compiled.push(compile(&engine, spec, &mut by_file)?);
    }
    // A declaration nothing imports is named before an import nothing
    // provides: the second is often the first's typo.
    let imports = check_declarations_used(&engine, &compiled, &router)?;
    // Then whether each target serves what the components import through it.
    router.check_served(&imports).await?;
    let mut loaded = Vec::new();
    for (spec, component) in compiled {
        loaded.push(load(&engine, spec, component, &router)?);
    }
    let exports = Exports::start(
        &engine,
        &workload.name,
        &workload.namespace,
        &workload.exports,
        &loaded,
        &router,
    )
    .await?;
    for listener in exports.listeners() {
        let listener = listener.clone();
        readiness.add_now(format!("export {}", listener.address()), move || {
            listener.check()
        });
    }
    for (interface, target) in router.targets() {
        if matches!(target.endpoint(), transport::Endpoint::Nats(_)) {
            let target = target.clone();
            readiness.add_now(
                format!("route {interface} via {}", target.endpoint()),
                move || target.check(),
            );
        }
    }
    readiness.set_started();
    if !exports.is_empty() {
        // For scripts and tests: every export is being served.
        println!("ready");
    }
    let runs = tokio::spawn(run_all(
        engine,
        loaded,
        router,
        workload.name,
        workload.namespace,
    ));
    if exports.is_empty() {
        return runs.await.context("the components' task failed");
    }
    transport::server::shutdown_signal().await;
    info!("shutting down: no new calls accepted");
    readiness.set_draining();
    exports.drain(grace).await;
    if runs.is_finished() {
        return runs.await.context("the components' task failed");
    }
    runs.abort();
    Ok(0)
}

/// Runs every component that exports `wasi:cli/run`, concurrently; the
/// first failing one's exit code, else 0.
async fn run_all(
    engine: Engine,
    loaded: Vec<Loaded>,
    router: Arc<Router>,
    workload: String,
    namespace: String,
) -> i32 {
    let runs = loaded.into_iter().filter(|l| {
        if l.run == Run::No {
            info!(
                component = l.spec.name,
                "exports no wasi:cli/run; nothing to run"
            );
        }
        l.run != Run::No
    });
    let runs = runs.map(|l| {
        let caller = Caller {
            workload: workload.clone(),
            namespace: namespace.clone(),
            component: l.spec.name.clone(),
            // One trace per run of the component.
            trace: Some(TraceContext::root()),
        };
        let router = Arc::clone(&router);
        let engine = engine.clone();
        let name = l.spec.name.clone();
        // Each component runs on a worker thread of the runtime, where the
        // wake-ups of its calls' sockets land; run on the thread that called
        // `block_on`, every wake-up would first hop to it.
        // The run is a span of its own: the root of the trace its calls carry.
        let span = caller.trace.map_or_else(tracing::Span::none, |t| {
            tracing::info_span!(
                "run",
                component = %name,
                trace_id = %t.trace_id(),
                span_id = %t.span_id(),
                outcome = tracing::field::Empty,
            )
        });
        let run = tokio::spawn(
            async move {
                let code = run_component(&engine, l, router, caller).await;
                let ok = matches!(code, Ok(0));
                tracing::Span::current().record("outcome", if ok { "ok" } else { "error" });
                code
            }
            .instrument(span),
        );
        async move {
            let code = match run.await {
                Ok(code) => code,
                Err(err) => Err(anyhow::anyhow!("the component's task failed: {err}")),
            };
            (name, code)
        }
    });
    let mut exit = 0;
    for (name, code) in join_all(runs).await {
        match code {
            Ok(0) => {}
            Ok(code) => {
                warn!(component = name, code, "component exited with a failure");
                if exit == 0 {
                    exit = code;
                }
            }
            Err(err) => {
                eprintln!("component `{name}` trapped: {err:#}");
                if exit == 0 {
                    exit = 1;
                }
            }
        }
    }
    exit
}

/// Fails when a `wrpc:` declaration matches no import of any component,
/// naming it and the closest import; else returns every import.
fn check_declarations_used(
    engine: &Engine,
    compiled: &[(ComponentSpec, Component)],
    router: &Router,
) -> anyhow::Result<Vec<String>> {
    let imports: Vec<String> = compiled
        .iter()
        .flat_map(|(_, component)| {
            component
                .component_type()
                .imports(engine)
                .map(|(name, _)| name.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for declared in router.declared() {
        if imports.iter().any(|import| declared.matches(import)) {
            continue;
        }
        match declared.suggest(imports.iter().map(String::as_str)) {
            Some(close) => bail!(
                "`wrpc:` entry `{declared}` matches no import of any component (did you mean `{close}`?)"
            ),
            None => bail!(
                "`wrpc:` entry `{declared}` matches no import of any component (they import: {})",
                imports.join(", ")
            ),
        }
    }
    Ok(imports)
}

fn compile(
    engine: &Engine,
    spec: ComponentSpec,
    by_file: &mut HashMap<PathBuf, Component>,
) -> anyhow::Result<(ComponentSpec, Component)> {
    let file = spec.file.clone().context("component has no file")?;
    if let Some(component) = by_file.get(&file) {
        return Ok((spec, component.clone()));
    }
    let component = Component::from_file(engine, &file)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component `{}`: cannot load {}", spec.name, file.display()))?;
    by_file.insert(file, component.clone());
    Ok((spec, component))
}

fn load(
    engine: &Engine,
    spec: ComponentSpec,
    component: Component,
    router: &Router,
) -> anyhow::Result<Loaded> {
    let ty = component.component_type();
    for (import, item) in ty.imports(engine) {
        let package = import.split('/').next().unwrap_or(import);
        if !BUILTIN_PACKAGES.contains(&package)
            && !router.routes(import)
            && !is_type_only(engine, &item.ty)
        {
            bail!(
                "component `{}` imports `{import}`, which nothing on this host provides (declare it under `wrpc:` to route it to an extension)",
                spec.name
            );
        }
    }
    let mut linker = Linker::new(engine);
    // Each component gets the WASI it imports: 0.2, 0.3, or both.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wrpc_client_plugin::add_to_linker(&mut linker, engine, &component, &spec.name, router)?;
    link_type_only_imports(engine, &mut linker, &component, router);
    let pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component `{}` cannot be linked", spec.name))?;
    let run = ty
        .exports(engine)
        .find_map(|(name, _)| {
            if name.starts_with("wasi:cli/run@0.2.") {
                Some(Run::P2)
            } else if name.starts_with("wasi:cli/run@0.3.") {
                Some(Run::P3)
            } else {
                None
            }
        })
        .unwrap_or(Run::No);
    Ok(Loaded {
        spec,
        component,
        pre,
        run,
    })
}

async fn run_component(
    engine: &Engine,
    loaded: Loaded,
    router: Arc<Router>,
    caller: Caller,
) -> anyhow::Result<i32> {
    let Loaded { spec, pre, run, .. } = loaded;
    let mut store = new_store(engine, &spec.name, &spec.config, router, caller);
    let instance = pre.instantiate_async(&mut store).await?;
    info!(component = spec.name, "running");
    let ran = match run {
        Run::P3 => {
            let command = wasmtime_wasi::p3::bindings::Command::new(&mut store, &instance)?;
            store
                .run_concurrent(async move |store| command.wasi_cli_run().call_run(store).await)
                .await
                .and_then(|ran| ran)
        }
        _ => {
            let command = wasmtime_wasi::p2::bindings::Command::new(&mut store, &instance)?;
            command.wasi_cli_run().call_run(&mut store).await
        }
    };
    match ran {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => {
                tracing::debug!("trap in component `{}`: {err:?}", spec.name);
                Err(anyhow::anyhow!(describe_trap(&err)))
            }
        },
    }
}

/// An import that only defines types (no functions, no resources), such as
/// `wasmcloud:messaging/types` of a component that exports a handler, needs
/// no provider: link an empty instance unless something else provides it.
fn link_type_only_imports(
    engine: &Engine,
    linker: &mut Linker<State>,
    component: &Component,
    router: &Router,
) {
    for (import, item) in component.component_type().imports(engine) {
        let package = import.split('/').next().unwrap_or(import);
        if BUILTIN_PACKAGES.contains(&package) || router.routes(import) {
            continue;
        }
        if is_type_only(engine, &item.ty) {
            let _ = linker.instance(import);
        }
    }
}

/// Whether `import` defines types only: nothing to provide.
fn is_type_only(engine: &Engine, item: &ComponentItem) -> bool {
    matches!(item, ComponentItem::ComponentInstance(ty)
        if ty.exports(engine).all(|(_, t)| matches!(t.ty, ComponentItem::Type(_))))
}

/// A trap as one line: its causes, without the wasm backtrace (logged at debug).
pub(crate) fn describe_trap(err: &wasmtime::Error) -> String {
    // Wasmtime attaches the backtrace as a context of its own, wherever
    // other contexts put it in the chain.
    let causes: Vec<String> = err
        .chain()
        .map(|c| c.to_string())
        .filter(|c| !c.contains("wasm backtrace:"))
        .collect();
    if causes.is_empty() {
        err.root_cause().to_string()
    } else {
        causes.join(": ")
    }
}
