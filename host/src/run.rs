//! Running the components that export `wasi:cli/run`: each run in a store
//! of its own, so a trap ends that run only.

use futures::future::join_all;
use host_plugin::{describe_trap, ResolvedWorkload};
use tracing::{info, warn, Instrument as _};
use transport::TraceContext;
use wasmtime::component::types::ComponentItem;
use wasmtime_wasi::I32Exit;

/// Which `wasi:cli/run` a component exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// `wasi:cli/run@0.2.x`.
    P2,
    /// `wasi:cli/run@0.3.x`.
    P3,
}

fn run_export(workload: &ResolvedWorkload, component: &str) -> Option<Run> {
    let c = workload.component(component)?;
    c.component
        .component_type()
        .exports(&workload.engine)
        .find_map(|(name, item)| {
            if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
                None
            } else if name.starts_with("wasi:cli/run@0.2.") {
                Some(Run::P2)
            } else if name.starts_with("wasi:cli/run@0.3.") {
                Some(Run::P3)
            } else {
                None
            }
        })
}

/// Runs every component that exports `wasi:cli/run`, concurrently, each
/// on a worker thread and in a store of its own; the first failing one's
/// exit code, else 0.
pub(crate) async fn run_all(workload: std::sync::Arc<ResolvedWorkload>) -> i32 {
    let mut runs = Vec::new();
    for c in &workload.components {
        let name = c.spec.name.clone();
        let Some(kind) = run_export(&workload, &name) else {
            info!(component = name, "exports no wasi:cli/run; nothing to run");
            continue;
        };
        let trace = TraceContext::root();
        // The run is a span of its own: the root of the trace its calls carry.
        let span = tracing::info_span!(
            "run",
            component = %name,
            trace_id = %trace.trace_id(),
            span_id = %trace.span_id(),
            outcome = tracing::field::Empty,
        );
        let workload = std::sync::Arc::clone(&workload);
        let task_name = name.clone();
        let task = tokio::spawn(
            async move {
                let code = run_component(&workload, &task_name, kind, trace).await;
                let ok = matches!(code, Ok(0));
                tracing::Span::current().record("outcome", if ok { "ok" } else { "error" });
                code
            }
            .instrument(span),
        );
        runs.push(async move {
            let code = match task.await {
                Ok(code) => code,
                Err(err) => Err(format!("the component's task failed: {err}")),
            };
            (name, code)
        });
    }
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
                eprintln!("component `{name}` trapped: {err}");
                if exit == 0 {
                    exit = 1;
                }
            }
        }
    }
    exit
}

/// One run of `component`: its exit code, or the trap as one line.
async fn run_component(
    workload: &ResolvedWorkload,
    component: &str,
    kind: Run,
    trace: TraceContext,
) -> Result<i32, String> {
    let mut store = workload
        .new_store(component, Some(trace))
        .map_err(|err| err.to_string())?;
    let instance = workload
        .instantiate(&mut store, component)
        .await
        .map_err(|err| describe_trap(&err))?;
    info!(component, "running");
    let ran = match kind {
        Run::P3 => {
            let command = wasmtime_wasi::p3::bindings::Command::new(&mut store, &instance)
                .map_err(|err| describe_trap(&err))?;
            store
                .run_concurrent(async move |store| command.wasi_cli_run().call_run(store).await)
                .await
                .and_then(|ran| ran)
        }
        Run::P2 => {
            let command = wasmtime_wasi::p2::bindings::Command::new(&mut store, &instance)
                .map_err(|err| describe_trap(&err))?;
            command.wasi_cli_run().call_run(&mut store).await
        }
    };
    match ran {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => {
                tracing::debug!("trap in component `{component}`: {err:?}");
                Err(describe_trap(&err))
            }
        },
    }
}
