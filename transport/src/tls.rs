//! TLS for the stream transports (`tcp://` with `tls_*` options, `wss://`):
//! rustls configurations read from PEM files, with the `ring` provider only,
//! so no process-wide default provider is needed.
//!
//! A listener given a client CA requires every client to present a
//! certificate chaining to it (mutual TLS); the verified certificate's names
//! become the caller's [`CertIdentity`](crate::caller::CertIdentity).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::endpoint::TlsFiles;

/// A TLS configuration that cannot be built, or a handshake that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub(crate) String);

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            TlsError(format!(
                "cannot read certificates from {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError(format!("no certificates in {}", path.display())));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        TlsError(format!(
            "cannot read private key from {}: {e}",
            path.display()
        ))
    })
}

fn load_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("bad CA certificate in {}: {e}", path.display())))?;
    }
    Ok(roots)
}

fn config_err(what: &str) -> impl FnOnce(rustls::Error) -> TlsError + '_ {
    move |e| TlsError(format!("{what}: {e}"))
}

/// A client configuration: the server must chain to `files.ca_file` (else
/// to the webpki roots); a client certificate is presented when
/// `cert_file` and `key_file` are given. `alpn` is offered when not empty.
pub(crate) fn client_config(
    files: &TlsFiles,
    alpn: &[u8],
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = match &files.ca_file {
        Some(ca) => load_roots(ca)?,
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .map_err(config_err("TLS client config"))?
        .with_root_certificates(roots);
    let mut config = match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(config_err("client certificate"))?,
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError(
                "a client certificate needs both tls_cert=FILE and tls_key=FILE".into(),
            ))
        }
    };
    if !alpn.is_empty() {
        config.alpn_protocols = vec![alpn.to_vec()];
    }
    Ok(Arc::new(config))
}

/// A listener's configuration: it presents `cert_file`, and with
/// `client_ca_file` admits only clients whose certificate chains to it.
pub(crate) fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
    alpn: &[u8],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .map_err(config_err("TLS server config"))?;
    let builder = match client_ca_file {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(load_roots(ca)?),
                ring(),
            )
            .build()
            .map_err(|e| TlsError(format!("client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(load_certs(cert_file)?, load_key(key_file)?)
        .map_err(config_err("server certificate"))?;
    if !alpn.is_empty() {
        config.alpn_protocols = vec![alpn.to_vec()];
    }
    Ok(Arc::new(config))
}

/// A listener's configuration from its endpoint's TLS files, which must name
/// a certificate and a key (`what` names the listener kind in the error).
pub(crate) fn listener_config(
    files: &TlsFiles,
    what: &str,
    alpn: &[u8],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&files.cert_file, &files.key_file) else {
        return Err(TlsError(format!(
            "a {what} listener needs tls_cert=FILE and tls_key=FILE"
        )));
    };
    server_config(cert, key, files.ca_file.as_deref(), alpn)
}

/// The name a client checks the server's certificate against: `host` as a
/// DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        TlsError(format!(
            "`{host}` cannot be checked against a certificate: {e}"
        ))
    })
}

/// The rustls error inside an I/O error of a handshake, if there is one.
pub(crate) fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// An I/O error of a handshake as one line that says it was TLS.
pub(crate) fn handshake_error(e: io::Error) -> io::Error {
    let kind = match rustls_error(&e) {
        Some(_) => io::ErrorKind::PermissionDenied,
        None => e.kind(),
    };
    io::Error::new(kind, format!("TLS handshake failed: {e}"))
}
