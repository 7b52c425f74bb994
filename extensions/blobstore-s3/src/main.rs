//! `blobstore-s3`: serves `wrpc:blobstore/blobstore@0.2.0` (what guests'
//! `wasi:blobstore` travels as) and `blobstore-s3:admin/containers@0.1.0`
//! on S3 or any S3-compatible store.

mod admin;
mod config;
mod errors;
mod names;
mod store;
mod upload;

use std::process::ExitCode;

use clap::Parser;

/// Serve wasi:blobstore (as wrpc:blobstore@0.2.0) from S3 over wRPC.
#[derive(Debug, Parser)]
#[command(name = "blobstore-s3", version, about)]
struct Config {
    #[command(flatten)]
    serve: sdk::ServeArgs,

    #[command(flatten)]
    s3: config::S3Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(code) = sdk::health_check_command() {
        return code;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::parse();
    config.serve.init_logs("blobstore-s3");
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("blobstore-s3: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    config.serve.validate()?;
    let store = store::S3Store::new(config.s3.client().await?, &config.s3);
    let probe = store.clone();
    sdk::Extension::new("blobstore-s3", config.serve)
        .readiness(move || {
            let store = probe.clone();
            async move { store.ping().await }
        })
        .run(admin::All(
            sdk::blobstore::serve(store.clone()),
            admin::Admin(store),
        ))
        .await?;
    Ok(())
}
