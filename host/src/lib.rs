//! The host: runs workloads of Wasm components on Wasmtime, their imports
//! served by plugins, by each other in process, or over wRPC.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use host::{Host, Workload};
//!
//! let host = Host::builder().with_builtins(&host::Builtins::default()).start().await?;
//! let workload = Workload::load("workload.yaml".as_ref())?;
//! let code = host.run(workload, ops::Readiness::new()).await?;
//! host.stop().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod bind;
pub mod control;
mod engine;
mod imports;
mod local;
pub mod plugins;
mod run;
pub mod sources;
pub mod supervisor;

use core::time::Duration;

use std::sync::Arc;

use anyhow::Context as _;
use ops::Readiness;
use tracing::info;
use wasmtime::Engine;

pub use host_plugin::manifest::{self, Workload};
pub use host_plugin::{
    describe_trap, Claim, Claims, ComponentBinding, Ctx, HostPlugin, InterfaceName, PluginError,
    PluginFuture, ResolvedComponent, ResolvedWorkload, Slots, StoreIdentity, WorkloadBinding,
};
pub use plugins::Builtins;

/// Builds a [`Host`]: its plugins, and how many instances may run at once.
#[derive(Default)]
pub struct HostBuilder {
    plugins: Vec<Arc<dyn HostPlugin>>,
    instances: u32,
    sources: sources::Sources,
}

impl HostBuilder {
    /// Adds a plugin. Plugins are asked in the order they were added.
    #[must_use]
    pub fn plugin(mut self, plugin: impl HostPlugin) -> Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// Adds a shared plugin.
    #[must_use]
    pub fn plugin_arc(mut self, plugin: Arc<dyn HostPlugin>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Adds the built-in plugins `builtins` leaves on.
    #[must_use]
    pub fn with_builtins(mut self, builtins: &Builtins) -> Self {
        self.plugins.extend(builtins.plugins());
        self
    }

    /// Where components are pulled from (`image:`) and kept compiled.
    #[must_use]
    pub fn sources(mut self, sources: sources::Sources) -> Self {
        self.sources = sources;
        self
    }

    /// Sizes the instance pool for `instances` at once (at least 1000).
    #[must_use]
    pub fn max_instances(mut self, instances: u32) -> Self {
        self.instances = instances;
        self
    }

    /// Makes the engine and starts every plugin.
    ///
    /// # Errors
    ///
    /// The engine cannot be made, two plugins share an id, or a plugin does
    /// not start (its id named).
    pub async fn start(self) -> anyhow::Result<Host> {
        // TLS to extensions and NATS needs a process-wide crypto provider;
        // an embedder that installed one keeps it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        for (i, p) in self.plugins.iter().enumerate() {
            if self.plugins[..i].iter().any(|q| q.id() == p.id()) {
                anyhow::bail!("two plugins have the id `{}`", p.id());
            }
        }
        let engine = engine::engine(self.instances)?;
        for plugin in &self.plugins {
            plugin
                .start()
                .await
                .with_context(|| format!("plugin `{}` did not start", plugin.id()))?;
        }
        Ok(Host {
            engine,
            plugins: self.plugins,
            sources: self.sources,
        })
    }
}

/// A running host: an engine and its plugins.
pub struct Host {
    engine: Engine,
    plugins: Vec<Arc<dyn HostPlugin>>,
    sources: sources::Sources,
}

/// A workload bound to a host: linked, its plugins serving it.
pub struct BoundWorkload {
    resolved: Arc<ResolvedWorkload>,
    /// Every plugin asked to bind it (each is unbound).
    asked: Vec<Arc<dyn HostPlugin>>,
    /// Whether a plugin calls its exports (it then runs until stopped).
    serves: bool,
}

impl Host {
    /// A builder with no plugins.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The ids of the host's plugins, in the order they are asked.
    pub fn plugin_ids(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.id()).collect()
    }

    /// Binds `workload`: compiles it, lets every plugin claim what it
    /// serves, links each component and starts what plugins serve. Every
    /// plugin asked is unbound again if a step fails.
    ///
    /// # Errors
    ///
    /// In one line: a component that cannot be compiled or linked, two
    /// plugins claiming one import, an import nothing provides, several
    /// exporters of one import, a cycle, or a plugin's own refusal.
    pub async fn bind(
        &self,
        workload: Workload,
        readiness: Readiness,
    ) -> anyhow::Result<BoundWorkload> {
        let mut asked = Vec::new();
        let name = workload.name.clone();
        let bound = self.bind_steps(workload, readiness, &mut asked).await;
        match bound {
            Ok((resolved, serves)) => Ok(BoundWorkload {
                resolved,
                asked,
                serves,
            }),
            Err(err) => {
                for plugin in &asked {
                    plugin.unbind_workload(&name).await;
                }
                Err(err)
            }
        }
    }

    async fn bind_steps(
        &self,
        workload: Workload,
        readiness: Readiness,
        asked: &mut Vec<Arc<dyn HostPlugin>>,
    ) -> anyhow::Result<(Arc<ResolvedWorkload>, bool)> {
        let compiled = bind::compile(&self.engine, &self.sources, &workload).await?;
        let binding = WorkloadBinding {
            workload: &workload,
            engine: &self.engine,
            components: &compiled,
        };
        let bound = bind::claim(&self.plugins, &binding, asked).await?;
        let plan = bind::plan(&binding, &bound)?;
        let resolved = Arc::new(bind::link(&binding, &bound, &plan, readiness)?);
        for b in &bound {
            b.plugin
                .resolved(&resolved)
                .await
                .with_context(|| format!("plugin `{}`", b.plugin.id()))?;
        }
        let serves = bound.iter().any(|b| !b.claims.calls.is_empty());
        Ok((resolved, serves))
    }

    /// Binds `workload`, runs its components, and without anything served
    /// returns when they finish; with exports served, runs until SIGTERM or
    /// ctrl-c, then drains within `grace`. Returns the exit code: 0 if
    /// every run succeeded, else the first failing one's.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub async fn run(&self, workload: Workload, readiness: Readiness) -> anyhow::Result<i32> {
        self.run_with_grace(workload, readiness, Duration::from_secs(10))
            .await
    }

    /// As [`run`](Self::run), draining within `grace`.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub async fn run_with_grace(
        &self,
        workload: Workload,
        readiness: Readiness,
        grace: Duration,
    ) -> anyhow::Result<i32> {
        let bound = self.bind(workload, readiness.clone()).await?;
        readiness.set_started();
        if bound.serves {
            // For scripts and tests: everything is being served.
            println!("ready");
        }
        let runs = tokio::spawn(run::run_all(Arc::clone(&bound.resolved)));
        let code = if bound.serves {
            transport::server::shutdown_signal().await;
            info!("shutting down: no new calls accepted");
            readiness.set_draining();
            bound.drain(grace).await;
            if runs.is_finished() {
                runs.await.context("the components' task failed")?
            } else {
                runs.abort();
                0
            }
        } else {
            runs.await.context("the components' task failed")?
        };
        bound.unbind().await;
        Ok(code)
    }

    /// Each plugin's id and the interfaces it can serve.
    pub fn plugins_serving(&self) -> Vec<(&'static str, Vec<InterfaceName>)> {
        self.plugins.iter().map(|p| (p.id(), p.serves())).collect()
    }

    /// Stops every plugin.
    pub async fn stop(&self) {
        for plugin in &self.plugins {
            plugin.stop().await;
        }
    }
}

impl BoundWorkload {
    /// The workload, linked.
    pub fn resolved(&self) -> &Arc<ResolvedWorkload> {
        &self.resolved
    }

    /// Whether a plugin serves its exports (it runs until stopped).
    pub fn serves(&self) -> bool {
        self.serves
    }

    /// Runs its components that export `wasi:cli/run` (see [`Host::run`]).
    pub async fn run(&self) -> i32 {
        self.runs().await
    }

    /// As [`run`](Self::run), as a future of its own.
    pub fn runs(&self) -> impl core::future::Future<Output = i32> + Send + 'static {
        run::run_all(Arc::clone(&self.resolved))
    }

    /// Lets every plugin stop taking work for it, within `grace`.
    pub async fn drain(&self, grace: Duration) {
        let name = &self.resolved.workload.name;
        futures::future::join_all(self.asked.iter().map(|p| p.drain(name, grace))).await;
    }

    /// Releases everything plugins keep for it.
    pub async fn unbind(self) {
        let name = &self.resolved.workload.name;
        for plugin in &self.asked {
            plugin.unbind_workload(name).await;
        }
    }
}
