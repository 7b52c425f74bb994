//! One registry conversation: the parsed reference, a client with the
//! caller's deadlines and protocol, the resolved credentials, and the
//! classification of the client's errors.

use std::future::Future;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, Reference};

use crate::auth::Resolved;
use crate::cache::sha256_hex;
use crate::error::Context;
use crate::{Error, Options};

/// Parses `registry/repo:tag` or `registry/repo@sha256:<hex>`.
pub(crate) fn parse(given: &str) -> Result<Reference, Error> {
    let invalid = |reason: String| Error::InvalidReference {
        reference: given.to_string(),
        reason,
    };
    let image = Reference::try_from(given).map_err(|e| invalid(e.to_string()))?;
    if let Some(digest) = image.digest() {
        if sha256_hex(digest).is_none() {
            return Err(invalid(format!(
                "digest `{digest}` is not sha256:<64 lowercase hex>"
            )));
        }
    }
    Ok(image)
}

/// Whether `registry` (`host[:port]`) is listed as insecure: an entry
/// `host:port` matches that port only, an entry `host` any port.
pub(crate) fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    insecure
        .iter()
        .any(|entry| entry.eq_ignore_ascii_case(registry) || entry.eq_ignore_ascii_case(host))
}

/// A client for one reference's registry.
pub(crate) struct Session {
    pub client: Client,
    pub image: Reference,
    pub given: String,
    pub registry: String,
    pub creds: Resolved,
    pub timeout: Duration,
    insecure: bool,
}

impl Session {
    /// Resolves the credentials and builds the client (no network yet).
    pub(crate) fn new(given: &str, image: Reference, options: &Options) -> Result<Self, Error> {
        // reqwest is built without a TLS provider of its own: use ring, as
        // the rest of the workspace does (a provider already installed stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = image.resolve_registry().to_string();
        let insecure = is_insecure(&registry, &options.insecure);
        let protocol = if insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(options.timeout),
            read_timeout: Some(options.timeout),
            // An image index is not a Wasm artifact: never pick from one.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let creds = options.credentials.resolve(&registry)?;
        let client = Client::try_from(config).map_err(|e| Error::Registry {
            reference: given.to_string(),
            message: format!("cannot build the HTTP client: {}", crate::error::chain(&e)),
        })?;
        Ok(Self {
            client,
            image,
            given: given.to_string(),
            registry,
            creds,
            timeout: options.timeout,
            insecure,
        })
    }

    /// Classifies an `oci-client` error for this reference.
    pub(crate) fn map(&self, e: OciDistributionError) -> Error {
        let mut error = Context {
            reference: &self.given,
            registry: &self.registry,
            credentials: &self.creds.source,
        }
        .map(e);
        // rustls's word for a plain-http answer to a TLS handshake.
        if let Error::Unreachable { reason, .. } = &mut error {
            if !self.insecure && reason.contains("InvalidContentType") {
                reason.push_str(" (a plain-http registry must be listed as insecure)");
            }
        }
        error
    }

    /// The deadline error for `what`.
    pub(crate) fn timed_out(&self, what: &'static str) -> Error {
        Error::Timeout {
            reference: self.given.clone(),
            what,
            after: self.timeout,
        }
    }

    /// Runs one registry call under the deadline, classifying its error.
    pub(crate) async fn call<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call).await {
            // The client's own connect/read timeouts are this deadline too.
            Ok(Err(OciDistributionError::RequestError(e))) if e.is_timeout() => {
                Err(self.timed_out(what))
            }
            Ok(result) => result.map_err(|e| self.map(e)),
            Err(_) => Err(self.timed_out(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_entries_match_host_or_host_and_port_only() {
        let list = vec!["reg.local".to_string(), "127.0.0.1:5000".to_string()];
        assert!(is_insecure("reg.local", &list));
        assert!(is_insecure("reg.local:8080", &list));
        assert!(is_insecure("127.0.0.1:5000", &list));
        assert!(!is_insecure("127.0.0.1:5001", &list));
        assert!(!is_insecure("localhost:5000", &list));
        assert!(!is_insecure("localhost", &[]));
    }

    #[test]
    fn references_parse_by_tag_or_sha256_digest_only() {
        let r = parse("127.0.0.1:5000/app/echo:1.0").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "app/echo", Some("1.0"))
        );
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = parse(&format!("reg.example/echo@{digest}")).unwrap();
        assert_eq!(r.digest(), Some(digest.as_str()));
        let err = parse(&format!("reg.example/echo@sha512:{}", "ab".repeat(64))).unwrap_err();
        assert!(matches!(err, Error::InvalidReference { .. }), "{err}");
        let err = parse("Reg Example/echo").unwrap_err();
        assert!(matches!(err, Error::InvalidReference { .. }), "{err}");
    }
}
