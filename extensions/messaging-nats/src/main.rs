//! `messaging-nats`: serves `wasmcloud:messaging/consumer@0.2.0` on NATS, and
//! delivers subscriptions to components' `wasmcloud:messaging/handler@0.2.0`
//! (core NATS at most once, JetStream at least once).

mod config;
mod consumer;
mod deliver;
mod subscription;

use core::time::Duration;

use std::process::ExitCode;

/// Serve wasmcloud:messaging over wRPC on NATS, and deliver subscriptions to components' handlers.
#[derive(Debug, clap::Parser)]
#[command(name = "messaging-nats", version, about)]
struct Config {
    #[command(flatten)]
    serve: sdk::ServeArgs,

    #[command(flatten)]
    messaging: config::MessagingArgs,
}

fn main() -> ExitCode {
    sdk::main("messaging-nats", run)
}

impl sdk::Config for Config {
    fn serve_args(&self) -> &sdk::ServeArgs {
        &self.serve
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let Config { serve, messaging } = config;
    messaging.check()?;
    if messaging.isolate_namespaces {
        serve.require_namespace_sources("--isolate-namespaces")?;
    }
    let endpoint = messaging.nats(&serve).map_err(anyhow::Error::msg)?;
    let nats = transport::nats::connect(
        &endpoint,
        "messaging-nats",
        transport::client::NATS_CONNECT_TIMEOUT,
    )
    .await
    .map_err(|err| {
        anyhow::anyhow!(
            "cannot connect to the application's NATS at {}: {err}",
            endpoint.servers.join(",")
        )
    })?;
    let grace = serve.shutdown_grace;
    // Subscribed before `ready` is announced: a message published once the
    // extension says it is ready reaches a subscription.
    let deliveries =
        deliver::Deliveries::start(&nats, &messaging.subscriptions, messaging.handler_timeout)
            .await?;
    let probe = nats.clone();
    let running = sdk::Extension::new("messaging-nats", serve)
        .version(env!("CARGO_PKG_VERSION"))
        .readiness(move || {
            let state = transport::nats::check_connected(&probe)
                .map_err(|why| format!("application {why}"));
            async move { state }
        })
        .start(sdk::messaging::serve(consumer::Consumer::new(
            nats.clone(),
            messaging.max_request_timeout,
            messaging.isolate_namespaces,
        )))
        .await?;
    sdk::shutdown_signal().await;
    // Stop taking messages and stop accepting calls together; both drain
    // within the grace period.
    tokio::join!(
        deliveries.stop(grace),
        running.stop_after(std::future::ready(()))
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), nats.drain()).await;
    Ok(())
}
