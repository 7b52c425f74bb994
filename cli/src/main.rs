//! `wrpc-ext`: command-line tools for wRPC extensions.
//!
//! - `wrpc-ext call TARGET INSTANCE.FUNC [ARG ...]`: calls one function,
//!   arguments and results as JSON, typed by WIT (`--wit`, or what the
//!   target describes);
//! - `wrpc-ext describe TARGET`: what an extension says it serves;
//! - `wrpc-ext new NAME --wit PATH`: a new extension crate from a WIT world.
//!
//! Exit codes: 0 success, 1 the call failed (one line on stderr), 2 usage
//! errors (bad arguments, unknown function, bad WIT).

mod call;
mod describe;
mod new;
mod remote;
mod wit_source;

use std::process::ExitCode;

use clap::Parser as _;

/// Command-line tools for wRPC extensions.
#[derive(Debug, clap::Parser)]
#[command(name = "wrpc-ext", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One module per subcommand, each with its `Args` and
/// `async fn run(Args) -> Result<(), Fail>`.
#[derive(Debug, clap::Subcommand)]
enum Command {
    Call(call::Args),
    Describe(describe::Args),
    New(new::Args),
}

/// Why a command failed: its exit code and one message.
#[derive(Debug)]
pub struct Fail {
    code: u8,
    message: String,
}

impl Fail {
    /// A usage error (exit 2): bad arguments, unknown function, bad WIT.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// A failed call (exit 1), in one line.
    pub fn call(message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            code: 1,
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

fn main() -> ExitCode {
    // Both ring and aws-lc-rs may be linked: without a chosen provider,
    // rustls panics at the first TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(why) = transport::endpoint::command_line_secret_error() {
        eprintln!("wrpc-ext: {why}");
        return ExitCode::from(2);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("wrpc-ext: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let done = runtime.block_on(async {
        match cli.command {
            Command::Call(args) => call::run(args).await,
            Command::Describe(args) => describe::run(args).await,
            Command::New(args) => new::run(args).await,
        }
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            eprintln!("wrpc-ext: {}", fail.message);
            ExitCode::from(fail.code)
        }
    }
}
