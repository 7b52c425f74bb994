//! `SCENARIO=steady`, shared by the guests that include it (`#[path]`): one
//! call after another, never stopping on an error, until the file
//! `STOP_FILE` (default `/ctl/stop`, in a preopened directory) exists or
//! `DURATION_MS` (default 120000) has passed. Every time is the guest's
//! own: wall clock (`wasi:clocks/wall-clock`, Unix ns) for when a call
//! started or ended, monotonic clock for how long it took.
//!
//! Output, bounded whatever the fault:
//!
//! - `steady: started unix_ns=T` before the first call;
//! - per run of consecutive failures, when it ends (at the next success or
//!   at the end): `steady: failures n=N first_start_ns=A first_end_ns=B
//!   last_start_ns=C last_end_ns=D max_ns=M recovered_ns=R err=E` (when
//!   the run's first and last calls started and ended; `R`: when the
//!   success ending the run ended, 0 if none; `E`: the run's first error);
//!   at most 50 such lines;
//! - per call longer than `DEADLINE_MS` + `SLACK_MS` (a hung call):
//!   `steady: hung start_ns=S ns=D ok=BOOL`, at most 20 lines;
//! - last: `steady: done ok=… failed=… hung=… max_ns=… runs=…
//!   last_ok_ns=… end_ns=…` (`last_ok_ns`: when the last success ended).
//!
//! After a failure it pauses `FAIL_PAUSE_MS` (default 10) before the next
//! call, so a fault answering at once does not become a busy loop.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn config<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A run of consecutive failed calls.
struct Run {
    n: u64,
    first_start_ns: u128,
    first_end_ns: u128,
    last_start_ns: u128,
    last_end_ns: u128,
    max_ns: u128,
    err: String,
}

/// Calls `call` in a loop as the module's doc says; `call` returns the
/// call's error as one line.
pub fn steady(mut call: impl FnMut() -> Result<(), String>) {
    let limit = Duration::from_millis(config("DURATION_MS", 120_000));
    let hung_after = u128::from(config::<u64>("DEADLINE_MS", 2_000) + config::<u64>("SLACK_MS", 1_000)) * 1_000_000;
    let fail_pause = Duration::from_millis(config("FAIL_PAUSE_MS", 10));
    let stop: String = config("STOP_FILE", "/ctl/stop".to_string());
    let (mut ok, mut failed, mut hung, mut max_ns, mut runs, mut last_ok_ns) = (0u64, 0u64, 0u64, 0u128, 0u64, 0u128);
    let mut run: Option<Run> = None;
    let report = |run: Run, recovered_ns: u128, runs: &mut u64| {
        *runs += 1;
        if *runs <= 50 {
            println!(
                "steady: failures n={} first_start_ns={} first_end_ns={} last_start_ns={} last_end_ns={} max_ns={} recovered_ns={recovered_ns} err={}",
                run.n,
                run.first_start_ns,
                run.first_end_ns,
                run.last_start_ns,
                run.last_end_ns,
                run.max_ns,
                run.err.replace('\n', " ")
            );
        }
    };
    println!("steady: started unix_ns={}", unix_ns());
    let begin = Instant::now();
    while begin.elapsed() < limit && !std::path::Path::new(&stop).exists() {
        let start_ns = unix_ns();
        let start = Instant::now();
        let result = call();
        let ns = start.elapsed().as_nanos();
        let end_ns = unix_ns();
        max_ns = max_ns.max(ns);
        if ns > hung_after {
            hung += 1;
            if hung <= 20 {
                println!("steady: hung start_ns={start_ns} ns={ns} ok={}", result.is_ok());
            }
        }
        match result {
            Ok(()) => {
                ok += 1;
                last_ok_ns = end_ns;
                if let Some(done) = run.take() {
                    report(done, end_ns, &mut runs);
                }
            }
            Err(err) => {
                failed += 1;
                let r = run.get_or_insert(Run {
                    n: 0,
                    first_start_ns: start_ns,
                    first_end_ns: end_ns,
                    last_start_ns: 0,
                    last_end_ns: 0,
                    max_ns: 0,
                    err,
                });
                r.n += 1;
                r.last_start_ns = start_ns;
                r.last_end_ns = end_ns;
                r.max_ns = r.max_ns.max(ns);
                std::thread::sleep(fail_pause);
            }
        }
    }
    if let Some(done) = run.take() {
        report(done, 0, &mut runs);
    }
    println!(
        "steady: done ok={ok} failed={failed} hung={hung} max_ns={max_ns} runs={runs} last_ok_ns={last_ok_ns} end_ns={}",
        unix_ns()
    );
}
