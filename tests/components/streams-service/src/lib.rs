//! A WASI 0.3 component exporting `example:streams/bytes@0.1.0`: `echo`
//! copies its input stream to the stream it returns chunk by chunk (a task
//! of its own keeps copying after the function returned), `tally` counts
//! and sums, `greet` answers, `count` writes a stream of strings, `sum` reads
//! a stream of numbers into a future, `shout` awaits a future. The host
//! serves it under `exports:`.

wit_bindgen::generate!({
    world: "service",
    path: "../../../wit/streams",
    generate_all,
});

use exports::example::streams::bytes::Guest;
use wit_bindgen::{FutureReader, StreamReader, StreamResult};

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

struct Service;

impl Guest for Service {
    async fn echo(mut data: StreamReader<u8>) -> StreamReader<u8> {
        let (mut tx, rx) = wit_stream::new::<u8>();
        wit_bindgen::spawn_local(async move {
            loop {
                let (result, chunk) = data.read(Vec::with_capacity(CHUNK)).await;
                match result {
                    StreamResult::Complete(_) => {
                        if !tx.write_all(chunk).await.is_empty() {
                            return;
                        }
                    }
                    StreamResult::Dropped | StreamResult::Cancelled => return,
                }
            }
        });
        rx
    }

    async fn tally(mut data: StreamReader<u8>) -> (u64, u64) {
        let (mut len, mut sum) = (0u64, 0u64);
        loop {
            let (result, chunk) = data.read(Vec::with_capacity(CHUNK)).await;
            match result {
                StreamResult::Complete(_) => {
                    len += chunk.len() as u64;
                    sum = chunk.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                }
                StreamResult::Dropped | StreamResult::Cancelled => return (len, sum),
            }
        }
    }

    async fn greet(name: String) -> String {
        format!("hello {name}, from a WASI 0.3 component")
    }

    async fn count(n: u32) -> StreamReader<String> {
        let (mut tx, rx) = wit_stream::new::<String>();
        wit_bindgen::spawn_local(async move {
            for chunk in (1..=n).collect::<Vec<_>>().chunks(100) {
                let words = chunk.iter().map(u32::to_string).collect();
                if !tx.write_all(words).await.is_empty() {
                    return;
                }
            }
        });
        rx
    }

    async fn sum(mut values: StreamReader<u32>) -> FutureReader<u64> {
        let (tx, rx) = wit_future::new::<u64>(|| 0);
        wit_bindgen::spawn_local(async move {
            let mut total = 0u64;
            loop {
                let (result, chunk) = values.read(Vec::with_capacity(256)).await;
                match result {
                    StreamResult::Complete(_) => {
                        total = chunk.iter().fold(total, |s, v| s.wrapping_add(u64::from(*v)));
                    }
                    StreamResult::Dropped | StreamResult::Cancelled => break,
                }
            }
            let _ = tx.write(total).await;
        });
        rx
    }

    async fn shout(name: FutureReader<String>) -> String {
        name.await.to_uppercase()
    }
}

export!(Service);
