//! Where a declared interface's calls go.

use core::fmt;
use core::str::FromStr;

/// An extension's address: `nats://HOST:PORT[/PREFIX]` or `tcp://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// wRPC over NATS: the server URL and the subject prefix (may be empty).
    Nats {
        /// `nats://HOST:PORT`.
        url: String,
        /// Subject prefix the extension serves under.
        prefix: String,
    },
    /// wRPC over TCP, one connection per call.
    Tcp {
        /// `HOST:PORT`.
        addr: String,
    },
}

/// A target string that is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// Not a URL at all.
    #[error("target `{0}` is not a URL (expected nats://HOST:PORT[/PREFIX] or tcp://HOST:PORT)")]
    NotUrl(String),
    /// A scheme this plugin has no transport for.
    #[error("target `{target}` has unsupported scheme `{scheme}` (supported: nats, tcp)")]
    Scheme {
        /// The whole target.
        target: String,
        /// Its scheme.
        scheme: String,
    },
    /// No host or port.
    #[error("target `{0}` needs a host and a port")]
    HostPort(String),
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|_| TargetError::NotUrl(s.to_string()))?;
        let host = url.host_str().filter(|h| !h.is_empty());
        let (Some(host), Some(port)) = (host, url.port()) else {
            return Err(TargetError::HostPort(s.to_string()));
        };
        match url.scheme() {
            "nats" => Ok(Self::Nats {
                url: format!("nats://{host}:{port}"),
                prefix: url.path().trim_matches('/').replace('/', "."),
            }),
            "tcp" => {
                if !matches!(url.path(), "" | "/") {
                    return Err(TargetError::HostPort(s.to_string()));
                }
                Ok(Self::Tcp {
                    addr: format!("{host}:{port}"),
                })
            }
            scheme => Err(TargetError::Scheme {
                target: s.to_string(),
                scheme: scheme.to_string(),
            }),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nats { url, prefix } if prefix.is_empty() => f.write_str(url),
            Self::Nats { url, prefix } => write!(f, "{url}/{prefix}"),
            Self::Tcp { addr } => write!(f, "tcp://{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nats_and_tcp() {
        assert_eq!(
            "nats://127.0.0.1:4222/demo".parse(),
            Ok(Target::Nats {
                url: "nats://127.0.0.1:4222".into(),
                prefix: "demo".into()
            })
        );
        assert_eq!(
            "tcp://localhost:7761".parse(),
            Ok(Target::Tcp {
                addr: "localhost:7761".into()
            })
        );
        assert_eq!(
            "tcp://localhost:7761"
                .parse::<Target>()
                .unwrap()
                .to_string(),
            "tcp://localhost:7761"
        );
    }

    #[test]
    fn rejects_bad_targets() {
        assert!(matches!(
            "http://x:1".parse::<Target>(),
            Err(TargetError::Scheme { .. })
        ));
        assert!(matches!(
            "tcp://x".parse::<Target>(),
            Err(TargetError::HostPort(_))
        ));
        assert!(matches!(
            "garbage".parse::<Target>(),
            Err(TargetError::NotUrl(_))
        ));
    }
}
