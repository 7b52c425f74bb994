//! `cargo run --release -p bench`: the latency of one guest `get` through the
//! whole stack (guest → host plugin → wRPC → keyvalue-redis → Redis), over TCP
//! and over NATS, next to two baselines measured in the same run: a direct
//! in-process host call from the guest, and a native redis-rs GET.
//!
//! Build the release binaries first (`cargo build --release --workspace`);
//! child processes inherit this process's CPU affinity, so run it under
//! `taskset -c 0` to measure everything on one core.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use harness::{run_host, Extension, Nats, Redis};

/// Measure per-call latency of wasi:keyvalue get over wRPC.
#[derive(Debug, Parser)]
struct Args {
    /// Calls measured per path.
    #[arg(long, env = "BENCH_ITERATIONS", default_value_t = 5000)]
    iterations: usize,
}

/// Median and 99th percentile, in nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Stats {
    median: f64,
    p99: f64,
}

impl Stats {
    fn of(mut samples: Vec<u128>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64;
        Self {
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let redis = Redis::start()?;
    let nats = Nats::start()?;
    let ext = Extension::start(
        "keyvalue-redis",
        &["--redis-url".into(), redis.url()],
        &[nats.url(), "tcp://127.0.0.1:0".into()],
    )?;
    let native = native_get(&redis.url(), args.iterations)?;
    let (host_call, tcp) = guest_get(ext.address("tcp").context("tcp")?, args.iterations)?;
    let (_, over_nats) = guest_get(&nats.url(), args.iterations)?;

    println!("placement: CPUs {} ({} online)", affinity(), online());
    println!(
        "iterations: {} per path (after 200 warm-up calls)\n",
        args.iterations
    );
    println!("| path | median µs | p99 µs | median ÷ redis-rs GET |");
    println!("|---|---:|---:|---:|");
    let rows = [
        (
            "guest → in-process host call (monotonic-clock.now)",
            host_call,
        ),
        ("native redis-rs GET (baseline)", native),
        ("guest get → wRPC TCP → keyvalue-redis → Redis", tcp),
        ("guest get → wRPC NATS → keyvalue-redis → Redis", over_nats),
    ];
    for (name, s) in rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.2} |",
            s.median / 1e3,
            s.p99 / 1e3,
            s.median / native.median
        );
    }
    println!(
        "\nNATS ÷ TCP (median): {:.2}",
        over_nats.median / tcp.median
    );
    Ok(())
}

/// GET of a 16-byte value with redis-rs's multiplexed async connection.
fn native_get(url: &str, iterations: usize) -> anyhow::Result<Stats> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SET")
            .arg("native")
            .arg("0123456789abcdef")
            .query_async::<()>(&mut conn)
            .await?;
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations + 200 {
            let start = Instant::now();
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg("native")
                .query_async(&mut conn)
                .await?;
            if i >= 200 {
                samples.push(start.elapsed().as_nanos());
            }
            anyhow::ensure!(v.is_some(), "native GET found nothing");
        }
        Ok(Stats::of(samples))
    })
}

/// Runs the guest's bench scenario through `target`: (host call, get).
fn guest_get(target: &str, iterations: usize) -> anyhow::Result<(Stats, Stats)> {
    let manifest = format!(
        "name: bench\ncomponents:\n  - name: api\n    file: ./guest.wasm\n    config: {{ SCENARIO: bench, BUCKET: bench, ITERATIONS: {iterations} }}\nwrpc:\n  - wasi:keyvalue\n"
    );
    let run = run_host(
        &manifest,
        guests::KV_GUEST.as_ref(),
        &["--wrpc-target", target],
        Duration::from_secs(600),
    )?;
    if run.code != Some(0) {
        bail!("bench guest failed over {target}: {run:#?}");
    }
    let parse = |name: &str| -> anyhow::Result<Stats> {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("bench {name}:")))
            .with_context(|| format!("no `{name}` line in {}", run.stdout))?;
        let field = |key: &str| -> anyhow::Result<f64> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .context("missing field")?
                .parse()
                .context("bad number")
        };
        Ok(Stats {
            median: field("median_ns=")?,
            p99: field("p99_ns=")?,
        })
    };
    Ok((parse("host-call")?, parse("get")?))
}

fn affinity() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn online() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}
