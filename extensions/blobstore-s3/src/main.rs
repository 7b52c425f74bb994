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

/// Serve wasi:blobstore (as wrpc:blobstore@0.2.0) from S3 over wRPC.
#[derive(Debug, clap::Parser)]
#[command(name = "blobstore-s3", version, about)]
struct Config {
    #[command(flatten)]
    serve: sdk::ServeArgs,

    #[command(flatten)]
    s3: config::S3Args,
}

fn main() -> ExitCode {
    sdk::main("blobstore-s3", run)
}

impl sdk::Config for Config {
    fn serve_args(&self) -> &sdk::ServeArgs {
        &self.serve
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if config.s3.isolate_namespaces {
        config
            .serve
            .require_namespace_sources("--isolate-namespaces")?;
    }
    let store = store::S3Store::new(config.s3.client().await?, &config.s3);
    let probe = store.clone();
    sdk::Extension::new("blobstore-s3", config.serve)
        .version(env!("CARGO_PKG_VERSION"))
        .readiness(move || {
            let store = probe.clone();
            async move { store.ping().await }
        })
        .run(admin::All(
            sdk::blobstore::serve(store.clone()),
            admin::serve(admin::Admin(store)),
        ))
        .await?;
    Ok(())
}
