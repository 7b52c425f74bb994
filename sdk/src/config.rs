//! Command-line and environment configuration shared by every extension.

use core::fmt;
use core::net::SocketAddr;
use core::str::FromStr;
use core::time::Duration;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// An address to accept wRPC connections on, written `tcp://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP socket address.
    Tcp(SocketAddr),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(addr) = s.strip_prefix("tcp://") else {
            return Err(ConfigError::ListenScheme(s.to_string()));
        };
        addr.parse()
            .map(Self::Tcp)
            .map_err(|_| ConfigError::ListenAddr(s.to_string()))
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `--listen` value whose scheme is not supported.
    #[error("listen address `{0}` has an unsupported scheme (expected tcp://HOST:PORT)")]
    ListenScheme(String),
    /// A `--listen` value whose address does not parse.
    #[error("listen address `{0}` is not a valid tcp://IP:PORT")]
    ListenAddr(String),
    /// Neither NATS nor any listener was configured.
    #[error("nothing to serve on: pass --nats-url and/or --listen tcp://ADDR")]
    NoTransport,
    /// `--max-concurrency` was zero.
    #[error("--max-concurrency must be at least 1")]
    ZeroConcurrency,
}

/// Flags every extension shares; pull them into a binary's config with
/// `#[command(flatten)]`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// NATS server to serve wRPC on, e.g. nats://127.0.0.1:4222 (off when unset).
    #[arg(long, env = "WRPC_NATS_URL")]
    pub nats_url: Option<String>,

    /// Subject prefix for wRPC over NATS (empty: none).
    #[arg(long, env = "WRPC_PREFIX", default_value = "")]
    pub prefix: String,

    /// NATS queue group, so replicas share the calls (default: the extension's name).
    #[arg(long, env = "WRPC_QUEUE_GROUP")]
    pub queue_group: Option<String>,

    /// Accept wRPC over TCP here, e.g. tcp://0.0.0.0:7761 (repeatable; env: comma-separated).
    #[arg(long = "listen", env = "WRPC_LISTEN", value_delimiter = ',')]
    pub listen: Vec<ListenAddr>,

    /// Address of the HTTP endpoint serving /healthz and /readyz.
    #[arg(long, env = "WRPC_HTTP_ADDR", default_value = "127.0.0.1:9090")]
    pub http_addr: SocketAddr,

    /// Most invocations handled at once; further ones wait.
    #[arg(long, env = "WRPC_MAX_CONCURRENCY", default_value_t = 1024)]
    pub max_concurrency: usize,

    /// How long in-flight calls may run after SIGTERM or ctrl-c.
    #[arg(long, env = "WRPC_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// Checks the values that clap cannot check alone.
    ///
    /// # Errors
    ///
    /// Returns a [`ConfigError`] naming the first unusable value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nats_url.is_none() && self.listen.is_empty() {
            return Err(ConfigError::NoTransport);
        }
        if self.max_concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addr_parses_tcp_only() {
        assert_eq!(
            "tcp://127.0.0.1:7761".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("127.0.0.1:7761".parse().unwrap())
        );
        assert!(matches!(
            "udp://127.0.0.1:1".parse::<ListenAddr>(),
            Err(ConfigError::ListenScheme(_))
        ));
        assert!(matches!(
            "tcp://localhost".parse::<ListenAddr>(),
            Err(ConfigError::ListenAddr(_))
        ));
    }
}
