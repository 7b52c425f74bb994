//! What can go wrong, each naming the reference and what was wrong.

use std::path::PathBuf;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};

/// An error from a pull or a push: every variant names the reference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference is not `registry/repo:tag` or `registry/repo@sha256:<hex>`.
    #[error("`{reference}` is not an OCI reference: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The registry host is unknown, refuses the connection, or the TLS (or
    /// plain-http) handshake with it fails.
    #[error("{reference}: registry {registry} is unreachable: {reason}")]
    Unreachable {
        /// The reference.
        reference: String,
        /// The registry's `host[:port]`.
        registry: String,
        /// The underlying error chain.
        reason: String,
    },
    /// A network call did not finish within its deadline.
    #[error("{reference}: {what} timed out after {after:?}")]
    Timeout {
        /// The reference.
        reference: String,
        /// Which call.
        what: &'static str,
        /// The deadline it had.
        after: Duration,
    },
    /// 401: credentials missing or refused.
    #[error("{reference}: registry {registry} refused the credentials (401; credentials: {credentials})")]
    Unauthorized {
        /// The reference.
        reference: String,
        /// The registry's `host[:port]`.
        registry: String,
        /// Where the credentials sent came from (`none` when anonymous).
        credentials: String,
    },
    /// 403: the credentials are valid but may not do this.
    #[error("{reference}: registry {registry} denied access (403; credentials: {credentials})")]
    Forbidden {
        /// The reference.
        reference: String,
        /// The registry's `host[:port]`.
        registry: String,
        /// Where the credentials sent came from (`none` when anonymous).
        credentials: String,
    },
    /// The repository, tag, manifest or blob does not exist.
    #[error("{reference}: not found in the registry")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// The artifact is not a Wasm OCI artifact.
    #[error("{reference}: not a Wasm artifact: {what} has media type `{media_type}`")]
    NotWasm {
        /// The reference.
        reference: String,
        /// Which part was wrong (`manifest`, `config`, `layer`, layer content, `file`).
        what: &'static str,
        /// The media type found.
        media_type: String,
    },
    /// Content whose sha256 is not its digest: refused, never used.
    #[error("{reference}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// The digest it should have had.
        expected: String,
        /// The digest of what was found.
        actual: String,
    },
    /// A layer larger than the configured limit.
    #[error("{reference}: layer {digest} has {size} bytes, over the limit of {limit}")]
    LayerTooLarge {
        /// The reference.
        reference: String,
        /// The layer's digest.
        digest: String,
        /// Its size (declared, or bytes received so far).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Any other registry answer or protocol violation.
    #[error("{reference}: registry error: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// What the registry said, or what was wrong with it.
        message: String,
    },
    /// A credentials source that cannot be used (malformed config.json,
    /// half-set environment).
    #[error("credentials from {source_name}: {reason}")]
    Credentials {
        /// The file or variables read.
        source_name: String,
        /// What was wrong.
        reason: String,
    },
    /// Reading or writing a local file (cache or pushed component).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What a registry call needs to turn a client error into an [`Error`].
pub(crate) struct Context<'a> {
    pub reference: &'a str,
    pub registry: &'a str,
    pub credentials: &'a str,
}

impl Context<'_> {
    /// Classifies an `oci-client` error.
    pub(crate) fn map(&self, e: OciDistributionError) -> Error {
        let reference = self.reference.to_string();
        let unauthorized = || Error::Unauthorized {
            reference: reference.clone(),
            registry: self.registry.to_string(),
            credentials: self.credentials.to_string(),
        };
        let forbidden = || Error::Forbidden {
            reference: reference.clone(),
            registry: self.registry.to_string(),
            credentials: self.credentials.to_string(),
        };
        let not_found = || Error::NotFound {
            reference: reference.clone(),
        };
        match e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
            OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
            OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
            OciDistributionError::ServerError { code: 403, .. } => forbidden(),
            OciDistributionError::ServerError { code: 404, .. } => not_found(),
            OciDistributionError::RegistryError { envelope, .. } => {
                match envelope.errors.first().map(|e| &e.code) {
                    Some(OciErrorCode::Unauthorized) => unauthorized(),
                    Some(OciErrorCode::Denied) => forbidden(),
                    Some(
                        OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown,
                    ) => not_found(),
                    _ => Error::Registry {
                        reference,
                        message: envelope.to_string(),
                    },
                }
            }
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => Error::DigestMismatch {
                reference,
                expected,
                actual,
            },
            OciDistributionError::UnsupportedMediaTypeError(media_type) => Error::NotWasm {
                reference,
                what: "manifest",
                media_type,
            },
            OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s == 401) => {
                unauthorized()
            }
            OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s == 403) => {
                forbidden()
            }
            OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s == 404) => {
                not_found()
            }
            OciDistributionError::RequestError(e) if e.is_connect() => Error::Unreachable {
                reference,
                registry: self.registry.to_string(),
                reason: chain(&e),
            },
            other => Error::Registry {
                reference,
                message: chain(&other),
            },
        }
    }
}

/// An error and its sources, joined by `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};

    fn ctx() -> Context<'static> {
        Context {
            reference: "r.example/app:1",
            registry: "r.example",
            credentials: "none",
        }
    }

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: "m".into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "u".into(),
        }
    }

    #[test]
    fn statuses_and_registry_codes_map_to_typed_errors() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: String::new(),
        };
        assert!(matches!(ctx().map(server(401)), Error::Unauthorized { .. }));
        assert!(matches!(ctx().map(server(403)), Error::Forbidden { .. }));
        assert!(matches!(ctx().map(server(404)), Error::NotFound { .. }));
        assert!(matches!(ctx().map(server(500)), Error::Registry { .. }));
        assert!(matches!(
            ctx().map(envelope(OciErrorCode::Denied)),
            Error::Forbidden { .. }
        ));
        let unknown = envelope(OciErrorCode::ManifestUnknown);
        assert!(matches!(ctx().map(unknown), Error::NotFound { .. }));
        let err = ctx().map(envelope(OciErrorCode::Denied));
        assert_eq!(
            err.to_string(),
            "r.example/app:1: registry r.example denied access (403; credentials: none)"
        );
    }
}
