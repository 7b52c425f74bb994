//! Embeds the host with a plugin of its own: `example:echo/echo`, answered
//! in process in upper case, for workloads that list it under `host:`.
//!
//! ```sh
//! cargo run -p host --example embed -- workload.yaml
//! ```

use host::{Claims, ComponentBinding, Host, HostPlugin, InterfaceName, PluginError, PluginFuture};
use host::{Workload, WorkloadBinding};

/// Serves `example:echo/echo` itself.
struct Shout;

impl HostPlugin for Shout {
    fn id(&self) -> &'static str {
        "shout"
    }

    fn serves(&self) -> Vec<InterfaceName> {
        vec!["example:echo/echo@0.1.0".parse().expect("a valid name")]
    }

    fn bind_workload<'a>(
        &'a self,
        w: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        let claims = w.claim_host_entries(self.id(), &self.serves(), |e| e.no_options());
        Box::pin(async move { claims })
    }

    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        let mut echo = binding
            .linker
            .instance("example:echo/echo@0.1.0")
            .map_err(PluginError::new)?;
        echo.func_wrap("echo", |_, (message,): (String,)| {
            Ok((message.to_uppercase(),))
        })
        .map_err(PluginError::new)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "workload.yaml".into());
    let workload = Workload::load(path.as_ref())?;
    let host = Host::builder()
        .with_builtins(&host::Builtins::default())
        .plugin(Shout)
        .start()
        .await?;
    let code = host.run(workload, ops::Readiness::new()).await?;
    host.stop().await;
    std::process::exit(code)
}
