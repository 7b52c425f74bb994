//! `bench local`: what stays in the host process, next to the same calls
//! over a socket, in one run.
//!
//! - **Component → component.** `echo-guest` (`BENCH=latency`) importing
//!   `example:echo/echo@0.1.0` from an `echo-service` component of the same
//!   workload (an in-process link: the host's trampoline calls the
//!   exporter's instance in the same store), next to the same guest calling
//!   the echo extension over Unix and over TCP (the rows `guest echo →
//!   Unix/TCP → echo extension` of the main run).
//! - **Embedded keyvalue.** `kv-guest` (`SCENARIO=bench`) against the
//!   host's own `wasi:keyvalue` plugin (a `host:` entry, in memory), next to
//!   the same guest through `keyvalue-redis` and Redis over Unix.
//!
//! Each group's rows are measured one right after the other, `--rounds`
//! times (default 5), the order rotating every round; the tables show the
//! medians over rounds (one host process can land 30 % off another of the
//! same binary on these machines). Ratios are to the Unix row of the group.
//! Every manifest is built with [`harness::workload::Workload`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use harness::workload::{Component, Workload};

use crate::report::{Placement, Stats, Transport};
use crate::workloads::{self, Guest, Stack};

/// The marker opening the generated in-process section in `BENCHMARKS.md`.
pub const BEGIN: &str = "<!-- local:begin -->";
/// The marker closing the generated in-process section in `BENCHMARKS.md`.
pub const END: &str = "<!-- local:end -->";

/// The goal for an in-process component → component call, p50 in µs.
pub const GOAL_P50_US: f64 = 2.0;

/// The interface the echo guest imports.
const ECHO: &str = "example:echo/echo@0.1.0";

/// The longest a single host run may take before it counts as a hang.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// What `bench local` measures.
#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// Timed calls per row and round.
    #[arg(long, env = "BENCH_ITERATIONS", default_value_t = 5000)]
    pub iterations: usize,
    /// Untimed warm-up calls before them.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Measurements of each row, the order of a group's rows rotating every
    /// round; the tables show the medians over rounds.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Also write the tables, as a markdown section, to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Where a row's calls go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// Echo served by another component of the workload, in process.
    EchoLinked,
    /// Echo through the wRPC plugin to the echo extension.
    EchoWire(Transport),
    /// `wasi:keyvalue` served by the host's plugin, in memory.
    KvEmbedded,
    /// `wasi:keyvalue` through the wRPC plugin to keyvalue-redis.
    KvWire(Transport),
}

impl Path {
    fn label(self) -> String {
        match self {
            Self::EchoLinked => "guest echo → in-process link → echo-service component".into(),
            Self::EchoWire(t) => format!("guest echo → {} → echo extension", t.label()),
            Self::KvEmbedded => "guest kv get → embedded `wasi:keyvalue` plugin (in memory)".into(),
            Self::KvWire(t) => format!("guest kv get → {} → keyvalue-redis → Redis", t.label()),
        }
    }
}

/// The rows of each group, in table order; the first is the in-process
/// one, the second the Unix row the ratios are to.
const GROUPS: [&[Path]; 2] = [
    &[
        Path::EchoLinked,
        Path::EchoWire(Transport::Unix),
        Path::EchoWire(Transport::Tcp),
    ],
    &[Path::KvEmbedded, Path::KvWire(Transport::Unix)],
];

/// One row: the medians over rounds and every round's figures.
#[derive(Clone, Debug)]
struct Row {
    path: Path,
    stats: Stats,
    rounds: Vec<Stats>,
}

/// Everything one run (one placement) measured.
#[derive(Clone, Debug)]
pub struct Local {
    placement: Placement,
    iterations: usize,
    warmup: usize,
    rounds: usize,
    /// Each group's rows, in table order.
    groups: Vec<Vec<Row>>,
    /// `kv-guest`'s in-process host call (`wasi:clocks` now), medians over
    /// the embedded keyvalue runs.
    host_call: Stats,
    secs: f64,
}

/// The order of a group's `n` rows in round `round` (0-based): rotated by
/// one each round.
fn order(n: usize, round: usize) -> Vec<usize> {
    (0..n).map(|i| (i + round) % n).collect()
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if !n.is_multiple_of(2) => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Per-statistic medians of `runs`.
fn median_stats(runs: &[Stats]) -> Stats {
    Stats {
        median: median(&runs.iter().map(|s| s.median).collect::<Vec<_>>()),
        p99: median(&runs.iter().map(|s| s.p99).collect::<Vec<_>>()),
    }
}

/// Runs `workload` with the workspace's host, failing unless it exited 0.
fn run(workload: &Workload, what: &str) -> anyhow::Result<String> {
    let run = workload.run(&[], RUN_LIMIT)?;
    if run.code != Some(0) {
        bail!(
            "{what} failed (exit {:?})\nstdout: {}\nstderr: {}",
            run.code,
            run.stdout,
            run.stderr
        );
    }
    Ok(run.stdout)
}

/// `echo-guest` timing `echo` served by `echo-service` in the same workload.
fn echo_linked(warmup: usize, iterations: usize) -> anyhow::Result<Stats> {
    let workload = Workload::new("bench-local")
        .namespace("bench")
        .component(
            Component::new("app", guests::ECHO_GUEST)
                .config("BENCH", "latency")
                .config("WARMUP", warmup)
                .config("ITERATIONS", iterations)
                .import_from(ECHO, "svc"),
        )
        .component(Component::new("svc", guests::ECHO_SERVICE));
    Stats::parse(&run(&workload, "the linked echo workload")?, "echo")
}

/// `kv-guest` timing `get` (and a host call) against the embedded
/// keyvalue, in memory: (host call, get).
fn kv_embedded(warmup: usize, iterations: usize) -> anyhow::Result<(Stats, Stats)> {
    let workload = Workload::new("bench-local")
        .namespace("bench")
        .component(
            Component::new("app", guests::KV_GUEST)
                .config("SCENARIO", "bench")
                .config("BUCKET", "bench")
                .config("WARMUP", warmup)
                .config("ITERATIONS", iterations),
        )
        .host("wasi:keyvalue");
    let out = run(&workload, "the embedded keyvalue workload")?;
    Ok((Stats::parse(&out, "host-call")?, Stats::parse(&out, "get")?))
}

/// Measures every group at the current placement.
pub fn run_all(args: &LocalArgs, progress: impl Fn(&str)) -> anyhow::Result<Local> {
    anyhow::ensure!(args.iterations > 0, "--iterations must be at least 1");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let started = Instant::now();
    let placement = Placement::current();
    progress(&format!(
        "local: CPUs allowed {} (online {})",
        placement.allowed, placement.online
    ));
    let host = harness::bin("host")?;
    let stack = Stack::start()?;
    let (w, n) = (args.warmup, args.iterations);
    let mut host_calls = Vec::new();
    let mut groups = Vec::new();
    for group in GROUPS {
        let mut rounds: Vec<Vec<Stats>> = vec![Vec::new(); group.len()];
        for round in 0..args.rounds {
            for i in order(group.len(), round) {
                let path = group[i];
                progress(&format!(
                    "local: {}, round {}/{}",
                    path.label(),
                    round + 1,
                    args.rounds
                ));
                let stats = match path {
                    Path::EchoLinked => echo_linked(w, n)?,
                    Path::EchoWire(t) => {
                        workloads::echo_latency(&host, &stack.target(Guest::Echo, t)?, w, n)?
                    }
                    Path::KvEmbedded => {
                        let (call, get) = kv_embedded(w, n)?;
                        host_calls.push(call);
                        get
                    }
                    Path::KvWire(t) => {
                        workloads::kv_latency(&host, &stack.target(Guest::Kv, t)?, w, n)?.1
                    }
                };
                rounds[i].push(stats);
            }
        }
        groups.push(
            group
                .iter()
                .zip(rounds)
                .map(|(&path, rounds)| Row {
                    path,
                    stats: median_stats(&rounds),
                    rounds,
                })
                .collect(),
        );
    }
    Ok(Local {
        placement,
        iterations: n,
        warmup: w,
        rounds: args.rounds,
        groups,
        host_call: median_stats(&host_calls),
        secs: started.elapsed().as_secs_f64(),
    })
}

fn us(ns: f64) -> String {
    format!("{:.1}", ns / 1e3)
}

/// More decimals under 10 µs, where the goal is.
fn us_fine(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{:.2}", ns / 1e3)
    } else {
        us(ns)
    }
}

/// A ratio to two significant digits (0.13, 0.068, 0.00043).
fn ratio(r: f64) -> String {
    if !(r > 0.0 && r.is_finite()) {
        return format!("{r}");
    }
    let decimals = (1 - r.log10().floor() as i32).max(2) as usize;
    format!("{r:.decimals$}")
}

impl Local {
    /// The in-process echo's p50, in nanoseconds.
    fn linked_p50(&self) -> Option<f64> {
        self.groups
            .iter()
            .flatten()
            .find(|r| r.path == Path::EchoLinked)
            .map(|r| r.stats.median)
    }

    /// This run as a markdown section (`###` title, `####` tables).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.placement.title());
        let rounds = if self.rounds > 1 {
            format!(
                " Each row measured {} times, a group's rows one after the other in an \
                 order rotating every round; figures are medians over rounds.",
                self.rounds
            )
        } else {
            " Each row measured once.".to_string()
        };
        let _ = writeln!(
            out,
            "Latency: {} timed calls per row after {} warm-up calls, timed in the guest.{rounds} \
             Ratios are to the Unix row of the same group. The run took {:.0} s.\n",
            self.iterations, self.warmup, self.secs,
        );
        out.push_str(
            "#### Latency per call, in process and over a socket\n\n\
             | path | p50 µs | p99 µs | p50 ÷ Unix | p99 ÷ Unix |\n|---|---:|---:|---:|---:|\n",
        );
        let _ = writeln!(
            out,
            "| baseline: guest → in-process host call (`wasi:clocks` now) | {} | {} |  |  |",
            us_fine(self.host_call.median),
            us_fine(self.host_call.p99),
        );
        for group in &self.groups {
            // The second row of each group is the Unix one (see GROUPS).
            let unix = group.get(1).map(|r| r.stats);
            for (i, row) in group.iter().enumerate() {
                let vs_unix = |f: fn(&Stats) -> f64| match unix {
                    Some(u) if i != 1 => ratio(f(&row.stats) / f(&u)),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    row.path.label(),
                    us_fine(row.stats.median),
                    us_fine(row.stats.p99),
                    vs_unix(|s| s.median),
                    vs_unix(|s| s.p99),
                );
            }
        }
        if let Some(p50) = self.linked_p50() {
            let us = p50 / 1e3;
            let verdict = if us <= GOAL_P50_US {
                "**met**"
            } else {
                "**missed**"
            };
            let _ = writeln!(
                out,
                "\n#### Goal\n\n| goal | measured | limit | result |\n|---|---:|---:|---|\n\
                 | in-process component → component echo p50, µs | {us:.2} | ≤ {GOAL_P50_US:.2} | {verdict} |",
            );
        }
        if self.rounds > 1 {
            out.push_str(
                "\n<details><summary>Every round (in the order measured)</summary>\n\n\
                 | row | p50 µs by round | p99 µs by round |\n|---|---|---|\n",
            );
            for row in self.groups.iter().flatten() {
                let list = |f: fn(&Stats) -> f64| {
                    row.rounds
                        .iter()
                        .map(|s| us_fine(f(s)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    row.path.label(),
                    list(|s| s.median),
                    list(|s| s.p99)
                );
            }
            out.push_str("\n</details>\n");
        }
        out
    }
}

/// `bench local`: measures, prints the tables, writes `--markdown`.
pub fn main(args: &LocalArgs, progress: impl Fn(&str)) -> anyhow::Result<()> {
    let local = run_all(args, &progress)?;
    crate::report::print_and_save(&local.markdown(), args.markdown.as_deref())?;
    progress(&format!("local: done in {:.0} s", local.secs));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_order() {
        assert_eq!(order(3, 0), [0, 1, 2]);
        assert_eq!(order(3, 1), [1, 2, 0]);
        assert_eq!(order(2, 1), [1, 0]);
    }

    #[test]
    fn every_group_has_its_unix_row_second() {
        for group in GROUPS {
            assert!(matches!(
                group[1],
                Path::EchoWire(Transport::Unix) | Path::KvWire(Transport::Unix)
            ));
        }
    }

    #[test]
    fn ratios_keep_two_significant_digits() {
        assert_eq!(ratio(1.234), "1.23");
        assert_eq!(ratio(0.134), "0.13");
        assert_eq!(ratio(0.0683), "0.068");
        assert_eq!(ratio(0.000_433), "0.00043");
    }

    #[test]
    fn medians_over_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }
}
