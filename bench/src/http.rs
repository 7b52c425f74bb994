//! `bench http`: the host as an HTTP server, next to a native hyper server
//! (the floor) and `wasmtime serve` on the same component, in one run.
//!
//! - **Hello-world.** `GET /hello` on N keep-alive HTTP/1.1 connections,
//!   each a task of this process sending requests back to back; at each N
//!   the servers are measured one right after the other. Servers: `bench
//!   http-hello` (hyper, a second process), `host run` on
//!   `tests/components/http-counter` without and with `pool_size: 16`, and
//!   `wasmtime serve -Scli -Skeyvalue` on the same component when a
//!   `wasmtime` 48.x is on `PATH` (the guest imports `wasi:keyvalue`).
//! - **Cold start.** `host serve`: `POST /v1/workloads` until the first 200
//!   on the workload's route, the compiled component cached by one warm-up
//!   start and stop (`HOST_CACHE_DIR` a fresh directory), then the same
//!   with `--no-compile-cache`.

mod client;
mod servers;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::ensure;
use harness::TempDir;

use crate::report::{Placement, Stats};
pub use client::serve_hello;
use client::{load, once, Cell};
use servers::{cold_starts, start, wasmtime_48, Cold, Server};

/// The marker opening the generated HTTP section in `BENCHMARKS.md`.
pub const BEGIN: &str = "<!-- http:begin -->";
/// The marker closing the generated HTTP section in `BENCHMARKS.md`.
pub const END: &str = "<!-- http:end -->";

/// Goals: the host's req/s ÷ `wasmtime serve`'s at least this…
const GOAL_RPS: f64 = 0.8;
/// …its p50 ÷ `wasmtime serve`'s at most this…
const GOAL_P50: f64 = 1.2;
/// …and a cached cold start's p50 at most this, in ms.
const GOAL_COLD_MS: f64 = 50.0;

/// What `bench http` measures.
#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// Seconds each server is measured at each concurrency (after a fifth of
    /// that, at most 1 s, of warm-up on the same connections).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    pub connections: Vec<usize>,
    /// Cold starts measured per variant (cached, `--no-compile-cache`).
    #[arg(long, default_value_t = 10)]
    pub starts: usize,
    /// Also write the tables, as a markdown section, to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Everything one run (one placement) measured.
#[derive(Debug)]
pub struct Http {
    placement: Placement,
    duration: Duration,
    warmup: Duration,
    /// (connections, server, its figures or why it was not measured).
    cells: Vec<(usize, Server, Result<Cell, String>)>,
    cold: Vec<Cold>,
    secs: f64,
}

/// Measures every server at every concurrency, then the cold starts.
pub fn run_all(args: &HttpArgs, progress: impl Fn(&str)) -> anyhow::Result<Http> {
    ensure!(args.duration > 0.0, "--duration must be above 0");
    ensure!(args.starts > 0, "--starts must be at least 1");
    let started = Instant::now();
    let placement = Placement::current();
    progress(&format!(
        "http: CPUs allowed {} (online {})",
        placement.allowed, placement.online
    ));
    let rt = tokio::runtime::Runtime::new()?;
    let cache = TempDir::new("bench-http")?;
    let mut servers = Vec::new();
    for server in Server::ALL {
        progress(&format!("http: starting {}", server.label()));
        let running = start(server, &cache)?;
        if let Ok((addr, _)) = &running {
            let (status, body) = rt.block_on(once(addr, "GET", "/hello", ""))?;
            ensure!(
                status == 200 && body.starts_with(b"hello"),
                "{}: {status} {body:?}",
                server.label()
            );
        }
        servers.push((server, running));
    }
    let duration = Duration::from_secs_f64(args.duration);
    let warmup = Duration::from_secs_f64((args.duration / 5.0).min(1.0));
    let mut cells = Vec::new();
    for &n in &args.connections {
        for (server, running) in &servers {
            let cell = match running {
                Ok((addr, _)) => {
                    progress(&format!("http: {}, {n} connections", server.label()));
                    let cell = rt.block_on(load(addr, n, warmup, duration))?;
                    if cell.errors > 0 {
                        progress(&format!("http: {} errors (answers not 200)", cell.errors));
                    }
                    Ok(cell)
                }
                Err(why) => Err(why.clone()),
            };
            cells.push((n, *server, cell));
        }
    }
    drop(servers);
    let mut cold = Vec::new();
    for no_cache in [false, true] {
        progress(&format!("http: cold starts, no compile cache: {no_cache}"));
        cold.push(cold_starts(no_cache, args.starts, &rt)?);
    }
    Ok(Http {
        placement,
        duration,
        warmup,
        cells,
        cold,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The `wasmtime` measured, for the document's header.
pub fn tools() -> String {
    match wasmtime_48() {
        Ok(v) => format!("`wasmtime serve`: {v}"),
        Err(why) => format!("`wasmtime serve`: {why}"),
    }
}

impl Http {
    fn cell(&self, n: usize, server: Server) -> Option<Cell> {
        self.cells
            .iter()
            .find(|c| c.0 == n && c.1 == server)
            .and_then(|c| c.2.clone().ok())
    }

    /// This run as a markdown section (`###` title, `####` tables).
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.placement.title());
        let _ = writeln!(
            out,
            "`GET /hello` on N keep-alive HTTP/1.1 connections, each a task of the bench process \
             sending requests back to back: {:.1} s per cell after {:.1} s of warm-up, at each N \
             the servers one right after the other. Ratios are to the floor's and to `wasmtime \
             serve`'s figures at the same N. The run took {:.0} s.\n",
            self.duration.as_secs_f64(),
            self.warmup.as_secs_f64(),
            self.secs
        );
        out.push_str(
            "#### HTTP hello-world\n\n| server | N | req/s | p50 µs | p99 µs | errors | req/s ÷ floor \
             | p50 ÷ floor | req/s ÷ wasmtime serve | p50 ÷ wasmtime serve |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let mut goals = Vec::new();
        for (n, server, cell) in &self.cells {
            let c = match cell {
                Ok(c) => c,
                Err(why) => {
                    let _ = writeln!(
                        out,
                        "| {} | {n} | {why} |  |  |  |  |  |  |  |",
                        server.label()
                    );
                    continue;
                }
            };
            let (rf, pf) = match self.cell(*n, Server::Floor) {
                Some(f) if *server != Server::Floor => (
                    format!("{:.2}", c.rps / f.rps),
                    format!("{:.2}", c.stats.median / f.stats.median),
                ),
                _ => Default::default(),
            };
            let wasmtime = self
                .cell(*n, Server::Wasmtime)
                .filter(|_| matches!(server, Server::Host { .. }));
            let (rw, pw) = match wasmtime {
                Some(w) => {
                    let (r, p) = (c.rps / w.rps, c.stats.median / w.stats.median);
                    goals.push((
                        format!("{}, N = {n}: req/s ÷ `wasmtime serve`", server.label()),
                        r,
                        GOAL_RPS,
                        true,
                    ));
                    goals.push((
                        format!("{}, N = {n}: p50 ÷ `wasmtime serve`", server.label()),
                        p,
                        GOAL_P50,
                        false,
                    ));
                    (format!("{r:.2}"), format!("{p:.2}"))
                }
                None => Default::default(),
            };
            let _ = writeln!(
                out,
                "| {} | {n} | {:.0} | {:.0} | {:.0} | {} | {rf} | {pf} | {rw} | {pw} |",
                server.label(),
                c.rps,
                c.stats.median / 1e3,
                c.stats.p99 / 1e3,
                c.errors
            );
        }
        out.push_str(
            "\nreq/s = 200 answers to requests started in the timed window ÷ its length; errors = \
             other answers and failed requests in it. Bodies are read in full; each server's \
             first answer, before the timed cells, must be a 200 starting `hello`.\n\n#### Cold start: `POST /v1/workloads` → first 200 on `GET /hello` \
             (`host serve`)\n\n| variant | starts | min ms | p50 ms | max ms | `POST` reply p50 ms |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for cold in &self.cold {
            let ms = |ns: u128| ns as f64 / 1e6;
            let first = Stats::of(cold.first_200.clone());
            let (min, max) = (cold.first_200.iter().min(), cold.first_200.iter().max());
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                cold.label,
                cold.first_200.len(),
                ms(min.copied().unwrap_or_default()),
                first.median / 1e6,
                ms(max.copied().unwrap_or_default()),
                Stats::of(cold.post.clone()).median / 1e6,
            );
            if cold.cached {
                goals.push((
                    "cold start p50, compiled component cached, ms".into(),
                    first.median / 1e6,
                    GOAL_COLD_MS,
                    false,
                ));
            }
        }
        out.push_str("\n#### Goals\n\n| goal | measured | limit | result |\n|---|---:|---:|---|\n");
        for (what, value, limit, at_least) in goals {
            // Ratios to three decimals (1.203 is not 1.20), milliseconds to one.
            let digits = if limit < 10.0 { 3 } else { 1 };
            let met = if at_least {
                value >= limit
            } else {
                value <= limit
            };
            let _ = writeln!(
                out,
                "| {what} | {value:.digits$} | {} {limit:.digits$} | {} |",
                if at_least { "≥" } else { "≤" },
                if met { "**met**" } else { "**missed**" }
            );
        }
        if let Some((_, _, Err(why))) = self.cells.iter().find(|c| c.1 == Server::Wasmtime) {
            let _ = writeln!(
                out,
                "\nNot judged: the goals against `wasmtime serve` ({why})."
            );
        }
        out
    }
}

/// `bench http`: measures, prints the tables, writes `--markdown`.
pub fn main(args: &HttpArgs, progress: impl Fn(&str)) -> anyhow::Result<()> {
    let http = run_all(args, &progress)?;
    crate::report::print_and_save(&http.markdown(), args.markdown.as_deref())?;
    progress(&format!("http: done in {:.0} s", http.secs));
    Ok(())
}
