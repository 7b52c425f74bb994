//! The stack under test: real `redis-server` and `nats-server`, the
//! `keyvalue-redis` and `echo` extensions listening on every transport at
//! once, and workloads of the guest components run by the `host`.
//!
//! Latency is timed inside the guest (`echo-guest` `BENCH=latency`,
//! `kv-guest` `SCENARIO=bench`); throughput runs N copies of a guest as the
//! components `c0`…`cN-1` of one workload, which the host runs concurrently.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use harness::{example, run_host, temp_dir, Extension, HostRun, Nats, Redis};

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
}

/// Redis, NATS and both extensions, each extension serving TCP, Unix,
/// WebSocket and NATS; everything is stopped on drop, extensions first.
pub struct Stack {
    kv: Extension,
    echo: Extension,
    nats: Nats,
    redis: Redis,
    sockets: PathBuf,
}

impl Stack {
    /// Starts the servers and both extensions, ready to serve.
    pub fn start() -> anyhow::Result<Self> {
        let redis = Redis::start()?;
        let nats = Nats::start()?;
        let sockets = temp_dir("bench-sockets")?;
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
        Ok(Self {
            kv,
            echo,
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
        };
        Ok(match transport {
            Transport::Nats => self.nats.url(),
            Transport::Tcp => ext.address("tcp").context("no tcp listener")?.into(),
            Transport::Unix => ext.address("unix").context("no unix listener")?.into(),
            Transport::Ws => ext.address("ws").context("no ws listener")?.into(),
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.sockets);
    }
}

/// A workload of `callers` copies of `guest`, each with `config`, routed to
/// `target`; returns what the host printed, failing unless it exited 0.
fn run_workload(
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
        Guest::Kv => {
            manifest.push_str("wrpc:\n  - wasi:keyvalue\n");
            (
                guests::KV_GUEST,
                vec!["--wrpc-target", target, "--wrpc-timeout", CALL_TIMEOUT],
            )
        }
    };
    let run = run_host(&manifest, component.as_ref(), &args, RUN_LIMIT)?;
    if run.code != Some(0) {
        bail!(
            "{guest:?} workload via {target} failed (exit {:?})\nstdout: {}\nstderr: {}",
            run.code,
            run.stdout,
            run.stderr
        );
    }
    Ok(run)
}

/// Per-call latency of one guest `echo` via `target`, timed in the guest.
pub fn echo_latency(target: &str, warmup: usize, iterations: usize) -> anyhow::Result<Stats> {
    let run = run_workload(
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
    target: &str,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<(Stats, Stats)> {
    let run = run_workload(
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

/// Calls per second of `callers` concurrent copies of `guest` via `target`,
/// each calling in a loop for `duration_ms`.
pub fn throughput(
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
    };
    let run = run_workload(guest, target, callers, &config)?;
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
