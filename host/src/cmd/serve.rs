//! `host serve`: a long-running host. Workloads start with it (manifests
//! given) and through the Host API (HTTP on `--http-addr`, NATS with
//! `--control-url`); SIGTERM drains every one within the grace period.

use core::time::Duration;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use host::control::info::Identity;
use host::control::nats::{Subjects, DEFAULT_PREFIX};
use host::supervisor::Supervisor;
use host::{Host, Workload};
use ops::{OpsEndpoint, Readiness};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transport::Endpoint;

use super::{key_value, labels};

/// `host serve`'s own options.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Workload manifests to start with the host (more come through the Host API).
    pub workloads: Vec<PathBuf>,

    /// Answer the Host API over NATS request/reply and publish heartbeats here (nats://…). Off when unset.
    #[arg(long, env = "HOST_CONTROL_URL", hide_env_values = true)]
    pub control_url: Option<Endpoint>,

    /// The subject prefix of the Host API and heartbeats.
    #[arg(long, env = "HOST_CONTROL_PREFIX", default_value = DEFAULT_PREFIX)]
    pub control_prefix: String,

    /// This host's id, the token after the prefix in its subjects (letters, digits, `-`, `_`; default: the machine's host name).
    #[arg(long, env = "HOST_ID")]
    pub host_id: Option<String>,

    /// A label schedulers read in the heartbeat (KEY=VALUE; repeatable, or comma-separated in the variable).
    #[arg(long = "label", env = "HOST_LABELS", value_delimiter = ',', value_parser = key_value)]
    pub labels: Vec<(String, String)>,

    /// How often a heartbeat is published.
    #[arg(long, env = "HOST_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = transport::parse_duration)]
    pub heartbeat_interval: Duration,

    /// A bearer token every Host API request over HTTP must carry. Read it from the environment, not the command line.
    #[arg(long, env = "HOST_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
}

/// What `main` made for the host before it serves.
pub struct Started {
    /// The host.
    pub host: Arc<Host>,
    /// Its readiness.
    pub readiness: Readiness,
    /// Its ops endpoint, bound but not serving yet.
    pub endpoint: Option<OpsEndpoint>,
    /// Where `http:` routes are served.
    pub http: Option<String>,
    /// The default `wrpc:` target.
    pub default_target: Option<String>,
    /// How long a stopping workload may drain.
    pub grace: Duration,
}

/// The host id: given, or the machine's host name, checked as a subject token.
fn host_id(given: Option<String>) -> anyhow::Result<String> {
    let id = match given {
        Some(id) => id,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| {
                h.trim().replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
                    "-",
                )
            })
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into()),
    };
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        anyhow::bail!(
            "--host-id `{id}`: use letters, digits, `-` and `_` only (it is a NATS subject token)"
        );
    }
    Ok(id)
}

/// Serves until SIGTERM or ctrl-c, then drains every workload.
///
/// # Errors
///
/// The host id is not valid, or the control connection cannot be made.
pub async fn run(started: Started, args: ServeArgs) -> anyhow::Result<i32> {
    let id = host_id(args.host_id)?;
    let supervisor = Supervisor::new(
        Arc::clone(&started.host),
        started.readiness.clone(),
        started.grace,
    );
    let mut identity = Identity::new(id.clone(), labels(&args.labels));
    identity.http = started.http;
    identity.default_target = started.default_target;
    let identity = Arc::new(identity);
    if let Some(endpoint) = started.endpoint {
        let routes = host::control::http::routes(
            Arc::clone(&supervisor),
            Arc::clone(&identity),
            args.control_token,
        );
        endpoint
            .with_routes(routes)
            .spawn(started.readiness.clone(), CancellationToken::new());
    }
    if let Some(url) = &args.control_url {
        let Endpoint::Nats(nats) = url else {
            anyhow::bail!("--control-url {url}: the Host API is served over NATS (nats://…)");
        };
        let client = transport::nats::connect(nats, &format!("host {id}"), Duration::from_secs(10))
            .await
            .with_context(|| format!("--control-url {url}"))?;
        let subjects = Subjects::new(&args.control_prefix, &id);
        host::control::nats::serve(
            client,
            subjects.clone(),
            Arc::clone(&supervisor),
            Arc::clone(&identity),
            args.heartbeat_interval,
        )
        .await
        .context("cannot subscribe to the Host API's subjects")?;
        // For scripts and tests: where to ask.
        println!("control on {}", subjects.workload("*"));
    }
    for path in &args.workloads {
        let started = Workload::load(path)
            .map_err(anyhow::Error::from)
            .map(|w| supervisor.start(w));
        match started {
            Ok(start) => {
                if let Err(err) = start.await {
                    warn!("{}: {err}", path.display());
                    eprintln!("host: {err}");
                }
            }
            Err(err) => eprintln!("host: {err:#}"),
        }
    }
    started.readiness.set_started();
    println!("ready");
    transport::server::shutdown_signal().await;
    info!("shutting down: draining every workload");
    started.readiness.set_draining();
    supervisor.shutdown().await;
    started.host.stop().await;
    Ok(0)
}
