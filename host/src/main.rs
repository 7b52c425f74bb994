//! `host`: runs workloads of Wasm components on Wasmtime.

mod cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use host::plugins::{Builtin, HttpLimits, HttpServer};
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
    #[arg(long, env = "WRPC_TARGET", hide_env_values = true, global = true)]
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

    /// Answer HTTP requests here (HOST:PORT; port 0 picks one, printed as `serving HTTP on http://…`): workloads with an `http:` route. Off when unset.
    #[arg(long, env = "HOST_HTTP_LISTEN", global = true)]
    http_listen: Option<SocketAddr>,

    /// Do not ask `wrpc:` targets at start whether they serve what is declared (as `check: false` on every entry).
    #[arg(long, env = "WRPC_NO_CHECK_SERVED", global = true)]
    no_check_served: bool,

    /// Switch off built-in plugins (comma-separated ids: wrpc, exports, logging, config, keyvalue, blobstore, http).
    #[arg(
        long = "disable-plugin",
        env = "HOST_DISABLE_PLUGINS",
        value_delimiter = ',',
        global = true
    )]
    disable_plugins: Vec<Builtin>,

    #[command(flatten)]
    sources: cmd::SourceArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload: serve its `exports:` and `http:` route and run its components; without either, exit when they finish (with the first failing one's code), else serve until SIGTERM and drain.
    Run {
        /// The workload manifest (YAML).
        workload: PathBuf,
    },
    /// Run as a service: any number of workloads, started, updated and stopped through the Host API (HTTP on --http-addr, NATS with --control-url), heartbeats on NATS; SIGTERM drains them all.
    Serve(cmd::serve::ServeArgs),
    /// Ask a running host (`host serve`) through its Host API: start, update, stop, status, list, info.
    Ctl(cmd::ctl::CtlArgs),
    /// Publish a component to an OCI registry (REGISTRY/REPO:TAG); prints the pinned reference (…@sha256:…).
    Push {
        /// The component (.wasm).
        file: PathBuf,
        /// Where to (registry/repo:tag).
        reference: String,
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
    if let Some(why) = transport::endpoint::command_line_secret_error() {
        eprintln!("host: {why}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let (workload, serve) = match cli.command {
        Command::Healthcheck { live, addr } => {
            return ops::probe::run(&addr.unwrap_or_else(ops::probe::default_addr), live);
        }
        Command::Ctl(args) => return cmd::ctl::run(args),
        Command::Push {
            ref file,
            ref reference,
        } => return push(&cli.sources, file, reference),
        Command::Run { ref workload } => (Some(workload.clone()), None),
        Command::Serve(ref args) => (None, Some(args)),
    };
    ops::logs::init_with(
        cli.log_format,
        // The host's own warnings (and, serving, when each workload starts
        // and stops), and what components log at info and above.
        if serve.is_some() {
            "warn,host::supervisor=info,guest=info"
        } else {
            "warn,guest=info"
        },
        cli.otlp.config().map(|c| (c, "host")),
    );
    ops::metrics::install();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                match (workload, serve) {
                    (Some(path), _) => run(&cli, &path).await,
                    (None, Some(args)) => {
                        let started = start(&cli, 0).await?;
                        cmd::serve::run(started, args.clone()).await
                    }
                    (None, None) => unreachable!("every other command returned"),
                }
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

/// The built-in plugins as the flags say.
fn builtins(cli: &Cli) -> Builtins {
    Builtins {
        wrpc: Defaults {
            target: cli.wrpc_target.clone(),
            timeout: cli.wrpc_timeout,
            idle_timeout: cli.wrpc_idle_timeout,
            limits: cli.limits.limits(),
        },
        off: cli.disable_plugins.clone(),
        shutdown_grace: cli.shutdown_grace,
        ..Builtins::default()
    }
}

/// Binds the ops endpoint and the HTTP listener (printing their addresses)
/// and starts the host with room for `instances` at once.
async fn start(cli: &Cli, instances: u32) -> anyhow::Result<cmd::serve::Started> {
    let readiness = Readiness::new();
    let endpoint = match cli.http_addr {
        Some(addr) => {
            let endpoint = ops::OpsEndpoint::bind(addr).await?;
            // For scripts and tests: the port actually bound.
            println!("listening http://{}", endpoint.local_addr());
            Some(endpoint)
        }
        None => None,
    };
    let mut builtins = builtins(cli);
    let mut http = None;
    if let Some(addr) = cli.http_listen {
        let server = HttpServer::bind(addr, HttpLimits::default()).await?;
        // For scripts and tests: the port actually bound.
        println!("serving HTTP on http://{}", server.local_addr());
        http = Some(server.local_addr().to_string());
        builtins.http = Some(Arc::new(server));
    }
    let host = Host::builder()
        .with_builtins(&builtins)
        .sources(cli.sources.sources())
        .max_instances(instances)
        .start()
        .await?;
    Ok(cmd::serve::Started {
        host: Arc::new(host),
        readiness,
        endpoint,
        http,
        default_target: cli.wrpc_target.as_ref().map(ToString::to_string),
        grace: cli.shutdown_grace,
    })
}

/// `host run`: one workload.
async fn run(cli: &Cli, path: &std::path::Path) -> anyhow::Result<i32> {
    let mut workload = Workload::load(path)?;
    if cli.no_check_served {
        workload.skip_served_checks();
    }
    // Every export call may run at once, beside every component's run.
    let instances = workload
        .exports
        .iter()
        .map(|e| u32::try_from(e.max_concurrency).unwrap_or(u32::MAX))
        .fold(
            u32::try_from(workload.components.len()).unwrap_or(u32::MAX),
            u32::saturating_add,
        );
    let started = start(cli, instances).await?;
    if let Some(endpoint) = started.endpoint {
        // Lives as long as the process: /readyz says `draining` during the drain.
        endpoint.spawn(started.readiness.clone(), CancellationToken::new());
    }
    let code = started
        .host
        .run_with_grace(workload, started.readiness, cli.shutdown_grace)
        .await;
    started.host.stop().await;
    code
}

/// `host push FILE REFERENCE`.
fn push(sources: &cmd::SourceArgs, file: &std::path::Path, reference: &str) -> ExitCode {
    let options = sources.sources().oci.unwrap_or_else(|| {
        let mut o = host_oci::Options::new(std::env::temp_dir().join("wasmhost-oci"));
        o.insecure.clone_from(&sources.insecure_registries);
        o
    });
    let pushed = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(host_oci::push(file, reference, &options))
                .map_err(anyhow::Error::from)
        });
    match pushed {
        Ok(pushed) => {
            println!("{}", pushed.pinned);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("host push: {err:#}");
            ExitCode::FAILURE
        }
    }
}
