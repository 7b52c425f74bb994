//! A WASI 0.3 command (`wasi:cli/run@0.3.0`) that calls the `async func`s of
//! `example:streams/bytes@0.1.0` through the host's routed import: a plain
//! value, then `SIZE` bytes (default 1 MiB) out through `tally`, then out
//! and back through `echo`, both streamed while they are written; then a
//! `stream<string>` back (`count`), a `stream<u32>` out with a `future<u64>`
//! back (`sum`), a `future<string>` out (`shout`). It prints one line per
//! call (through std, which speaks WASI 0.2: the component imports both
//! versions) and fails unless everything came back as sent.
//!
//! With `BENCH=latency` it times `ITERATIONS` calls of `greet` after
//! `WARMUP` ones instead and prints `bench p3-greet: n=… median_ns=…
//! p99_ns=…` (used by the `bench` crate).

wit_bindgen::generate!({
    world: "client",
    path: "../../../wit/streams",
    generate_all,
});

use example::streams::bytes;
use wit_bindgen::{StreamReader, StreamResult, StreamWriter};

/// Bytes written or read at a time.
const CHUNK: usize = 64 * 1024;

/// Byte `i` of what the guest sends.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(7) % 251) as u8
}

/// Length and sum of the first `size` bytes of the pattern.
fn expected(size: usize) -> (u64, u64) {
    let sum = (0..size).fold(0u64, |s, i| s.wrapping_add(u64::from(pattern(i))));
    (size as u64, sum)
}

/// Writes `size` bytes of the pattern, then ends the stream.
async fn send(mut tx: StreamWriter<u8>, size: usize) {
    let mut sent = 0;
    while sent < size {
        let n = CHUNK.min(size - sent);
        let rest = tx.write_all((sent..sent + n).map(pattern).collect()).await;
        if !rest.is_empty() {
            return;
        }
        sent += n;
    }
}

/// Reads `rx` to its end: how many bytes, and their sum.
async fn tally_of(mut rx: StreamReader<u8>) -> (u64, u64) {
    let (mut len, mut sum) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(CHUNK);
    loop {
        let (result, read) = rx.read(buf).await;
        buf = read;
        match result {
            StreamResult::Complete(_) => {
                len += buf.len() as u64;
                sum = buf.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                buf.clear();
            }
            StreamResult::Dropped | StreamResult::Cancelled => return (len, sum),
        }
    }
}

/// `count`, `sum` and `shout`: typed streams and futures both ways.
async fn typed() -> bool {
    let mut numbers = bytes::count(250).await;
    let mut got = Vec::new();
    loop {
        let (result, read) = numbers.read(Vec::with_capacity(64)).await;
        match result {
            StreamResult::Complete(_) => got.extend(read),
            StreamResult::Dropped | StreamResult::Cancelled => break,
        }
    }
    let want: Vec<String> = (1..=250).map(|i: u32| i.to_string()).collect();
    println!("count: {} strings, last {:?}", got.len(), got.last());

    let (mut tx, rx) = wit_stream::new::<u32>();
    let send = async move {
        for chunk in (1..=1000u32).collect::<Vec<_>>().chunks(100) {
            if !tx.write_all(chunk.to_vec()).await.is_empty() {
                return;
            }
        }
    };
    let (total, ()) = futures::join!(bytes::sum(rx), send);
    let total = total.await;
    println!("sum: {total}");

    let (writer, reader) = wit_future::new::<String>(String::new);
    let (shouted, _) = futures::join!(bytes::shout(reader), writer.write("quiet".into()));
    println!("shout: {shouted}");
    got == want && total == 500_500 && shouted == "QUIET"
}

/// `BENCH=latency`: the guest times each call of `greet`.
async fn latency() -> Result<(), ()> {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (warmup, iterations) = (env("WARMUP", 200), env("ITERATIONS", 5000));
    for _ in 0..warmup {
        bytes::greet("bench".into()).await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = std::time::Instant::now();
        bytes::greet("bench".into()).await;
        samples.push(start.elapsed().as_nanos());
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "bench p3-greet: n={} median_ns={} p99_ns={}",
        samples.len(),
        at(0.5),
        at(0.99)
    );
    Ok(())
}

struct Command;

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        if std::env::var("BENCH").as_deref() == Ok("latency") {
            return latency().await;
        }
        let size = std::env::var("SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1 << 20);
        let want = expected(size);
        println!("greet: {}", bytes::greet("a WASI 0.3 guest".into()).await);

        let (tx, rx) = wit_stream::new::<u8>();
        let (tally, ()) = futures::join!(bytes::tally(rx), send(tx, size));
        println!("tally: {} bytes, sum {}", tally.0, tally.1);

        let (tx, rx) = wit_stream::new::<u8>();
        let back = async move { tally_of(bytes::echo(rx).await).await };
        let (echoed, ()) = futures::join!(back, send(tx, size));
        println!("echo: {} bytes back, sum {}", echoed.0, echoed.1);

        let typed = typed().await;
        if tally == want && echoed == want && typed {
            println!("all {size} bytes went out and came back");
            Ok(())
        } else {
            println!("expected {} bytes, sum {}", want.0, want.1);
            Err(())
        }
    }
}

wasip3::cli::command::export!(Command);
