//! `bench compare`: two builds' hosts side by side in one run, on one stack.
//!
//! Only the `host` binary differs between the two sides: the extensions
//! (`keyvalue-redis`, the `echo` and `bytes` examples, `messaging-nats`),
//! the guest components, Redis and NATS are this build's, shared by both,
//! so a ratio new ÷ old is the host's (Wasmtime, the value codec, the
//! plugin's routing, the served exports). Each row is measured for the old
//! host and for the new one right after each other, so drift on a noisy
//! machine moves both; `--rounds N` (default 3) measures each row N times
//! per host, the order flipping every round (old, new; new, old; old, new),
//! and the figures are the medians over rounds: one run of a host process
//! can land 30 % off another of the same binary on these machines.
//!
//! Rows: guest echo and guest kv get per call (p50, p99) over every
//! transport; calls per second of `--callers` concurrent guests (echo and
//! kv over every transport); the messaging rows (publish → messaging-nats →
//! the handler export the host serves, core NATS and JetStream); and, for
//! the new host alone (the old one cannot run WASI 0.3 components), a WASI
//! 0.3 guest's `greet` through an async import next to the new host's guest
//! echo over the same transport.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::messaging::{self, MessagingRow, MessagingStack};
use crate::report::{Placement, Stats, Transport};
use crate::workloads::{self, Guest, Stack};

/// The marker opening the generated comparison in `BENCHMARKS.md`.
pub const BEGIN: &str = "<!-- compare:begin -->";
/// The marker closing the generated comparison in `BENCHMARKS.md`.
pub const END: &str = "<!-- compare:end -->";

/// What `bench compare` measures.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The old build's host binary, e.g. `../old-main/target/release/host`.
    #[arg(long)]
    pub old_host: PathBuf,
    /// The new build's host binary (default: the `host` next to this binary).
    #[arg(long)]
    pub new_host: Option<PathBuf>,
    /// Timed calls per latency row and host.
    #[arg(long, env = "BENCH_ITERATIONS", default_value_t = 5000)]
    pub iterations: usize,
    /// Untimed warm-up calls before them.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// How long each caller of a throughput row calls, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub duration_ms: u64,
    /// Concurrent callers of the throughput rows.
    #[arg(long, default_value_t = 16)]
    pub callers: usize,
    /// Messages of each messaging throughput measurement (0: no messaging rows).
    #[arg(long, default_value_t = 5000)]
    pub count: usize,
    /// Messages of each paced messaging latency measurement (5 ms apart).
    #[arg(long, default_value_t = 400)]
    pub paced: usize,
    /// Measurements of each row per host, the order flipping every round
    /// (old, new; new, old; old, new; …); the tables show the medians over
    /// rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also write the tables, as a markdown section, to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Which build's host runs a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    Old,
    New,
}

impl Build {
    fn name(self) -> &'static str {
        match self {
            Self::Old => "old",
            Self::New => "new",
        }
    }

    /// The order of round `round` (0-based): old first in even rounds.
    fn order(round: usize) -> [Self; 2] {
        if round.is_multiple_of(2) {
            [Self::Old, Self::New]
        } else {
            [Self::New, Self::Old]
        }
    }
}

/// One latency row: both hosts' medians over rounds.
#[derive(Clone, Debug)]
pub struct LatencyRow {
    /// What was called, e.g. `guest echo → TCP → echo extension`.
    pub path: String,
    /// The old host's p50 and p99.
    pub old: Stats,
    /// The new host's p50 and p99.
    pub new: Stats,
}

/// The WASI 0.3 guest's row (new host only) next to the new host's echo.
#[derive(Clone, Debug)]
pub struct P3Row {
    /// The transport both went over.
    pub transport: Transport,
    /// The new host's guest echo over it (the same rounds' median).
    pub echo: Stats,
    /// `streams-guest` `greet` over it.
    pub greet: Stats,
}

/// One throughput row: both hosts' calls per second (medians over rounds).
#[derive(Clone, Debug)]
pub struct RateRow {
    /// What was called, e.g. `guest echo over TCP`.
    pub path: String,
    /// The old host's calls per second.
    pub old: f64,
    /// The new host's calls per second.
    pub new: f64,
}

/// One messaging mode: the raw subscriber (reference) and both hosts.
#[derive(Clone, Debug)]
pub struct MessagingPair {
    /// `core NATS` or `JetStream`.
    pub mode: &'static str,
    /// The raw async-nats subscriber, no host (medians over rounds), or
    /// why it has no figures (it is only a reference).
    pub raw: Result<MessagingRow, String>,
    /// messaging-nats delivering to the old host's handler export.
    pub old: MessagingRow,
    /// The same with the new host.
    pub new: MessagingRow,
}

/// One figure of a row in every round, for both hosts (in measurement
/// order within each host), to show how far rounds spread.
#[derive(Clone, Debug)]
pub struct RoundsRow {
    /// The row and figure, e.g. `guest echo → TCP → echo extension, p50 µs`.
    pub what: String,
    /// The old host's figure, round by round.
    pub old: Vec<f64>,
    /// The new host's figure, round by round.
    pub new: Vec<f64>,
    /// Decimals to print.
    pub decimals: usize,
}

/// Everything one comparison run (one placement) measured.
#[derive(Clone, Debug)]
pub struct Comparison {
    placement: Placement,
    old_host: PathBuf,
    new_host: PathBuf,
    iterations: usize,
    warmup: usize,
    duration_ms: u64,
    callers: usize,
    count: usize,
    paced: usize,
    rounds: usize,
    /// Per-call latency rows.
    pub latency: Vec<LatencyRow>,
    /// The WASI 0.3 rows (new host only).
    pub p3: Vec<P3Row>,
    /// Throughput rows.
    pub throughput: Vec<RateRow>,
    /// Messaging rows, empty when skipped.
    pub messaging: Vec<MessagingPair>,
    /// Every round's p50s and rates.
    pub rounds_detail: Vec<RoundsRow>,
    /// Wall time of the whole run, in seconds.
    pub secs: f64,
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

/// Per-figure medians of messaging rows of one side.
fn median_messaging(runs: &[MessagingRow]) -> MessagingRow {
    let pick = |f: fn(&MessagingRow) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    MessagingRow {
        who: runs[0].who,
        mode: runs[0].mode,
        per_sec: pick(|r| r.per_sec),
        p50_us: pick(|r| r.p50_us),
        p99_us: pick(|r| r.p99_us),
        host_cpu_us: runs
            .iter()
            .map(|r| r.host_cpu_us)
            .collect::<Option<Vec<_>>>()
            .map(|v| median(&v)),
    }
}

/// Runs the comparison at the current placement, prints its tables and
/// writes them to `--markdown` if given.
pub fn run(args: &CompareArgs, progress: impl Fn(&str)) -> anyhow::Result<Comparison> {
    anyhow::ensure!(args.iterations > 0, "--iterations must be at least 1");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(args.callers > 0, "--callers must be at least 1");
    let started = Instant::now();
    let new_host = match &args.new_host {
        Some(path) => path.clone(),
        None => harness::bin("host")?,
    };
    let old_host = args.old_host.clone();
    for (build, path) in [("old", &old_host), ("new", &new_host)] {
        anyhow::ensure!(
            path.is_file(),
            "the {build} host binary {} does not exist",
            path.display()
        );
    }
    if std::fs::canonicalize(&old_host)? == std::fs::canonicalize(&new_host)? {
        progress("warning: --old-host is the new host itself; expect ratios near 1");
    }
    let host = |build: Build| -> &Path {
        match build {
            Build::Old => &old_host,
            Build::New => &new_host,
        }
    };
    let placement = Placement::current();
    progress(&format!(
        "compare: CPUs allowed {} (online {}); old host {}, new host {}",
        placement.allowed,
        placement.online,
        old_host.display(),
        new_host.display()
    ));
    let (w, n, rounds) = (args.warmup, args.iterations, args.rounds);
    let round_note = |round: usize, build: Build| {
        if rounds > 1 {
            format!("{} host, round {}/{rounds}", build.name(), round + 1)
        } else {
            format!("{} host", build.name())
        }
    };

    let mut detail = Vec::new();
    let p50s = |what: &str, old: &[Stats], new: &[Stats]| RoundsRow {
        what: format!("{what}, p50 µs"),
        old: old.iter().map(|s| s.median / 1e3).collect(),
        new: new.iter().map(|s| s.median / 1e3).collect(),
        decimals: 1,
    };
    let stack = Stack::start_with_bytes()?;
    let mut latency = Vec::new();
    let mut p3 = Vec::new();
    for t in Transport::ALL {
        let target = stack.target(Guest::Echo, t)?;
        let bytes = stack.target(Guest::P3Greet, t)?;
        let path = format!("guest echo → {} → echo extension", t.label());
        let (mut old, mut new, mut greet) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            for build in Build::order(round) {
                progress(&format!("compare: {path}, {}", round_note(round, build)));
                let s = workloads::echo_latency(host(build), &target, w, n)?;
                match build {
                    Build::Old => old.push(s),
                    Build::New => new.push(s),
                }
            }
            // Right after the new host's echo over the same transport.
            progress(&format!(
                "compare: WASI 0.3 guest greet over {}, new host",
                t.label()
            ));
            greet.push(workloads::p3_latency(&new_host, &bytes, w, n)?);
        }
        detail.push(p50s(&path, &old, &new));
        let new = median_stats(&new);
        latency.push(LatencyRow {
            path,
            old: median_stats(&old),
            new,
        });
        p3.push(P3Row {
            transport: t,
            echo: new,
            greet: median_stats(&greet),
        });
    }
    for t in Transport::ALL {
        let target = stack.target(Guest::Kv, t)?;
        let path = format!("guest kv get → {} → keyvalue-redis → Redis", t.label());
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for build in Build::order(round) {
                progress(&format!("compare: {path}, {}", round_note(round, build)));
                let (_, get) = workloads::kv_latency(host(build), &target, w, n)?;
                match build {
                    Build::Old => old.push(get),
                    Build::New => new.push(get),
                }
            }
        }
        detail.push(p50s(&path, &old, &new));
        latency.push(LatencyRow {
            path,
            old: median_stats(&old),
            new: median_stats(&new),
        });
    }

    let mut throughput = Vec::new();
    let paths = Transport::ALL
        .map(|t| (Guest::Echo, t))
        .into_iter()
        .chain(Transport::ALL.map(|t| (Guest::Kv, t)));
    for (guest, t) in paths {
        let target = stack.target(guest, t)?;
        let path = workloads::throughput_path(guest, t);
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for build in Build::order(round) {
                progress(&format!(
                    "compare: throughput, {path}, {} callers, {}",
                    args.callers,
                    round_note(round, build)
                ));
                let rate = workloads::throughput(
                    host(build),
                    guest,
                    &target,
                    args.callers,
                    args.duration_ms,
                )?
                .per_sec();
                match build {
                    Build::Old => old.push(rate),
                    Build::New => new.push(rate),
                }
            }
        }
        detail.push(RoundsRow {
            what: format!("{path}, calls/s"),
            old: old.clone(),
            new: new.clone(),
            decimals: 0,
        });
        throughput.push(RateRow {
            path,
            old: median(&old),
            new: median(&new),
        });
    }
    drop(stack);

    let mut messages = Vec::new();
    if args.count > 0 {
        let stack = MessagingStack::start()?;
        for jetstream in [false, true] {
            let mode = messaging::mode(jetstream);
            let (mut raw, mut old, mut new) = (Vec::new(), Vec::new(), Vec::new());
            let mut raw_failed = None;
            for round in 0..rounds {
                progress(&format!(
                    "compare: messaging, {mode}, raw async-nats subscriber"
                ));
                // Only a reference: a failure leaves it out, not the run.
                match stack.raw(jetstream, args.count, args.paced) {
                    Ok(row) => raw.push(row),
                    Err(err) => {
                        progress(&format!("compare: raw subscriber left out: {err:#}"));
                        raw_failed = Some(format!("{err:#}"));
                    }
                }
                for build in Build::order(round) {
                    progress(&format!(
                        "compare: messaging, {mode}, extension + {}",
                        round_note(round, build)
                    ));
                    // Core NATS may drop messages under load: one more try.
                    let row = stack
                        .ours(host(build), jetstream, args.count, args.paced)
                        .or_else(|err| {
                            progress(&format!("compare: measuring again: {err:#}"));
                            stack.ours(host(build), jetstream, args.count, args.paced)
                        })?;
                    match build {
                        Build::Old => old.push(row),
                        Build::New => new.push(row),
                    }
                }
            }
            let figure = |name: &str, f: fn(&MessagingRow) -> f64| RoundsRow {
                what: format!("{mode}: extension + host, {name}"),
                old: old.iter().map(f).collect(),
                new: new.iter().map(f).collect(),
                decimals: 0,
            };
            detail.push(figure("msgs/s", |r| r.per_sec));
            detail.push(figure("p50 µs", |r| r.p50_us));
            detail.push(figure("host CPU µs per message", |r| {
                r.host_cpu_us.unwrap_or(f64::NAN)
            }));
            messages.push(MessagingPair {
                mode,
                raw: if raw.is_empty() {
                    Err(raw_failed.unwrap_or_default())
                } else {
                    Ok(median_messaging(&raw))
                },
                old: median_messaging(&old),
                new: median_messaging(&new),
            });
        }
    }

    Ok(Comparison {
        placement,
        old_host,
        new_host,
        iterations: n,
        warmup: w,
        duration_ms: args.duration_ms,
        callers: args.callers,
        count: args.count,
        paced: args.paced,
        rounds,
        latency,
        p3,
        throughput,
        messaging: messages,
        rounds_detail: detail,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The geometric mean of `ratios`.
fn geomean(ratios: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for r in ratios {
        sum += r.ln();
        n += 1;
    }
    (sum / n as f64).exp()
}

fn us(ns: f64) -> String {
    format!("{:.1}", ns / 1e3)
}

impl Comparison {
    /// This run as a markdown section (`###` title, `####` tables).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.placement.title());
        let rounds = if self.rounds > 1 {
            format!(
                " Each row measured {} times per host, the order flipping every round; \
                 figures are medians over rounds.",
                self.rounds
            )
        } else {
            " Each row measured once per host, old first.".to_string()
        };
        let _ = writeln!(
            out,
            "Latency: {} timed calls per row after {} warm-up calls. Throughput: {} callers, \
             each calling in a loop for {} ms.{rounds} Old host: `{}`; new host: `{}`. \
             Ratios are new ÷ old: above 1 the new host is slower (latency) or faster \
             (calls/s, msgs/s). The run took {:.0} s.\n",
            self.iterations,
            self.warmup,
            self.callers,
            self.duration_ms,
            self.old_host.display(),
            self.new_host.display(),
            self.secs,
        );
        out.push_str(&self.latency_table());
        out.push('\n');
        out.push_str(&self.p3_table());
        out.push('\n');
        out.push_str(&self.throughput_table());
        if !self.messaging.is_empty() {
            out.push('\n');
            out.push_str(&self.messaging_table());
        }
        if self.rounds > 1 {
            out.push('\n');
            out.push_str(&self.rounds_table());
        }
        out
    }

    fn rounds_table(&self) -> String {
        let mut out = String::from(
            "<details><summary>Every round (each host's figures in the order measured)</summary>\n\n\
             | row | old, by round | new, by round |\n|---|---|---|\n",
        );
        for row in &self.rounds_detail {
            let list = |v: &[f64]| {
                v.iter()
                    .map(|x| format!("{x:.*}", row.decimals))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                row.what,
                list(&row.old),
                list(&row.new)
            );
        }
        out.push_str("\n</details>\n");
        out
    }

    fn latency_table(&self) -> String {
        let mut out = String::from(
            "#### Latency per call, old and new host\n\n\
             | row | old p50 µs | old p99 µs | new p50 µs | new p99 µs | new÷old p50 | new÷old p99 |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &self.latency {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.2} | {:.2} |",
                row.path,
                us(row.old.median),
                us(row.old.p99),
                us(row.new.median),
                us(row.new.p99),
                row.new.median / row.old.median,
                row.new.p99 / row.old.p99,
            );
        }
        let _ = writeln!(
            out,
            "\nGeometric mean of new÷old over these rows: p50 {:.2}, p99 {:.2}.",
            geomean(self.latency.iter().map(|r| r.new.median / r.old.median)),
            geomean(self.latency.iter().map(|r| r.new.p99 / r.old.p99)),
        );
        out
    }

    fn p3_table(&self) -> String {
        let mut out = String::from(
            "#### A WASI 0.3 guest through an async import (new host only)\n\n\
             `streams-guest` (`BENCH=latency`) timing `greet`, an `async func` of \
             `example:streams/bytes@0.1.0`, served by the `bytes` example; next to the \
             new host's `echo-guest` (WASI 0.2, a synchronous import) over the same \
             transport, measured right before it.\n\n\
             | row | p50 µs | p99 µs | p50 ÷ echo | p99 ÷ echo |\n|---|---:|---:|---:|---:|\n",
        );
        for row in &self.p3 {
            let label = row.transport.label();
            let _ = writeln!(
                out,
                "| new: guest echo → {label} → echo extension (WASI 0.2) | {} | {} |  |  |",
                us(row.echo.median),
                us(row.echo.p99),
            );
            let _ = writeln!(
                out,
                "| new: WASI 0.3 guest greet → {label} → bytes extension (async import) | {} | {} | {:.2} | {:.2} |",
                us(row.greet.median),
                us(row.greet.p99),
                row.greet.median / row.echo.median,
                row.greet.p99 / row.echo.p99,
            );
        }
        out
    }

    fn throughput_table(&self) -> String {
        let mut out = format!(
            "#### Throughput at {} callers, calls/s (N guests calling concurrently in one host)\n\n\
             | row | old calls/s | new calls/s | new÷old |\n|---|---:|---:|---:|\n",
            self.callers
        );
        for row in &self.throughput {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.2} |",
                row.path,
                row.old,
                row.new,
                row.new / row.old
            );
        }
        let _ = writeln!(
            out,
            "\nGeometric mean of new÷old over these rows: {:.2}.",
            geomean(self.throughput.iter().map(|r| r.new / r.old)),
        );
        out
    }

    fn messaging_table(&self) -> String {
        let mut out = format!(
            "#### Messages: publish → messaging-nats → the host's handler export\n\n\
             {} messages as fast as possible (msgs/s, and the host's CPU time per message \
             meanwhile, user + system from `/proc`), then {} paced 5 ms apart (publish → \
             handler start, p50 and p99); the handler does three `wasi:keyvalue` calls per \
             message, 64 messages at once.\n\n\
             | row | old msgs/s | new msgs/s | new÷old | old host CPU µs/msg | new host CPU µs/msg | new÷old CPU |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
            self.count, self.paced
        );
        let cpu = |r: &MessagingRow| r.host_cpu_us.unwrap_or(f64::NAN);
        for pair in &self.messaging {
            let (o, n) = (&pair.old, &pair.new);
            let _ = writeln!(
                out,
                "| {}: extension + host | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} |",
                pair.mode,
                o.per_sec,
                n.per_sec,
                n.per_sec / o.per_sec,
                cpu(o),
                cpu(n),
                cpu(n) / cpu(o),
            );
        }
        out.push_str(
            "\n| row | old p50 µs | old p99 µs | new p50 µs | new p99 µs | new÷old p50 | new÷old p99 |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for pair in &self.messaging {
            let (o, n) = (&pair.old, &pair.new);
            let _ = writeln!(
                out,
                "| {}: publish → handler start | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
                pair.mode,
                o.p50_us,
                o.p99_us,
                n.p50_us,
                n.p99_us,
                n.p50_us / o.p50_us,
                n.p99_us / o.p99_us,
            );
        }
        out.push_str("\nReference, the raw async-nats subscriber doing the same Redis work (no extension, no host):");
        for (i, pair) in self.messaging.iter().enumerate() {
            let sep = if i == 0 { "" } else { ";" };
            let _ = match &pair.raw {
                Ok(raw) => write!(
                    out,
                    "{sep} {} {:.0} msgs/s, p50 {:.0} µs, p99 {:.0} µs",
                    pair.mode, raw.per_sec, raw.p50_us, raw.p99_us
                ),
                Err(why) => write!(out, "{sep} {} not measured ({why})", pair.mode),
            };
        }
        out.push_str(".\n");
        out
    }
}

/// `bench compare`: measures, prints the tables, writes `--markdown`.
pub fn main(args: &CompareArgs, progress: impl Fn(&str)) -> anyhow::Result<()> {
    let comparison = run(args, &progress)?;
    crate::report::print_and_save(&comparison.markdown(), args.markdown.as_deref())?;
    progress(&format!("compare: done in {:.0} s", comparison.secs));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_over_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn rounds_flip_the_order() {
        assert_eq!(Build::order(0), [Build::Old, Build::New]);
        assert_eq!(Build::order(1), [Build::New, Build::Old]);
    }

    #[test]
    fn geomean_of_ratios() {
        assert!((geomean([2.0, 0.5]) - 1.0).abs() < 1e-12);
    }
}
