//! A WASI 0.3 component exporting `example:streams/bytes@0.1.0`: `echo`
//! copies its input stream to the stream it returns chunk by chunk (a task
//! of its own keeps copying after the function returned), `tally` counts
//! and sums, `greet` answers. The host serves it under `exports:`.

wit_bindgen::generate!({
    world: "service",
    path: "../../../wit/streams",
    generate_all,
});

use exports::example::streams::bytes::Guest;
use wit_bindgen::{StreamReader, StreamResult};

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
}

export!(Service);
