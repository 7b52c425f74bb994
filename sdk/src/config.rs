//! Command-line and environment configuration shared by every extension.

use core::net::SocketAddr;
use core::time::Duration;

use ops::LogFormat;
use transport::{Endpoint, LimitArgs};

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--nats-url` names another scheme.
    #[error("--nats-url `{0}` is not a nats:// URL")]
    NotNats(String),
    /// Neither NATS nor any listener was configured.
    #[error("nothing to serve on: pass --nats-url and/or --listen (tcp://, unix://, ws://, wss:// or nats://)")]
    NoTransport,
    /// `--max-concurrency` was zero.
    #[error("--max-concurrency must be at least 1")]
    ZeroConcurrency,
    /// A limit was zero.
    #[error("--{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// Namespaces are isolated but a listener names no trusted source for them.
    #[error("{flag} needs every listener to say where a call's namespace comes from, and {url} does not: add namespace=NAME, namespace_from=cert (mutual TLS), uid_namespace=UID:NAME (unix://) or, where every caller is trusted, namespace_from=headers (docs/SECURITY.md)")]
    NoNamespaceSource {
        /// The extension's flag that isolates namespaces.
        flag: &'static str,
        /// The listener without a source (credentials redacted).
        url: String,
    },
    /// An extension's own flag (or a combination of its flags) is unusable;
    /// the message names it.
    #[error("{0}")]
    Flag(String),
}

/// Flags every extension shares; pull them into a binary's config with
/// `#[command(flatten)]`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// NATS to serve on: nats://[USER:PASS@|TOKEN@]HOST[:PORT][,HOST[:PORT]…][/PREFIX][?creds=FILE|nkey=FILE|token_env=VAR|password_env=VAR|tls_ca=FILE|tls_cert=FILE|tls_key=FILE|queue_group=NAME] (off when unset).
    #[arg(long, env = "WRPC_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<Endpoint>,

    /// Subject prefix for wRPC over NATS (overrides the URL's path).
    #[arg(long, env = "WRPC_PREFIX")]
    pub prefix: Option<String>,

    /// NATS queue group, so replicas share the calls (default: the URL's, else the extension's name).
    #[arg(long, env = "WRPC_QUEUE_GROUP")]
    pub queue_group: Option<String>,

    /// Accept wRPC here: tcp://HOST:PORT, unix:///PATH, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH?tls_cert=FILE&tls_key=FILE[&tls_ca=FILE], or nats://… (repeatable; env: space-separated). Port 0 picks a free port; the bound address is printed on stdout.
    #[arg(long = "listen", env = "WRPC_LISTEN", value_delimiter = ' ')]
    pub listen: Vec<Endpoint>,

    /// Address of the HTTP endpoint serving /healthz, /readyz and /metrics.
    #[arg(long, env = "WRPC_HTTP_ADDR", default_value = "127.0.0.1:9090")]
    pub http_addr: SocketAddr,

    /// Most calls handled at once, over all transports; further ones wait.
    #[arg(long, env = "WRPC_MAX_CONCURRENCY", default_value_t = 1024)]
    pub max_concurrency: usize,

    /// How long calls in flight may run after SIGTERM or ctrl-c.
    #[arg(long, env = "WRPC_SHUTDOWN_GRACE", default_value = "10s", value_parser = transport::parse_duration)]
    pub shutdown_grace: Duration,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Where each call's span goes: --otlp-endpoint and the flags beside it.
    #[command(flatten)]
    pub otlp: ops::otlp::OtlpArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub limits: LimitArgs,
}

impl ServeArgs {
    /// Installs logging in `--log-format`, and the span exporter if
    /// `--otlp-endpoint` is set, with `service` as the service name (the
    /// extension's name). Call it once, first thing after parsing.
    pub fn init_logs(&self, service: &str) {
        ops::logs::init_with(
            self.log_format,
            "info",
            self.otlp.config().map(|c| (c, service)),
        );
    }

    /// Checks the values that clap cannot check alone.
    ///
    /// # Errors
    ///
    /// Returns a [`ConfigError`] naming the first unusable value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.nats_url {
            if !matches!(url, Endpoint::Nats(_)) {
                return Err(ConfigError::NotNats(url.to_string()));
            }
        }
        if self.nats_url.is_none() && self.listen.is_empty() {
            return Err(ConfigError::NoTransport);
        }
        if self.max_concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        let l = &self.limits;
        for (name, value) in [
            ("max-frame", l.max_frame),
            ("max-name", l.max_name),
            ("max-list", l.max_list),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if l.max_connections == 0 {
            return Err(ConfigError::ZeroLimit("max-connections"));
        }
        Ok(())
    }

    /// Checks that every listener names where its calls' namespace comes
    /// from, for an extension whose `flag` isolates data by namespace.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoNamespaceSource`] naming the first listener without one.
    pub fn require_namespace_sources(&self, flag: &'static str) -> Result<(), ConfigError> {
        match self
            .nats_url
            .iter()
            .chain(&self.listen)
            .find(|e| !e.access().namespace.is_configured())
        {
            Some(url) => Err(ConfigError::NoNamespaceSource {
                flag,
                url: url.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Every endpoint to serve on: `--nats-url` (with `--prefix` and
    /// `--queue-group` applied) and each `--listen`.
    pub fn endpoints(&self, name: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        for endpoint in self.nats_url.iter().chain(&self.listen) {
            let mut endpoint = endpoint.clone();
            if let Endpoint::Nats(nats) = &mut endpoint {
                if let Some(prefix) = &self.prefix {
                    nats.prefix.clone_from(prefix);
                }
                if let Some(group) = &self.queue_group {
                    nats.queue_group = Some(group.clone());
                }
                if nats.queue_group.is_none() {
                    nats.queue_group = Some(name.to_string());
                }
            }
            out.push(endpoint);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn listeners_of_every_scheme() {
        let cli = Cli::try_parse_from([
            "x",
            "--listen",
            "tcp://127.0.0.1:0",
            "--listen",
            "unix:///tmp/x.sock ws://0.0.0.0:8080/wrpc",
            "--nats-url",
            "nats://u:p@h:4222/base",
            "--prefix",
            "p",
        ])
        .unwrap();
        cli.serve.validate().unwrap();
        let endpoints = cli.serve.endpoints("kv");
        let shown: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "nats://u:***@h:4222/p?queue_group=kv",
                "tcp://127.0.0.1:0",
                "unix:///tmp/x.sock",
                "ws://0.0.0.0:8080/wrpc"
            ]
        );
    }

    #[test]
    fn bad_values_are_named() {
        assert!(Cli::try_parse_from(["x", "--listen", "udp://127.0.0.1:1"])
            .err()
            .unwrap()
            .to_string()
            .contains("unsupported scheme `udp`"));
        let cli = Cli::try_parse_from(["x", "--nats-url", "tcp://h:1"]).unwrap();
        assert!(matches!(cli.serve.validate(), Err(ConfigError::NotNats(_))));
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert!(matches!(
            cli.serve.validate(),
            Err(ConfigError::NoTransport)
        ));
        let err = Cli::try_parse_from(["x", "--shutdown-grace", "18446744073709551615s"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("maximum") || err.contains("too long"), "{err}");
    }
}
