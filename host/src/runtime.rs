//! Compiling, linking and running a workload's components.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use futures::future::join_all;
use tracing::{info, warn};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};
use wrpc_client_plugin::{
    Caller, Defaults, PluginView, Router, WorkloadIdentity, WrpcPluginCtx, WrpcPluginView,
};
use wrpc_runtime_wasmtime::{WrpcCtxView, WrpcView};

use crate::workload::{ComponentSpec, Workload};

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
struct State {
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

impl WrpcView for State {
    type Invoke = Router;

    fn wrpc(&mut self) -> WrpcCtxView<'_, Router> {
        WrpcCtxView {
            ctx: &mut self.plugin,
            table: &mut self.table,
        }
    }
}

/// A component compiled and linked, ready to instantiate.
struct Loaded {
    spec: ComponentSpec,
    component: Component,
    linker: Linker<State>,
    runnable: bool,
}

/// Loads every component of `workload`, then runs those that export
/// `wasi:cli/run`, concurrently. Returns the exit code: 0 if all succeeded,
/// else the first failing component's.
///
/// # Errors
///
/// Fails before running anything if a component cannot be compiled, imports
/// something nothing provides, or a route cannot be set up.
pub async fn run(workload: Workload, defaults: Defaults) -> anyhow::Result<i32> {
    let engine = Engine::default();
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
    check_declarations_used(&engine, &compiled, &router)?;
    let mut loaded = Vec::new();
    for (spec, component) in compiled {
        loaded.push(load(&engine, spec, component, &router)?);
    }
    let runs = loaded.into_iter().filter(|l| {
        if !l.runnable {
            info!(
                component = l.spec.name,
                "exports no wasi:cli/run; nothing to run"
            );
        }
        l.runnable
    });
    let runs = runs.map(|l| {
        let caller = Caller {
            workload: workload.name.clone(),
            namespace: workload.namespace.clone(),
            component: l.spec.name.clone(),
        };
        let router = Arc::clone(&router);
        let engine = engine.clone();
        let name = l.spec.name.clone();
        // Each component runs on a worker thread of the runtime, where the
        // wake-ups of its calls' sockets land; run on the thread that called
        // `block_on`, every wake-up would first hop to it.
        let run = tokio::spawn(async move { run_component(&engine, l, router, caller).await });
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
    Ok(exit)
}

/// Fails when a `wrpc:` declaration matches no import of any component,
/// naming it and the closest import.
fn check_declarations_used(
    engine: &Engine,
    compiled: &[(ComponentSpec, Component)],
    router: &Router,
) -> anyhow::Result<()> {
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
    Ok(())
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
    for (import, _) in ty.imports(engine) {
        let package = import.split('/').next().unwrap_or(import);
        if !BUILTIN_PACKAGES.contains(&package) && !router.routes(import) {
            bail!(
                "component `{}` imports `{import}`, which nothing on this host provides (declare it under `wrpc:` to route it to an extension)",
                spec.name
            );
        }
    }
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wrpc_client_plugin::add_to_linker(&mut linker, engine, &component, &spec.name, router)?;
    linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component `{}` cannot be linked", spec.name))?;
    let runnable = ty
        .exports(engine)
        .any(|(name, _)| name.starts_with("wasi:cli/run@"));
    Ok(Loaded {
        spec,
        component,
        linker,
        runnable,
    })
}

async fn run_component(
    engine: &Engine,
    loaded: Loaded,
    router: Arc<Router>,
    caller: Caller,
) -> anyhow::Result<i32> {
    let Loaded {
        spec,
        component,
        linker,
        ..
    } = loaded;
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stdio().arg(&spec.name);
    for (k, v) in &spec.config {
        wasi.env(k, &v.0);
    }
    let state = State {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        plugin: WrpcPluginCtx::new(router, caller),
    };
    let mut store = Store::new(engine, state);
    let command = Command::instantiate_async(&mut store, &component, &linker).await?;
    info!(component = spec.name, "running");
    match command.wasi_cli_run().call_run(&mut store).await {
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

/// A trap as one line: its causes, without the wasm backtrace (logged at debug).
fn describe_trap(err: &wasmtime::Error) -> String {
    // The backtrace is the outermost context when wasmtime attached one.
    let skip = usize::from(err.downcast_ref::<wasmtime::WasmBacktrace>().is_some());
    let causes: Vec<String> = err.chain().skip(skip).map(|c| c.to_string()).collect();
    if causes.is_empty() {
        err.root_cause().to_string()
    } else {
        causes.join(": ")
    }
}
