//! Connecting to NATS with the options an endpoint carries.

use core::time::Duration;

use crate::endpoint::{NatsAuth, NatsEndpoint};

/// Why a NATS connection could not be made. The message never contains a
/// secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A credentials, nkey or TLS file cannot be read or is invalid.
    #[error("{what} {path}: {reason}")]
    File {
        /// What the file is.
        what: &'static str,
        /// Its path.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A server address is not valid.
    #[error("server address `{0}` is not valid")]
    Address(String),
    /// The client library failed to connect.
    #[error("{0}")]
    Nats(#[from] async_nats::ConnectError),
}

/// Connects to the servers of `endpoint`, authenticating and using TLS as it says;
/// `name` identifies this client to the server; `timeout` bounds the attempt.
///
/// # Errors
///
/// A [`ConnectError`] naming what failed.
pub async fn connect(
    endpoint: &NatsEndpoint,
    name: &str,
    timeout: Duration,
) -> Result<async_nats::Client, ConnectError> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(timeout)
        .require_tls(endpoint.tls_required);
    match &endpoint.auth {
        NatsAuth::None => {}
        NatsAuth::Token(token) => opts = opts.token(token.expose().to_string()),
        NatsAuth::UserPassword { user, password } => {
            opts = opts.user_and_password(user.clone(), password.expose().to_string());
        }
        NatsAuth::NkeySeedFile(path) => {
            let seed = std::fs::read_to_string(path).map_err(|err| ConnectError::File {
                what: "nkey seed file",
                path: path.display().to_string(),
                reason: err.to_string(),
            })?;
            opts = opts.nkey(seed.trim().to_string());
        }
        NatsAuth::CredsFile(path) => {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|err| ConnectError::File {
                    what: "credentials file",
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?;
        }
    }
    if let Some(ca) = &endpoint.tls.ca_file {
        readable(ca, "TLS CA file")?;
        opts = opts.add_root_certificates(ca.clone());
    }
    match (&endpoint.tls.cert_file, &endpoint.tls.key_file) {
        (Some(cert), Some(key)) => {
            readable(cert, "TLS certificate file")?;
            readable(key, "TLS key file")?;
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        (None, None) => {}
        (Some(p), None) | (None, Some(p)) => {
            return Err(ConnectError::File {
                what: "TLS client certificate",
                path: p.display().to_string(),
                reason: "tls_cert and tls_key must be given together".into(),
            })
        }
    }
    let servers = endpoint
        .server_urls()
        .into_iter()
        .map(|url| {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|_| ConnectError::Address(url))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(opts.connect(servers).await?)
}

fn readable(path: &std::path::Path, what: &'static str) -> Result<(), ConnectError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|err| ConnectError::File {
            what,
            path: path.display().to_string(),
            reason: err.to_string(),
        })
}

/// `Ok` while `client` is connected, else its state (for readiness checks).
///
/// # Errors
///
/// `NATS connection is disconnected` (or `pending`).
pub fn check_connected(client: &async_nats::Client) -> Result<(), String> {
    match client.connection_state() {
        async_nats::connection::State::Connected => Ok(()),
        state => Err(format!("NATS connection is {state}")),
    }
}
