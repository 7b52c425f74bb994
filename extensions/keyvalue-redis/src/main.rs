//! `keyvalue-redis`: serves `wrpc:keyvalue/{store,atomics,batch}@0.2.0-draft` on Redis.

mod error;
mod keys;
mod store;

use std::process::ExitCode;

/// Serve wasi:keyvalue (as wrpc:keyvalue@0.2.0-draft) from Redis over wRPC.
#[derive(Debug, clap::Parser)]
#[command(name = "keyvalue-redis", version, about)]
struct Config {
    #[command(flatten)]
    serve: sdk::ServeArgs,

    #[command(flatten)]
    redis: store::RedisArgs,
}

fn main() -> ExitCode {
    sdk::main("keyvalue-redis", run)
}

impl sdk::Config for Config {
    fn serve_args(&self) -> &sdk::ServeArgs {
        &self.serve
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if config.redis.isolate_namespaces {
        config
            .serve
            .require_namespace_sources("--isolate-namespaces")?;
    }
    let store = store::RedisStore::connect(&config.redis)?;
    let probe = store.clone();
    sdk::Extension::new("keyvalue-redis", config.serve)
        .version(env!("CARGO_PKG_VERSION"))
        .readiness(move || {
            let store = probe.clone();
            async move { store.ping().await }
        })
        .run(sdk::keyvalue::serve(store))
        .await?;
    Ok(())
}
