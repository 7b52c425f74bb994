//! `host`: runs workloads of Wasm components, routing declared imports over wRPC.

mod exports;
mod runtime;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use transport::ClientLimitArgs;
use wrpc_client_plugin::{Defaults, Endpoint};

/// Run workloads of WebAssembly components on Wasmtime.
#[derive(Debug, Parser)]
#[command(name = "host", version, about)]
struct Cli {
    /// Default target for `wrpc:` entries without one: nats://[CREDENTIALS@]HOST[:PORT][/PREFIX][?options], tcp://HOST:PORT, unix:///PATH, ws://HOST[:PORT][/PATH] or wss://….
    #[arg(long, env = "WRPC_TARGET", global = true)]
    wrpc_target: Option<Endpoint>,

    /// Default deadline of each wRPC call's synchronous part (at most 10 years).
    #[arg(long, env = "WRPC_TIMEOUT", default_value = "10s", value_parser = transport::parse_duration, global = true)]
    wrpc_timeout: Duration,

    /// Default longest pause of a streamed value in a wRPC call (at most 10 years).
    #[arg(long, env = "WRPC_IDLE_TIMEOUT", default_value = "30s", value_parser = transport::parse_duration, global = true)]
    wrpc_idle_timeout: Duration,

    #[command(flatten)]
    limits: ClientLimitArgs,

    /// How long calls to the workload's exports may run after SIGTERM or ctrl-c.
    #[arg(long, env = "HOST_SHUTDOWN_GRACE", default_value = "10s", value_parser = transport::parse_duration, global = true)]
    shutdown_grace: Duration,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload: serve its `exports:` and run its components; without exports, exit when they finish (with the first failing one's code), else serve until SIGTERM and drain.
    Run {
        /// The workload manifest (YAML).
        workload: PathBuf,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // async-nats logs its own line for a failed connect, which the host's
    // error already reports: keep fatal errors to one line.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,async_nats::connector=off"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let Command::Run { workload } = cli.command;
    let result = workload::Workload::load(&workload)
        .map_err(anyhow::Error::from)
        .and_then(|workload| {
            let defaults = Defaults {
                target: cli.wrpc_target,
                timeout: cli.wrpc_timeout,
                idle_timeout: cli.wrpc_idle_timeout,
                limits: cli.limits.limits(),
            };
            tokio::runtime::Runtime::new()?.block_on(runtime::run(
                workload,
                defaults,
                cli.shutdown_grace,
            ))
        });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("host: {err:#}");
            ExitCode::FAILURE
        }
    }
}
