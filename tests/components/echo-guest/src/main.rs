//! Calls `example:echo/echo.echo` and prints the answers, one per line: `COUNT`
//! calls (default 1) with `MESSAGE #i` (component config; default `hello`).
//!
//! With `BENCH` set it measures instead (used by the `bench` crate):
//!
//! - `BENCH=latency`: `WARMUP` calls (default 200), then `ITERATIONS` calls
//!   (default 5000) each timed with `wasi:clocks`; prints
//!   `bench echo: n=… median_ns=… p99_ns=…`;
//! - `BENCH=throughput`: `WARMUP` calls (default 20), then calls in a loop
//!   for `DURATION_MS` (default 2000); prints
//!   `bench throughput: calls=… start_unix_ns=… end_unix_ns=…` (wall clock,
//!   so the callers of one workload can be summed over a common window).
//!
//! Any other `BENCH` value, or a wrong answer, prints `FAIL: …` and exits 1.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/echo",
        world: "client",
    });
}

use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bindings::example::echo::echo::echo;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn fail(msg: impl AsRef<str>) -> ! {
    println!("FAIL: {}", msg.as_ref());
    exit(1)
}

/// One call, checked: the echo extension answers `echo to WORKLOAD: MESSAGE`.
fn call(message: &str) {
    let answer = echo(message);
    if !answer.ends_with(message) {
        fail(format!("echo answered `{answer}` to `{message}`"));
    }
}

fn unix_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn latency(message: &str) {
    let iterations: usize = env_or("ITERATIONS", 5000).max(1);
    for _ in 0..env_or("WARMUP", 200usize) {
        call(message);
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        call(message);
        samples.push(start.elapsed().as_nanos());
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!("bench echo: n={} median_ns={} p99_ns={}", samples.len(), at(0.5), at(0.99));
}

fn throughput(message: &str) {
    let duration = Duration::from_millis(env_or("DURATION_MS", 2000));
    for _ in 0..env_or("WARMUP", 20usize) {
        call(message);
    }
    let start_unix = unix_ns();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < duration {
        call(message);
        calls += 1;
    }
    println!("bench throughput: calls={calls} start_unix_ns={start_unix} end_unix_ns={}", unix_ns());
}

fn main() {
    let message = std::env::var("MESSAGE").unwrap_or_else(|_| "hello".into());
    match std::env::var("BENCH").ok().as_deref() {
        None => {
            let count: usize = env_or("COUNT", 1);
            for i in 0..count {
                println!("{}", echo(&format!("{message} #{i}")));
            }
        }
        Some("latency") => latency(&message),
        Some("throughput") => throughput(&message),
        Some(other) => fail(format!("unknown BENCH `{other}`")),
    }
}
