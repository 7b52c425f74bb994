//! `host ctl`: the Host API from the command line, over HTTP (`--api
//! HOST:PORT`, a host's `--http-addr`) or NATS (`--nats URL --host-id ID`).
//! Prints the reply's JSON; exits 0 when it succeeded, 1 when not.

use core::time::Duration;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Args, Subcommand};
use host::control::nats::{Subjects, DEFAULT_PREFIX};
use http_body_util::{BodyExt as _, Full};
use serde_json::{json, Value};
use transport::Endpoint;

/// `host ctl`'s options.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The host's ops address (HOST:PORT, its --http-addr).
    #[arg(long, env = "HOST_API")]
    api: Option<String>,

    /// Ask over NATS instead (nats://…; needs --host-id).
    #[arg(
        long,
        env = "HOST_CONTROL_URL",
        hide_env_values = true,
        conflicts_with = "api"
    )]
    nats: Option<Endpoint>,

    /// The host's id (with --nats).
    #[arg(long, env = "HOST_ID")]
    host_id: Option<String>,

    /// The subject prefix (with --nats).
    #[arg(long, env = "HOST_CONTROL_PREFIX", default_value = DEFAULT_PREFIX)]
    prefix: String,

    /// The bearer token the host asks for (with --api).
    #[arg(long, env = "HOST_CONTROL_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// How long to wait for the reply.
    #[arg(long, env = "HOST_CTL_TIMEOUT", default_value = "120s", value_parser = transport::parse_duration)]
    timeout: Duration,

    #[command(subcommand)]
    op: CtlOp,
}

#[derive(Debug, Subcommand)]
enum CtlOp {
    /// Start the workload of a manifest (its relative paths resolved against its directory, on the host's file system).
    Start { manifest: PathBuf },
    /// Replace the running workload of the manifest's name.
    Update { manifest: PathBuf },
    /// Stop a workload.
    Stop { name: String },
    /// A workload's status.
    Status { name: String },
    /// Every workload's status.
    List,
    /// What the host is and supports.
    Info,
}

/// `{"workload": …, "base": DIR}` from a manifest file.
fn workload_request(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let workload: Value =
        serde_yaml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let dir = std::fs::canonicalize(path)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok(json!({ "workload": workload, "base": dir })
        .to_string()
        .into_bytes())
}

/// Runs `host ctl`.
pub fn run(args: CtlArgs) -> ExitCode {
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(ask(&args)));
    match outcome {
        Ok((status, body)) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
            );
            if status < 300 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("host ctl: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn ask(args: &CtlArgs) -> anyhow::Result<(u16, Value)> {
    let (method, path, op, payload) = match &args.op {
        CtlOp::Start { manifest } => (
            "POST",
            "/v1/workloads".to_string(),
            "start",
            workload_request(manifest)?,
        ),
        CtlOp::Update { manifest } => {
            let body = workload_request(manifest)?;
            let name: Value = serde_json::from_slice(&body)?;
            let name = name["workload"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            ("PUT", format!("/v1/workloads/{name}"), "update", body)
        }
        CtlOp::Stop { name } => (
            "DELETE",
            format!("/v1/workloads/{name}"),
            "stop",
            named(name),
        ),
        CtlOp::Status { name } => (
            "GET",
            format!("/v1/workloads/{name}"),
            "status",
            named(name),
        ),
        CtlOp::List => ("GET", "/v1/workloads".to_string(), "list", b"{}".to_vec()),
        CtlOp::Info => ("GET", "/v1/host".to_string(), "info", b"{}".to_vec()),
    };
    let asked = async {
        match (&args.api, &args.nats) {
            (_, Some(url)) => over_nats(args, url, op, payload).await,
            (Some(api), None) => {
                over_http(api, args.token.as_deref(), method, &path, payload).await
            }
            (None, None) => {
                anyhow::bail!("say where the host is: --api HOST:PORT or --nats URL --host-id ID")
            }
        }
    };
    tokio::time::timeout(args.timeout, asked)
        .await
        .with_context(|| format!("no reply within {:?}", args.timeout))?
}

fn named(name: &str) -> Vec<u8> {
    json!({ "name": name }).to_string().into_bytes()
}

async fn over_http(
    api: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    payload: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let stream = tokio::net::TcpStream::connect(api)
        .await
        .with_context(|| format!("cannot connect to {api}"))?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, api)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = if method == "GET" || method == "DELETE" {
        Vec::new()
    } else {
        payload
    };
    let response = send
        .send_request(request.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| json!({ "error": { "kind": "http", "message": String::from_utf8_lossy(&bytes) } }),
    );
    Ok((status, body))
}

async fn over_nats(
    args: &CtlArgs,
    url: &Endpoint,
    op: &str,
    payload: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let Endpoint::Nats(nats) = url else {
        anyhow::bail!("--nats {url}: not a nats:// address");
    };
    let id = args.host_id.as_deref().context("--nats needs --host-id")?;
    let client = transport::nats::connect(nats, "host ctl", Duration::from_secs(10)).await?;
    let subjects = Subjects::new(&args.prefix, id);
    let subject = if op == "info" {
        subjects.info()
    } else {
        subjects.workload(op)
    };
    let reply = client
        .request(subject.clone(), payload.into())
        .await
        .with_context(|| format!("no answer on {subject} (is host `{id}` connected?)"))?;
    let reply: Value = serde_json::from_slice(&reply.payload)?;
    let status = reply["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(500);
    Ok((status, reply["body"].clone()))
}
