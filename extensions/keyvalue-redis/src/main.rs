//! `keyvalue-redis`: serves `wrpc:keyvalue/{store,atomics,batch}@0.2.0-draft` on Redis.

mod error;
mod keys;
mod store;

use std::process::ExitCode;

use clap::Parser;

/// Serve wasi:keyvalue (as wrpc:keyvalue@0.2.0-draft) from Redis over wRPC.
#[derive(Debug, Parser)]
#[command(name = "keyvalue-redis", version, about)]
struct Config {
    #[command(flatten)]
    serve: sdk::ServeArgs,

    #[command(flatten)]
    redis: store::RedisArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(code) = sdk::health_check_command() {
        return code;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::parse();
    config.serve.init_logs("keyvalue-redis");
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("keyvalue-redis: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    config.serve.validate()?;
    let store = store::RedisStore::connect(&config.redis)?;
    let probe = store.clone();
    sdk::Extension::new("keyvalue-redis", config.serve)
        .readiness(move || {
            let store = probe.clone();
            async move { store.ping().await }
        })
        .run(sdk::keyvalue::serve(store))
        .await?;
    Ok(())
}
