//! An extension's `main` in one line: [`main`] does the start-up every
//! extension shares.

use core::future::Future;

use std::process::ExitCode;

use crate::{ConfigError, ServeArgs, ServeError};

/// An extension's configuration: its own flags beside the shared ones.
///
/// ```ignore
/// #[derive(clap::Parser)]
/// struct Config {
///     #[command(flatten)]
///     serve: sdk::ServeArgs,
///     #[command(flatten)]
///     redis: RedisArgs,
/// }
///
/// impl sdk::Config for Config {
///     fn serve_args(&self) -> &sdk::ServeArgs {
///         &self.serve
///     }
/// }
/// ```
pub trait Config: clap::Parser {
    /// The shared flags, flattened into the extension's (`--listen`,
    /// `--nats-url`, `--http-addr`, …).
    fn serve_args(&self) -> &ServeArgs;
}

/// Runs an extension named `name`: `main` is `sdk::main("my-ext", run)`.
///
/// In order: answers `NAME healthcheck …` (the probe of images without a
/// shell); installs the TLS crypto provider; parses `C` from the command
/// line and environment; checks the shared flags; installs logging (and the
/// OpenTelemetry exporter if asked); then runs `run(config)` on a
/// multi-threaded runtime. The exit code is 0 once `run` returns (after the
/// drain), 2 for a usage error (clap's, a [`ConfigError`], or `run` failing
/// with one), and 1 for any other error, printed as `NAME: error` in one line.
pub fn main<C, F, Fut>(name: &str, run: F) -> ExitCode
where
    C: Config,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if let Some(code) = crate::health_check_command() {
        return code;
    }
    // Both ring and aws-lc-rs may be linked (the AWS SDK): without a chosen
    // provider, rustls panics at the first TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(why) = transport::endpoint::command_line_secret_error() {
        eprintln!("{name}: {why}");
        return ExitCode::from(USAGE);
    }
    // Usage and errors name the extension, whatever crate defines `C`.
    let parsed = C::command()
        .bin_name(name.to_string())
        .try_get_matches()
        .and_then(|mut matches| C::from_arg_matches_mut(&mut matches));
    let config = match parsed {
        Ok(config) => config,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    if let Err(err) = config.serve_args().validate() {
        eprintln!("{name}: {err}");
        return ExitCode::from(USAGE);
    }
    config.serve_args().init_logs(name);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{name}: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err:#}");
            if is_usage_error(&err) {
                ExitCode::from(USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The configuration of an extension with no flags of its own: the shared
/// ones (`--listen`, `--nats-url`, `--http-addr`, …).
#[derive(Debug, clap::Parser)]
#[command(about = None, long_about = None)]
pub struct SharedFlags {
    /// The shared flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Config for SharedFlags {
    fn serve_args(&self) -> &ServeArgs {
        &self.serve
    }
}

/// The whole `main` of an extension with no flags or backend set-up of its
/// own: serves `exports` as `name` at `version` (usually
/// `env!("CARGO_PKG_VERSION")`) with the shared flags, like [`main`].
///
/// ```no_run
/// # fn exports() -> impl sdk::Exports { sdk::Functions::new(); struct E; impl sdk::Exports for E { fn register(&self, _: &mut sdk::Functions) -> Result<(), sdk::RegisterError> { Ok(()) } } E }
/// fn main() -> std::process::ExitCode {
///     sdk::serve_main("my-extension", env!("CARGO_PKG_VERSION"), exports())
/// }
/// ```
pub fn serve_main(name: &str, version: &str, exports: impl crate::Exports) -> ExitCode {
    main(name, |flags: SharedFlags| async move {
        crate::Extension::new(name, flags.serve)
            .version(version)
            .run(exports)
            .await?;
        Ok(())
    })
}

/// The exit code of a usage error, as clap's.
const USAGE: u8 = 2;

fn is_usage_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<ConfigError>()
            || cause.is::<clap::Error>()
            || matches!(
                cause.downcast_ref::<ServeError>(),
                Some(ServeError::Config(_))
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_are_usage_errors_wherever_they_sit() {
        assert!(is_usage_error(&anyhow::Error::from(
            ConfigError::NoTransport
        )));
        assert!(is_usage_error(&anyhow::Error::from(ServeError::Config(
            ConfigError::ZeroConcurrency
        ))));
        assert!(is_usage_error(
            &anyhow::Error::from(ConfigError::NoTransport).context("starting")
        ));
        assert!(!is_usage_error(&anyhow::anyhow!("redis is down")));
    }
}
