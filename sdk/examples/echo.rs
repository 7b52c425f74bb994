//! A complete extension in one file: serves `example:echo/echo@0.1.0`
//! (`wit/echo/echo.wit`) over NATS and/or TCP.
//!
//! ```sh
//! cargo run -p sdk --example echo -- --listen tcp://127.0.0.1:7762 --http-addr 127.0.0.1:9091
//! ```
//!
//! A workload routes a guest's import to it with
//! `wrpc: [{ interface: example:echo/echo, target: tcp://127.0.0.1:7762 }]`.

use std::process::ExitCode;

use sdk::CallerContext;

mod bindings {
    sdk::generate!({ world: "extension", path: "../wit/echo" });
}

use bindings::exports::example::echo::echo::Handler;

/// Serve example:echo/echo over wRPC.
#[derive(clap::Parser)]
struct Config {
    #[command(flatten)]
    serve: sdk::ServeArgs,
}

/// The handler: answers with the message and the caller's workload, if known.
#[derive(Clone)]
struct Echo;

impl Handler<CallerContext> for Echo {
    async fn echo(&self, cx: CallerContext, message: String) -> anyhow::Result<String> {
        let caller = cx.workload().unwrap_or("anonymous");
        Ok(format!("echo to {caller}: {message}"))
    }
}

impl sdk::Config for Config {
    fn serve_args(&self) -> &sdk::ServeArgs {
        &self.serve
    }
}

fn main() -> ExitCode {
    sdk::main("echo", |config: Config| async move {
        sdk::Extension::new("echo", config.serve)
            .version(env!("CARGO_PKG_VERSION"))
            .run(bindings::serve_exports(Echo))
            .await?;
        Ok(())
    })
}
