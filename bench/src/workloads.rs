//! The stack under test: real `redis-server` and `nats-server`, the
//! `keyvalue-redis` and `echo` extensions listening on every transport at
//! once, and workloads of the guest components run by the `host`.
//!
//! Latency is timed inside the guest (`echo-guest` `BENCH=latency`,
//! `kv-guest` `SCENARIO=bench`, `streams-guest` `BENCH=latency`); throughput
//! runs N copies of a guest as the components `c0`…`cN-1` of one workload,
//! which the host runs concurrently. Every workload is run by the host
//! binary it is given (`bench compare` runs two builds' hosts).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use harness::{example, run_host_at, Extension, HostRun, Nats, Redis, TempDir};

use crate::report::{field, Rate, Stats, Transport};

/// The longest a single host run may take before it counts as a hang.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Per-call deadline in the workloads: far above any latency measured.
const CALL_TIMEOUT: &str = "30s";

/// Which guest a workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guest {
    /// `echo-guest` calling `example:echo/echo.echo` (the generic path).
    Echo,
    /// `kv-guest` calling `wasi:keyvalue/store` `get` (the adapted path).
    Kv,
    /// `streams-guest`, a WASI 0.3 command, calling the `async func`
    /// `greet` of `example:streams/bytes` (the generic path, async import).
    P3Greet,
}

/// Redis, NATS and the extensions, each extension serving TCP, Unix,
/// WebSocket and NATS; everything is stopped on drop, extensions first.
pub struct Stack {
    kv: Extension,
    echo: Extension,
    /// The `bytes` example, for [`Guest::P3Greet`] ([`Stack::start_with_bytes`]).
    bytes: Option<Extension>,
    nats: Nats,
    redis: Redis,
    sockets: TempDir,
}

impl Stack {
    /// Starts the servers and both extensions, ready to serve.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// Like [`Stack::start`], also serving `example:streams/bytes` (the
    /// sdk's `bytes` example) for [`Guest::P3Greet`].
    pub fn start_with_bytes() -> anyhow::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(bytes: bool) -> anyhow::Result<Self> {
        let redis = Redis::start()?;
        let nats = Nats::start()?;
        let sockets = TempDir::new("bench-sockets")?;
        let listen = |name: &str| {
            vec![
                nats.url(),
                "tcp://127.0.0.1:0".to_string(),
                format!("unix://{}", sockets.join(format!("{name}.sock")).display()),
                "ws://127.0.0.1:0/wrpc".to_string(),
            ]
        };
        let kv = Extension::start(
            "keyvalue-redis",
            &["--redis-url".into(), redis.url()],
            &listen("kv"),
        )?;
        let echo = Extension::start_at(&example("echo")?, &[], &listen("echo"))?;
        let bytes = if bytes {
            Some(Extension::start_at(
                &example("bytes")?,
                &[],
                &listen("bytes"),
            )?)
        } else {
            None
        };
        Ok(Self {
            kv,
            echo,
            bytes,
            nats,
            redis,
            sockets,
        })
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn redis_url(&self) -> String {
        self.redis.url()
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn nats_url(&self) -> String {
        self.nats.url()
    }

    /// A directory for the bench's own sockets, removed with the stack.
    pub fn socket_dir(&self) -> &std::path::Path {
        &self.sockets
    }

    /// The target a workload routes `guest`'s calls to over `transport`.
    pub fn target(&self, guest: Guest, transport: Transport) -> anyhow::Result<String> {
        let ext = match guest {
            Guest::Echo => &self.echo,
            Guest::Kv => &self.kv,
            Guest::P3Greet => self
                .bytes
                .as_ref()
                .context("the stack serves no `bytes` extension (Stack::start_with_bytes)")?,
        };
        Ok(match transport {
            Transport::Nats => self.nats.url(),
            Transport::Tcp => ext.address("tcp").context("no tcp listener")?.into(),
            Transport::Unix => ext.address("unix").context("no unix listener")?.into(),
            Transport::Ws => ext.address("ws").context("no ws listener")?.into(),
        })
    }
}

/// A workload of `callers` copies of `guest`, each with `config`, routed to
/// `target`, run by the host binary `host`; returns what the host printed,
/// failing unless it exited 0.
fn run_workload(
    host: &Path,
    guest: Guest,
    target: &str,
    callers: usize,
    config: &[(&str, String)],
) -> anyhow::Result<HostRun> {
    let config = config
        .iter()
        .map(|(k, v)| format!("{k}: \"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut manifest = String::from("name: bench\nnamespace: bench\ncomponents:\n");
    for i in 0..callers {
        let _ = writeln!(
            manifest,
            "  - name: c{i}\n    file: ./guest.wasm\n    config: {{ {config} }}"
        );
    }
    let (component, args): (&str, Vec<&str>) = match guest {
        Guest::Echo => {
            let _ = write!(
                manifest,
                "wrpc:\n  - interface: example:echo/echo\n    target: \"{target}\"\n    timeout: {CALL_TIMEOUT}\n"
            );
            (guests::ECHO_GUEST, Vec::new())
        }
        Guest::P3Greet => {
            let _ = write!(
                manifest,
                "wrpc:\n  - interface: example:streams/bytes\n    target: \"{target}\"\n    timeout: {CALL_TIMEOUT}\n"
            );
            (guests::STREAMS_GUEST, Vec::new())
        }
        Guest::Kv => {
            manifest.push_str("wrpc:\n  - wasi:keyvalue\n");
            (
                guests::KV_GUEST,
                vec!["--wrpc-target", target, "--wrpc-timeout", CALL_TIMEOUT],
            )
        }
    };
    let run = run_host_at(host, &manifest, component.as_ref(), &args, RUN_LIMIT)?;
    if run.code != Some(0) {
        bail!(
            "{guest:?} workload via {target} on {} failed (exit {:?})\nstdout: {}\nstderr: {}",
            host.display(),
            run.code,
            run.stdout,
            run.stderr
        );
    }
    Ok(run)
}

/// Per-call latency of one guest `echo` via `target`, timed in the guest.
pub fn echo_latency(
    host: &Path,
    target: &str,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<Stats> {
    let run = run_workload(
        host,
        Guest::Echo,
        target,
        1,
        &[
            ("BENCH", "latency".into()),
            ("WARMUP", warmup.to_string()),
            ("ITERATIONS", iterations.to_string()),
        ],
    )?;
    Stats::parse(&run.stdout, "echo")
}

/// Per-call latency of one guest `get` via `target` and of an in-process
/// host call (`wasi:clocks` now), timed in the guest: (host call, get).
pub fn kv_latency(
    host: &Path,
    target: &str,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<(Stats, Stats)> {
    let run = run_workload(
        host,
        Guest::Kv,
        target,
        1,
        &[
            ("SCENARIO", "bench".into()),
            ("BUCKET", "bench".into()),
            ("WARMUP", warmup.to_string()),
            ("ITERATIONS", iterations.to_string()),
        ],
    )?;
    Ok((
        Stats::parse(&run.stdout, "host-call")?,
        Stats::parse(&run.stdout, "get")?,
    ))
}

/// Per-call latency of one WASI 0.3 guest's `greet` (an `async func`) via
/// `target`, timed in the guest.
pub fn p3_latency(
    host: &Path,
    target: &str,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<Stats> {
    let run = run_workload(
        host,
        Guest::P3Greet,
        target,
        1,
        &[
            ("BENCH", "latency".into()),
            ("WARMUP", warmup.to_string()),
            ("ITERATIONS", iterations.to_string()),
        ],
    )?;
    Stats::parse(&run.stdout, "p3-greet")
}

/// The name of a throughput row, e.g. `guest echo over TCP`.
pub fn throughput_path(guest: Guest, t: Transport) -> String {
    match guest {
        Guest::Echo => format!("guest echo over {}", t.label()),
        Guest::Kv => format!("guest kv get over {}", t.label()),
        Guest::P3Greet => format!("WASI 0.3 guest greet over {}", t.label()),
    }
}

/// Calls per second of `callers` concurrent copies of `guest` via `target`,
/// each calling in a loop for `duration_ms`.
pub fn throughput(
    host: &Path,
    guest: Guest,
    target: &str,
    callers: usize,
    duration_ms: u64,
) -> anyhow::Result<Rate> {
    let duration = ("DURATION_MS", duration_ms.to_string());
    let config = match guest {
        Guest::Echo => vec![("BENCH", "throughput".into()), duration],
        Guest::Kv => vec![
            ("SCENARIO", "throughput".into()),
            ("BUCKET", "bench".into()),
            duration,
        ],
        Guest::P3Greet => bail!("streams-guest has no throughput mode"),
    };
    let run = run_workload(host, guest, target, callers, &config)?;
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("bench throughput:"))
        .collect();
    if lines.len() != callers {
        bail!(
            "{} of {callers} callers reported a count: {}",
            lines.len(),
            run.stdout
        );
    }
    let mut calls = 0u64;
    let (mut first, mut last) = (u128::MAX, 0u128);
    for line in lines {
        calls += field::<u64>(line, "calls=")?;
        first = first.min(field(line, "start_unix_ns=")?);
        last = last.max(field(line, "end_unix_ns=")?);
    }
    anyhow::ensure!(last > first, "the callers reported an empty window");
    Ok(Rate {
        callers,
        calls,
        window_secs: (last - first) as f64 / 1e9,
    })
}
