//! An extension serving `example:streams/bytes@0.1.0` (`wit/streams/`), whose
//! functions are WIT `async func`s over `stream<u8>`, `stream<T>` and
//! `future<T>`: what WASI 0.3 guests route. Streams pass through in bounded
//! memory: `echo` sends each chunk back as it arrives.
//!
//! ```sh
//! cargo run -p sdk --example bytes -- --listen tcp://127.0.0.1:7763
//! ```

use std::process::ExitCode;

use core::future::Future;
use core::pin::Pin;
use futures::StreamExt as _;

use futures::Stream;
use sdk::{
    CallerContext, Exports, Functions, IncomingBytes, OutgoingBytes, OutgoingStream, RegisterError,
};

const INSTANCE: &str = "example:streams/bytes@0.1.0";

/// A `stream<u32>` parameter, in chunks.
type Numbers = Pin<Box<dyn Stream<Item = Vec<u32>> + Send>>;

/// A `future<T>`, as a parameter or a result.
type Later<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Serve example:streams/bytes over wRPC.
#[derive(clap::Parser)]
struct Config {
    #[command(flatten)]
    serve: sdk::ServeArgs,
}

impl sdk::Config for Config {
    fn serve_args(&self) -> &sdk::ServeArgs {
        &self.serve
    }
}

/// The functions, registered with the WIT that types them.
struct Bytes;

impl Exports for Bytes {
    fn register(&self, fns: &mut Functions) -> Result<(), RegisterError> {
        fns.add_wit(&[wit::STREAMS])?;
        fns.export(&[INSTANCE])?;
        fns.serve(
            INSTANCE,
            "echo",
            |_: CallerContext, (data,): (IncomingBytes,)| async move {
                // A body that breaks off ends the echo there: a `stream<u8>`
                // carries no error, so the caller's tally tells the difference.
                Ok((OutgoingBytes::new(data.into_bytes()),))
            },
        )?;
        fns.serve(
            INSTANCE,
            "tally",
            |_: CallerContext, (mut data,): (IncomingBytes,)| async move {
                let (mut len, mut sum) = (0u64, 0u64);
                while let Some(chunk) = data.next().await {
                    let chunk = chunk?;
                    len += chunk.len() as u64;
                    sum = chunk.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                }
                Ok(((len, sum),))
            },
        )?;
        fns.serve(
            INSTANCE,
            "greet",
            |cx: CallerContext, (name,): (String,)| async move {
                let caller = cx.workload().unwrap_or("anonymous").to_string();
                Ok((format!(
                    "hello {name}, from the bytes extension (called by {caller})"
                ),))
            },
        )?;
        fns.serve(
            INSTANCE,
            "count",
            |_: CallerContext, (n,): (u32,)| async move {
                // At most 100 numbers a chunk, as the reader takes them.
                let chunks = futures::stream::iter(1..=n)
                    .map(|i| i.to_string())
                    .chunks(100);
                Ok((OutgoingStream::new(chunks),))
            },
        )?;
        fns.serve(
            INSTANCE,
            "sum",
            |_: CallerContext, (values,): (Numbers,)| async move {
                let total: Later<u64> = Box::pin(values.fold(0u64, |sum, chunk| async move {
                    chunk.iter().fold(sum, |s, v| s.wrapping_add(u64::from(*v)))
                }));
                Ok((total,))
            },
        )?;
        fns.serve(
            INSTANCE,
            "shout",
            |_: CallerContext, (name,): (Later<String>,)| async move {
                Ok((name.await.to_uppercase(),))
            },
        )?;
        Ok(())
    }
}

fn main() -> ExitCode {
    sdk::main("bytes", |config: Config| async move {
        sdk::Extension::new("bytes", config.serve)
            .version(env!("CARGO_PKG_VERSION"))
            .run(Bytes)
            .await?;
        Ok(())
    })
}
