//! What one run measured, the goals it is judged by, and how it is written:
//! markdown tables for the terminal and for `BENCHMARKS.md`, spliced between
//! the document's markers.

use std::fmt::Write as _;

use anyhow::{bail, Context as _};

/// The marker opening the generated part of `BENCHMARKS.md`.
pub const BEGIN: &str = "<!-- bench:begin -->";
/// The marker closing the generated part of `BENCHMARKS.md`.
pub const END: &str = "<!-- bench:end -->";

/// Median (p50) and 99th percentile of per-call latencies, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// The median, in nanoseconds.
    pub median: f64,
    /// The 99th percentile, in nanoseconds.
    pub p99: f64,
}

impl Stats {
    /// The median and p99 of `samples` (nanoseconds), nearest rank, the same
    /// rule the guests use.
    pub fn of(mut samples: Vec<u128>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64;
        Self {
            median: at(0.5),
            p99: at(0.99),
        }
    }

    /// Reads a guest's `bench NAME: n=… median_ns=… p99_ns=…` line out of `stdout`.
    pub fn parse(stdout: &str, name: &str) -> anyhow::Result<Self> {
        let prefix = format!("bench {name}:");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .with_context(|| format!("no `{prefix}` line in the guest's output: {stdout}"))?;
        Ok(Self {
            median: field(line, "median_ns=")?,
            p99: field(line, "p99_ns=")?,
        })
    }
}

/// The number after `key` (e.g. `calls=`) in a whitespace-separated line.
pub fn field<T: std::str::FromStr>(line: &str, key: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .with_context(|| format!("no `{key}` in `{line}`"))?
        .parse()
        .with_context(|| format!("`{key}` is not a number in `{line}`"))
}

/// The wRPC transports the stack is measured over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `tcp://`, pooled connections.
    Tcp,
    /// `unix://`, pooled connections.
    Unix,
    /// `ws://`, pooled connections.
    Ws,
    /// `nats://`, through `nats-server`.
    Nats,
}

impl Transport {
    /// Every transport, in table order.
    pub const ALL: [Self; 4] = [Self::Tcp, Self::Unix, Self::Ws, Self::Nats];

    /// Its name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Unix => "Unix",
            Self::Ws => "WebSocket",
            Self::Nats => "NATS",
        }
    }
}

/// Where this run's processes may execute.
#[derive(Clone, Debug)]
pub struct Placement {
    /// This process's CPU affinity (children inherit it), e.g. `0` or `0-1`.
    pub allowed: String,
    /// The CPUs online, e.g. `0-1`.
    pub online: String,
}

impl Placement {
    /// The current process's placement, from `/proc` and `/sys`.
    pub fn current() -> Self {
        let allowed = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| "?".into());
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        Self { allowed, online }
    }

    /// Whether the processes may use every online CPU.
    pub fn is_free(&self) -> bool {
        self.allowed == self.online
    }

    /// A section title.
    pub fn title(&self) -> String {
        if self.is_free() {
            format!("Free placement: processes float over CPUs {}", self.allowed)
        } else {
            format!(
                "Pinned: every process on CPU {} (`taskset -c {}`; online: {})",
                self.allowed, self.allowed, self.online
            )
        }
    }
}

/// The per-call latencies of one run.
#[derive(Clone, Debug)]
pub struct Latencies {
    /// A guest timing `wasi:clocks/monotonic-clock.now` (in-process host call).
    pub host_call: Stats,
    /// Raw TCP ping-pong between two tokio processes.
    pub raw_tcp: Stats,
    /// Raw TCP ping-pong between two processes with blocking sockets.
    pub raw_tcp_blocking: Stats,
    /// Raw Unix-socket ping-pong between two tokio processes.
    pub raw_unix: Stats,
    /// Raw Unix-socket ping-pong between two processes with blocking sockets.
    pub raw_unix_blocking: Stats,
    /// async-nats request/reply through `nats-server` to a second process.
    pub raw_nats: Stats,
    /// redis-rs GET from the bench process.
    pub redis_get: Stats,
    /// Guest `echo` through the generic path, per transport.
    pub echo: Vec<(Transport, Stats)>,
    /// The transport crate's client calling the echo extension directly
    /// (no guest, host or plugin), per transport.
    pub native_echo: Vec<(Transport, Stats)>,
    /// Guest `wasi:keyvalue` `get` through keyvalue-redis, per transport.
    pub kv_get: Vec<(Transport, Stats)>,
}

impl Latencies {
    /// The raw baseline an echo over `t` is compared with, and its name.
    pub fn raw_for(&self, t: Transport) -> (&'static str, Stats) {
        match t {
            // A WebSocket is framing on a TCP connection.
            Transport::Tcp | Transport::Ws => ("raw TCP", self.raw_tcp),
            Transport::Unix => ("raw Unix", self.raw_unix),
            Transport::Nats => ("raw NATS", self.raw_nats),
        }
    }

    fn lookup(rows: &[(Transport, Stats)], t: Transport) -> Option<Stats> {
        rows.iter().find(|(r, _)| *r == t).map(|(_, s)| *s)
    }
}

/// Calls per second of one workload of `callers` concurrent guests.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// How many guests called concurrently.
    pub callers: usize,
    /// Calls completed by all of them in the window.
    pub calls: u64,
    /// The window: first guest's start to last guest's end, in seconds.
    pub window_secs: f64,
}

impl Rate {
    /// Calls per second over the whole window.
    pub fn per_sec(&self) -> f64 {
        self.calls as f64 / self.window_secs
    }
}

/// The throughput of one path at each concurrency.
#[derive(Clone, Debug)]
pub struct ThroughputRow {
    /// What was called, e.g. `echo over TCP`.
    pub path: String,
    /// One rate per concurrency level.
    pub rates: Vec<Rate>,
}

/// One large-object transfer: a guest's through the stack, or a direct one.
#[derive(Clone, Debug)]
pub struct BlobRow {
    /// What moved the bytes, e.g. `guest put → TCP → blobstore-s3 → S3`.
    pub path: String,
    /// A put (else a get).
    pub put: bool,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time, in seconds.
    pub secs: f64,
    /// The host's peak resident set, in KiB (guest rows).
    pub host_peak_kib: Option<u64>,
    /// The extension's peak resident set, in KiB (guest rows).
    pub ext_peak_kib: Option<u64>,
}

impl BlobRow {
    /// MiB per second.
    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.secs
    }

    fn is_direct(&self) -> bool {
        self.host_peak_kib.is_none()
    }
}

/// Peak resident set allowed to the host and to the extension per transfer, in MiB.
pub const BLOB_PEAK_MIB: f64 = 64.0;

/// Throughput a guest transfer must reach, as a share of the direct one.
pub const BLOB_THROUGHPUT_SHARE: f64 = 0.7;

/// One goal: a measured figure and its limit.
#[derive(Clone, Debug)]
pub struct Goal {
    /// What is measured (e.g. what is divided by what).
    pub what: String,
    /// The measured figure.
    pub ratio: f64,
    /// The limit that meets the goal.
    pub limit: f64,
    /// Whether the figure must reach the limit (else stay under it).
    pub at_least: bool,
    /// Whether the goal applies to this placement (the kv goal is set for
    /// free placement only).
    pub applies: bool,
}

impl Goal {
    /// Met, missed, or not a goal at this placement.
    pub fn verdict(&self) -> &'static str {
        let met = if self.at_least {
            self.ratio >= self.limit
        } else {
            self.ratio <= self.limit
        };
        match (self.applies, met) {
            (false, _) => "not a goal here",
            (true, true) => "**met**",
            (true, false) => "**missed**",
        }
    }
}

/// Everything one run (one placement) measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Where the processes ran.
    pub placement: Placement,
    /// Timed calls per latency path.
    pub iterations: usize,
    /// Untimed calls before them.
    pub warmup: usize,
    /// How long each throughput workload called, in milliseconds.
    pub duration_ms: u64,
    /// Per-call latencies.
    pub latency: Latencies,
    /// Calls per second at each concurrency.
    pub throughput: Vec<ThroughputRow>,
    /// Large-object transfers (empty when skipped).
    pub blob: Vec<BlobRow>,
}

impl Report {
    /// The goals, computed from this run's figures.
    pub fn goals(&self) -> Vec<Goal> {
        let l = &self.latency;
        let mut goals = Vec::new();
        for (t, limit, raw_name) in [
            (Transport::Tcp, 1.5, "raw TCP ping-pong"),
            (Transport::Unix, 1.5, "raw Unix ping-pong"),
            (Transport::Nats, 1.15, "raw NATS request/reply"),
        ] {
            if let Some(echo) = Latencies::lookup(&l.echo, t) {
                goals.push(Goal {
                    what: format!("echo over {} p50 ÷ {raw_name} p50", t.label()),
                    ratio: echo.median / l.raw_for(t).1.median,
                    limit,
                    at_least: false,
                    applies: true,
                });
            }
        }
        if let Some(get) = Latencies::lookup(&l.kv_get, Transport::Tcp) {
            goals.push(Goal {
                what: "kv get over TCP p50 ÷ native redis-rs GET p50 (free placement)".into(),
                ratio: get.median / l.redis_get.median,
                limit: 2.0,
                at_least: false,
                applies: self.placement.is_free(),
            });
        }
        for row in self.blob.iter().filter(|r| !r.is_direct()) {
            if let Some(direct) = self.blob.iter().find(|d| d.is_direct() && d.put == row.put) {
                goals.push(Goal {
                    what: format!("{}: throughput ÷ direct", row.path),
                    ratio: row.mib_per_sec() / direct.mib_per_sec(),
                    limit: BLOB_THROUGHPUT_SHARE,
                    at_least: true,
                    applies: true,
                });
            }
            for (who, peak) in [("host", row.host_peak_kib), ("extension", row.ext_peak_kib)] {
                if let Some(kib) = peak {
                    goals.push(Goal {
                        what: format!("{}: {who} peak RSS, MiB", row.path),
                        ratio: kib as f64 / 1024.0,
                        limit: BLOB_PEAK_MIB,
                        at_least: false,
                        applies: true,
                    });
                }
            }
        }
        goals
    }

    /// This run as a markdown section (`###` title, `####` tables).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.placement.title());
        let _ = writeln!(
            out,
            "Latency: {} timed calls per path after {} warm-up calls. Throughput: each \
             caller calls in a loop for {} ms.\n",
            self.iterations, self.warmup, self.duration_ms
        );
        out.push_str(&self.latency_table());
        out.push('\n');
        out.push_str(&self.throughput_table());
        out.push('\n');
        if !self.blob.is_empty() {
            out.push_str(&blob_table(&self.blob));
            out.push('\n');
        }
        out.push_str(&self.goals_table());
        out
    }

    fn latency_table(&self) -> String {
        let l = &self.latency;
        let mut out = String::from(
            "#### Latency per call\n\n| path | p50 µs | p99 µs | p50 ÷ baseline |\n|---|---:|---:|---:|\n",
        );
        let mut row = |name: &str, s: Stats, versus: Option<(&str, Stats)>| {
            let ratio = versus.map_or_else(String::new, |(base, b)| {
                format!("{:.2} × {base}", s.median / b.median)
            });
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {:.1} | {ratio} |",
                s.median / 1e3,
                s.p99 / 1e3
            );
        };
        row(
            "baseline: guest → in-process host call (`wasi:clocks` now)",
            l.host_call,
            None,
        );
        row(
            "baseline: raw TCP ping-pong, tokio, 2 processes",
            l.raw_tcp,
            None,
        );
        row(
            "baseline: raw TCP ping-pong, blocking sockets, 2 processes",
            l.raw_tcp_blocking,
            Some(("raw TCP", l.raw_tcp)),
        );
        row(
            "baseline: raw Unix ping-pong, tokio, 2 processes",
            l.raw_unix,
            None,
        );
        row(
            "baseline: raw Unix ping-pong, blocking sockets, 2 processes",
            l.raw_unix_blocking,
            Some(("raw Unix", l.raw_unix)),
        );
        row(
            "baseline: raw async-nats request/reply, 2 processes",
            l.raw_nats,
            None,
        );
        row("baseline: native redis-rs GET", l.redis_get, None);
        for (t, s) in &l.echo {
            row(
                &format!("guest echo → {} → echo extension", t.label()),
                *s,
                Some(l.raw_for(*t)),
            );
        }
        for (t, s) in &l.native_echo {
            row(
                &format!("native transport client → {} → echo extension", t.label()),
                *s,
                Some(l.raw_for(*t)),
            );
        }
        for (t, s) in &l.kv_get {
            row(
                &format!("guest kv get → {} → keyvalue-redis → Redis", t.label()),
                *s,
                Some(("redis-rs GET", l.redis_get)),
            );
        }
        out
    }

    fn throughput_table(&self) -> String {
        let mut out = String::from(
            "#### Throughput, calls/s (N guests calling concurrently in one host)\n\n| path |",
        );
        let levels: Vec<usize> = self
            .throughput
            .first()
            .map(|r| r.rates.iter().map(|r| r.callers).collect())
            .unwrap_or_default();
        for n in &levels {
            let _ = write!(out, " N = {n} |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(levels.len()));
        out.push('\n');
        for row in &self.throughput {
            let _ = write!(out, "| {} |", row.path);
            for rate in &row.rates {
                let _ = write!(out, " {:.0} |", rate.per_sec());
            }
            out.push('\n');
        }
        out.push_str(
            "\nCalls/s = all callers' calls ÷ the wall time from the first caller's start \
             to the last caller's end (warm-up excluded).\n",
        );
        out
    }

    fn goals_table(&self) -> String {
        let mut out = String::from(
            "#### Goals\n\n| goal | measured | limit | result |\n|---|---:|---:|---|\n",
        );
        for g in self.goals() {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {} {:.2} | {} |",
                g.what,
                g.ratio,
                if g.at_least { "≥" } else { "≤" },
                g.limit,
                g.verdict()
            );
        }
        out
    }
}

/// Prints a subcommand's `markdown` and, if asked, writes it to `path`.
///
/// # Errors
///
/// The file cannot be written.
pub fn print_and_save(markdown: &str, path: Option<&std::path::Path>) -> anyhow::Result<()> {
    println!("{markdown}");
    if let Some(path) = path {
        std::fs::write(path, markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Replaces what lies between the markers `begin` and `end` in `doc` (e.g.
/// [`BEGIN`] and [`END`], or `bench compare`'s [`crate::compare::BEGIN`] and
/// [`crate::compare::END`]) with `generated`, keeping everything else;
/// appends both markers at the end when the document has neither.
pub fn splice(doc: &str, begin: &str, end: &str, generated: &str) -> anyhow::Result<String> {
    let block = format!("{begin}\n{}\n{end}", generated.trim_end());
    match (doc.find(begin), doc.find(end)) {
        (Some(b), Some(e)) if b < e => Ok(format!("{}{block}{}", &doc[..b], &doc[e + end.len()..])),
        (None, None) => Ok(format!("{}\n\n{block}\n", doc.trim_end())),
        _ => bail!("the document has a misplaced or lone `{begin}` / `{end}` marker"),
    }
}

/// The large-object table of `rows`, each guest row next to its direct one.
pub fn blob_table(rows: &[BlobRow]) -> String {
    let size = rows.first().map_or(0, |r| r.bytes);
    let mut out = format!(
        "#### Large objects: one {} MiB object, put then got\n\n| path | MiB/s | ÷ direct | host peak RSS MiB | extension peak RSS MiB |\n|---|---:|---:|---:|---:|\n",
        size >> 20
    );
    for row in rows {
        let direct = rows
            .iter()
            .find(|d| d.is_direct() && d.put == row.put)
            .filter(|_| !row.is_direct());
        let mib =
            |k: Option<u64>| k.map_or_else(String::new, |k| format!("{:.1}", k as f64 / 1024.0));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} |",
            row.path,
            row.mib_per_sec(),
            direct.map_or_else(String::new, |d| format!(
                "{:.2}",
                row.mib_per_sec() / d.mib_per_sec()
            )),
            mib(row.host_peak_kib),
            mib(row.ext_peak_kib),
        );
    }
    out.push_str(
        "\nMiB/s = bytes ÷ wall time of the transfer (the guest times its own, from write-data or get-data to finish or the end of the stream). Peak RSS = `VmHWM` of a fresh host and a fresh extension per transfer (the host's sampled every 10 ms until it exits).\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_nearest_rank() {
        let s = Stats::of((1..=100).rev().collect());
        assert_eq!(s.median, 51.0);
        assert_eq!(s.p99, 99.0);
    }

    #[test]
    fn parses_a_guest_line() {
        let out = "noise\nbench get: n=5 median_ns=1200 p99_ns=3400\n";
        let s = Stats::parse(out, "get").unwrap();
        assert_eq!((s.median, s.p99), (1200.0, 3400.0));
        assert!(Stats::parse(out, "echo").is_err());
    }

    #[test]
    fn splice_keeps_what_is_outside_the_markers() {
        let doc = format!("intro\n{BEGIN}\nold\n{END}\noutro\n");
        let new = splice(&doc, BEGIN, END, "new\n").unwrap();
        assert_eq!(new, format!("intro\n{BEGIN}\nnew\n{END}\noutro\n"));
        assert_eq!(splice(&new, BEGIN, END, "new").unwrap(), new);
    }

    #[test]
    fn splice_appends_markers_once() {
        let new = splice("intro\n", BEGIN, END, "figures").unwrap();
        assert_eq!(new, format!("intro\n\n{BEGIN}\nfigures\n{END}\n"));
        assert!(splice(&format!("{END}\n{BEGIN}\n"), BEGIN, END, "x").is_err());
        assert!(splice(&format!("{BEGIN}\n"), BEGIN, END, "x").is_err());
    }
}
