//! `bench`: per-call latency, throughput and goals of the whole stack
//! (guest → host plugin → wRPC → extension), next to baselines measured in
//! the same run: raw TCP and Unix ping-pong, raw NATS request/reply, a
//! native redis-rs GET, an in-process host call, and the transport crate's
//! own client calling the echo extension without a guest.
//!
//! `./scripts/bench.sh` builds the release binaries, runs this once free and
//! once under `taskset -c 0` and rewrites `BENCHMARKS.md`. For a quick run:
//!
//! ```sh
//! cargo build --release --workspace --bins --examples
//! ./target/release/bench --iterations 1000 --duration-ms 1000
//! ```
//!
//! Child processes inherit this process's CPU affinity, so under
//! `taskset -c 0` every process of the run shares one core.

mod baselines;
mod blob;
mod compare;
mod containers;
mod http;
mod local;
mod messaging;
mod report;
mod workloads;

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use baselines::{Helper, Io, PingTarget};
use report::{Latencies, Placement, Report, Stats, ThroughputRow, Transport};
use workloads::{Guest, Stack};

/// Measure the latency and throughput of wRPC calls from Wasm guests.
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// What one run measures.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Timed calls per latency path.
    #[arg(long, env = "BENCH_ITERATIONS", default_value_t = 5000)]
    iterations: usize,
    /// Untimed warm-up calls before them.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// How long each caller of a throughput workload calls, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Concurrent callers of the throughput workloads.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    callers: Vec<usize>,
    /// Size of the large object put and got through the blobstore (0: skip).
    #[arg(long, default_value_t = 1 << 30)]
    blob_size: u64,
    /// Also write this run's tables, as a markdown section, to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// The helpers `bench` runs as (hidden from `--help`).
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Raw ping-pong server on a TCP and a Unix listener.
    #[command(hide = true)]
    Pong {
        #[arg(long, value_enum)]
        io: Io,
        /// `HOST:PORT` to bind.
        #[arg(long)]
        tcp: String,
        /// Socket path to bind.
        #[arg(long)]
        unix: PathBuf,
    },
    /// Raw NATS responder.
    #[command(hide = true)]
    NatsResponder {
        #[arg(long)]
        url: String,
    },
    /// Times the transport crate's client calling an echo extension at
    /// TARGET and prints the p50 and p99 (for profiling the transport
    /// without the host, e.g. under `perf record`).
    NativeEcho {
        /// The echo extension's endpoint, e.g. `tcp://127.0.0.1:7762`.
        target: String,
        /// Timed calls.
        #[arg(long, default_value_t = 100_000)]
        iterations: usize,
        /// Untimed calls before them.
        #[arg(long, default_value_t = 1000)]
        warmup: usize,
    },
    /// Only the large-object rows: a guest's put and get over TCP and NATS
    /// next to direct aws-sdk-s3, with peak RSS (a quick check, or for
    /// profiling the blob path).
    Blob {
        /// Size of the object.
        #[arg(long, default_value_t = 1 << 30)]
        size: u64,
    },
    /// Each image's size and idle resident memory (Podman; images from
    /// containers/build.sh).
    Containers,
    /// Messages publish → handler through messaging-nats and the host, next
    /// to a raw async-nats subscriber doing the same Redis work, for core
    /// NATS and JetStream.
    Messaging {
        /// Messages of the throughput measurement.
        #[arg(long, default_value_t = 5000)]
        count: usize,
        /// Messages of the paced latency measurement (5 ms apart).
        #[arg(long, default_value_t = 400)]
        paced: usize,
    },
    /// Two builds' hosts side by side in one run, on one stack (the same
    /// extensions, guests, Redis and NATS): guest echo and kv get latency
    /// over every transport, throughput, the messaging rows, each row old
    /// then new; and a WASI 0.3 guest's async import (new host only).
    Compare(compare::CompareArgs),
    /// What stays in the host process next to the same calls over a socket:
    /// a component → component echo linked in process next to the echo
    /// extension over Unix and TCP, and the embedded `wasi:keyvalue` (in
    /// memory) next to keyvalue-redis over Unix.
    Local(local::LocalArgs),
    /// The host as an HTTP server: hello-world req/s, p50 and p99 at each
    /// concurrency next to a native hyper server and `wasmtime serve` on the
    /// same component, and a workload's cold start through `host serve`.
    Http(http::HttpArgs),
    /// Native hyper server answering every request with `hello\n`.
    #[command(hide = true)]
    HttpHello {
        /// `HOST:PORT` to bind.
        #[arg(long)]
        listen: String,
    },
    /// Rewrites the generated part of a document from the sections of runs.
    #[command(hide = true)]
    Document {
        /// The document, e.g. `BENCHMARKS.md`.
        #[arg(long)]
        doc: PathBuf,
        /// The commit measured (`git rev-parse --short HEAD`, `-dirty` if changed).
        #[arg(long)]
        commit: String,
        /// The date of the run.
        #[arg(long)]
        date: String,
        /// What `nproc` printed.
        #[arg(long)]
        nproc: String,
        /// The command that reproduces the run.
        #[arg(long)]
        reproduce: String,
        /// The sections are `bench compare`'s: rewrite the part between the
        /// compare markers, naming this old build's commit.
        #[arg(long, value_name = "OLD_COMMIT")]
        compare: Option<String>,
        /// The sections are `bench local`'s: rewrite the part between the
        /// local markers.
        #[arg(long, conflicts_with = "compare")]
        local: bool,
        /// The sections are `bench http`'s: rewrite the part between the
        /// http markers.
        #[arg(long, conflicts_with_all = ["compare", "local"])]
        http: bool,
        /// Markdown sections written by `--markdown`, in order.
        sections: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.run),
        Some(Cmd::Pong { io, tcp, unix }) => baselines::serve_pong(io, &tcp, &unix),
        Some(Cmd::NatsResponder { url }) => baselines::serve_nats(&url),
        Some(Cmd::NativeEcho {
            target,
            iterations,
            warmup,
        }) => {
            let s = baselines::native_echo(&target, warmup, iterations)?;
            println!(
                "native echo via {target}: p50 {:.1} µs, p99 {:.1} µs",
                s.median / 1e3,
                s.p99 / 1e3
            );
            Ok(())
        }
        Some(Cmd::Blob { size }) => {
            let rows = blob::BlobStack::start()?.measure(size, progress)?;
            println!("{}", report::blob_table(&rows));
            Ok(())
        }
        Some(Cmd::Containers) => {
            let rows = containers::measure(progress)?;
            println!("{}", containers::table(&rows));
            Ok(())
        }
        Some(Cmd::Messaging { count, paced }) => {
            let rows = messaging::MessagingStack::start()?.measure(count, paced, progress)?;
            println!("{}", messaging::table(&rows));
            Ok(())
        }
        Some(Cmd::Compare(args)) => compare::main(&args, progress),
        Some(Cmd::Local(args)) => local::main(&args, progress),
        Some(Cmd::Http(args)) => http::main(&args, progress),
        Some(Cmd::HttpHello { listen }) => http::serve_hello(&listen),
        Some(Cmd::Document {
            doc,
            commit,
            date,
            nproc,
            reproduce,
            compare: old_commit,
            local,
            http,
            sections,
        }) => document(
            &doc,
            &Run {
                commit: &commit,
                old_commit: old_commit.as_deref(),
                local,
                http,
                date: &date,
                nproc: &nproc,
                reproduce: &reproduce,
            },
            &sections,
        ),
    }
}

/// Says what is being measured, on stderr (the tables go to stdout).
fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// Measures everything at the current placement, prints the tables and
/// writes them to `--markdown` if given.
fn run(args: &RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.iterations > 0, "--iterations must be at least 1");
    let placement = Placement::current();
    progress(&format!(
        "CPUs allowed {} (online {})",
        placement.allowed, placement.online
    ));
    let stack = Stack::start()?;
    let latency = measure_latency(&stack, args)?;
    let throughput = measure_throughput(&stack, args)?;
    drop(stack);
    let blob = if args.blob_size > 0 {
        blob::BlobStack::start()?.measure(args.blob_size, progress)?
    } else {
        Vec::new()
    };
    let report = Report {
        latency,
        throughput,
        blob,
        placement,
        iterations: args.iterations,
        warmup: args.warmup,
        duration_ms: args.duration_ms,
    };
    let markdown = report.markdown();
    writeln!(std::io::stdout().lock(), "{markdown}")?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Every latency path and baseline. Each goal's two sides are measured one
/// right after the other, so that drift on a noisy machine moves both rather
/// than their ratio.
fn measure_latency(stack: &Stack, args: &RunArgs) -> anyhow::Result<Latencies> {
    let (n, w) = (args.iterations, args.warmup);
    let host = harness::bin("host")?;
    let pong = |io: Io| {
        let unix = stack.socket_dir().join(format!("pong-{}.sock", io.name()));
        Helper::start(&[
            "pong",
            "--io",
            io.name(),
            "--tcp",
            "127.0.0.1:0",
            "--unix",
            &unix.to_string_lossy(),
        ])
    };
    let (pong_tokio, pong_blocking) = (pong(Io::Tokio)?, pong(Io::Blocking)?);
    let responder = Helper::start(&["nats-responder", "--url", &stack.nats_url()])?;
    let ping = |server: &Helper, scheme: &str, io: Io| -> anyhow::Result<Stats> {
        progress(&format!("latency: raw {scheme} ping-pong, {}", io.name()));
        let addr = server.address(scheme)?;
        let target = match scheme {
            "tcp" => PingTarget::Tcp(addr),
            _ => PingTarget::Unix(addr),
        };
        baselines::ping_pong(target, io, w, n)
    };
    let echo = |t: Transport| -> anyhow::Result<(Transport, Stats)> {
        progress(&format!("latency: guest echo over {}", t.label()));
        let target = stack.target(Guest::Echo, t)?;
        Ok((t, workloads::echo_latency(&host, &target, w, n)?))
    };
    let native = |t: Transport| -> anyhow::Result<(Transport, Stats)> {
        progress(&format!("latency: native client echo over {}", t.label()));
        let target = stack.target(Guest::Echo, t)?;
        Ok((t, baselines::native_echo(&target, w, n)?))
    };

    let raw_tcp = ping(&pong_tokio, "tcp", Io::Tokio)?;
    let raw_tcp_blocking = ping(&pong_blocking, "tcp", Io::Blocking)?;
    let echo_tcp = echo(Transport::Tcp)?;
    let native_tcp = native(Transport::Tcp)?;
    let echo_ws = echo(Transport::Ws)?;
    let native_ws = native(Transport::Ws)?;
    let raw_unix = ping(&pong_tokio, "unix", Io::Tokio)?;
    let raw_unix_blocking = ping(&pong_blocking, "unix", Io::Blocking)?;
    let echo_unix = echo(Transport::Unix)?;
    let native_unix = native(Transport::Unix)?;
    progress("latency: raw NATS request/reply");
    let raw_nats = baselines::nats_request(&stack.nats_url(), w, n)?;
    let echo_nats = echo(Transport::Nats)?;
    let native_nats = native(Transport::Nats)?;
    drop((pong_tokio, pong_blocking, responder));

    progress("latency: native redis-rs GET");
    let redis_get = baselines::redis_get(&stack.redis_url(), w, n)?;
    let mut host_call = None;
    let mut kv_get = Vec::new();
    for t in Transport::ALL {
        progress(&format!("latency: guest kv get over {}", t.label()));
        let (call, get) = workloads::kv_latency(&host, &stack.target(Guest::Kv, t)?, w, n)?;
        host_call.get_or_insert(call);
        kv_get.push((t, get));
    }
    Ok(Latencies {
        host_call: host_call.context("no kv run")?,
        raw_tcp,
        raw_tcp_blocking,
        raw_unix,
        raw_unix_blocking,
        raw_nats,
        redis_get,
        echo: vec![echo_tcp, echo_unix, echo_ws, echo_nats],
        native_echo: vec![native_tcp, native_unix, native_ws, native_nats],
        kv_get,
    })
}

/// Calls per second of echo over every transport and kv get over TCP and
/// NATS, at each `--callers` level.
fn measure_throughput(stack: &Stack, args: &RunArgs) -> anyhow::Result<Vec<ThroughputRow>> {
    let paths = Transport::ALL
        .map(|t| (Guest::Echo, t))
        .into_iter()
        .chain([(Guest::Kv, Transport::Tcp), (Guest::Kv, Transport::Nats)]);
    let host = harness::bin("host")?;
    let mut rows = Vec::new();
    for (guest, t) in paths {
        let path = workloads::throughput_path(guest, t);
        let target = stack.target(guest, t)?;
        let mut rates = Vec::new();
        for &callers in &args.callers {
            progress(&format!("throughput: {path}, callers: {callers}"));
            rates.push(workloads::throughput(
                &host,
                guest,
                &target,
                callers,
                args.duration_ms,
            )?);
        }
        rows.push(ThroughputRow { path, rates });
    }
    Ok(rows)
}

/// What a documented run was.
struct Run<'a> {
    /// The commit measured.
    commit: &'a str,
    /// The old build's commit (`bench compare`).
    old_commit: Option<&'a str>,
    /// The sections are `bench local`'s.
    local: bool,
    /// The sections are `bench http`'s.
    http: bool,
    date: &'a str,
    nproc: &'a str,
    reproduce: &'a str,
}

/// Rewrites the part of `doc` between the markers (the compare markers when
/// the run names an old commit, the local or http markers for `bench
/// local`'s or `bench http`'s): the run's context, how to reproduce it,
/// then each placement's section.
fn document(doc: &std::path::Path, run: &Run<'_>, sections: &[PathBuf]) -> anyhow::Result<()> {
    let version = |cmd: &str| -> String {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| {
                s.split_whitespace()
                    .find_map(|w| w.strip_prefix("v=").or_else(|| w.strip_prefix('v')))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "?".into())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "?".into());
    let Run {
        commit,
        old_commit,
        local,
        http,
        date,
        nproc,
        reproduce,
    } = run;
    let against = old_commit.map_or_else(String::new, |old| {
        format!(" (the new build) against `{old}` (the old build)")
    });
    let tools = if *http {
        http::tools()
    } else {
        format!(
            "nats-server {}, redis-server {}",
            version("nats-server"),
            version("redis-server")
        )
    };
    let mut generated = format!(
        "Run of {date} at commit `{commit}`{against}, release build; `nproc`: {nproc} ({cpu}); \
         {tools}.\n\nReproduce (builds the release binaries, runs both placements and \
         rewrites this part of the file):\n\n```sh\n{reproduce}\n```\n",
    );
    for section in sections {
        let text = std::fs::read_to_string(section)
            .with_context(|| format!("reading {}", section.display()))?;
        generated.push('\n');
        generated.push_str(text.trim_end());
        generated.push('\n');
    }
    let old = std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let (begin, end) = if old_commit.is_some() {
        (compare::BEGIN, compare::END)
    } else if *local {
        (local::BEGIN, local::END)
    } else if *http {
        (http::BEGIN, http::END)
    } else {
        (report::BEGIN, report::END)
    };
    std::fs::write(doc, report::splice(&old, begin, end, &generated)?)
        .with_context(|| format!("writing {}", doc.display()))
}
