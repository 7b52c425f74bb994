//! A WASI 0.3 command (`wasi:cli/run@0.3.0`) that calls the `async func`s of
//! `example:streams/bytes@0.1.0` through the host's routed import: a plain
//! value, then `SIZE` bytes (default 1 MiB) out through `tally`, then out
//! and back through `echo`, both streamed while they are written. It prints
//! one line per call (through std, which speaks WASI 0.2: the component
//! imports both versions) and fails unless every byte went out and came back.

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

struct Command;

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
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

        if tally == want && echoed == want {
            println!("all {size} bytes went out and came back");
            Ok(())
        } else {
            println!("expected {} bytes, sum {}", want.0, want.1);
            Err(())
        }
    }
}

wasip3::cli::command::export!(Command);
