//! `host`: runs workloads of Wasm components on Wasmtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use host::plugins::Builtin;
use host::{Builtins, Host, Workload};
use ops::{LogFormat, Readiness};
use tokio_util::sync::CancellationToken;
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

    /// Where each component run's and served call's span goes: --otlp-endpoint and the flags beside it.
    #[command(flatten)]
    otlp: ops::otlp::OtlpArgs,

    /// Serve /healthz, /readyz and /metrics here (HOST:PORT; port 0 picks one, printed as `listening http://…`). Off when unset.
    #[arg(long, env = "WRPC_HTTP_ADDR", global = true)]
    http_addr: Option<SocketAddr>,

    /// Do not ask `wrpc:` targets at start whether they serve what is declared (as `check: false` on every entry).
    #[arg(long, env = "WRPC_NO_CHECK_SERVED", global = true)]
    no_check_served: bool,

    /// Switch off built-in plugins (comma-separated ids: wrpc, exports, logging, config, keyvalue, blobstore).
    #[arg(
        long = "disable-plugin",
        env = "HOST_DISABLE_PLUGINS",
        value_delimiter = ',',
        global = true
    )]
    disable_plugins: Vec<Builtin>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload: serve its `exports:` and run its components; without exports, exit when they finish (with the first failing one's code), else serve until SIGTERM and drain.
    Run {
        /// The workload manifest (YAML).
        workload: PathBuf,
    },
    /// Probe a running host's /readyz (or /healthz with --live): exit 0 when it answers 200. For images without a shell (HEALTHCHECK, exec probes).
    Healthcheck {
        /// Ask /healthz (alive) instead of /readyz (ready).
        #[arg(long)]
        live: bool,
        /// The endpoint (default: WRPC_HTTP_ADDR, else 127.0.0.1:9090).
        addr: Option<String>,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let workload = match cli.command {
        Command::Healthcheck { live, addr } => {
            return ops::probe::run(&addr.unwrap_or_else(ops::probe::default_addr), live);
        }
        Command::Run { workload } => workload,
    };
    ops::logs::init_with(
        cli.log_format,
        // The host's own warnings, and what components log at info and above.
        "warn,guest=info",
        cli.otlp.config().map(|c| (c, "host")),
    );
    ops::metrics::install();
    let result = Workload::load(&workload)
        .map_err(anyhow::Error::from)
        .and_then(|mut workload| {
            if cli.no_check_served {
                workload.skip_served_checks();
            }
            let builtins = Builtins {
                wrpc: Defaults {
                    target: cli.wrpc_target,
                    timeout: cli.wrpc_timeout,
                    idle_timeout: cli.wrpc_idle_timeout,
                    limits: cli.limits.limits(),
                },
                off: cli.disable_plugins,
            };
            // Every export call may run at once, beside every component's run.
            let instances = workload
                .exports
                .iter()
                .map(|e| u32::try_from(e.max_concurrency).unwrap_or(u32::MAX))
                .fold(
                    u32::try_from(workload.components.len()).unwrap_or(u32::MAX),
                    u32::saturating_add,
                );
            tokio::runtime::Runtime::new()?.block_on(async {
                let readiness = Readiness::new();
                if let Some(addr) = cli.http_addr {
                    let endpoint = ops::OpsEndpoint::bind(addr).await?;
                    // For scripts and tests: the port actually bound.
                    println!("listening http://{}", endpoint.local_addr());
                    // Lives as long as the process: /readyz says `draining`
                    // during the drain.
                    endpoint.spawn(readiness.clone(), CancellationToken::new());
                }
                let host = Host::builder()
                    .with_builtins(&builtins)
                    .max_instances(instances)
                    .start()
                    .await?;
                let code = host
                    .run_with_grace(workload, readiness, cli.shutdown_grace)
                    .await;
                host.stop().await;
                code
            })
        });
    ops::otlp::flush(Duration::from_secs(2));
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("host: {err:#}");
            ExitCode::FAILURE
        }
    }
}
