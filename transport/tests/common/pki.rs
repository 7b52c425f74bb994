//! A throwaway PKI for the TLS tests: a CA, a server certificate for
//! 127.0.0.1 and `localhost`, client certificates with chosen names, and an
//! unrelated CA's client certificate.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// Certificates in a temporary directory, removed on drop.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    other: CertifiedIssuer<'static, KeyPair>,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// Names for a client certificate.
#[derive(Default)]
pub struct Names<'a> {
    pub cn: &'a str,
    pub org: Option<&'a str>,
    pub uri: Option<&'a str>,
    pub dns: Option<&'a str>,
}

impl Pki {
    /// `ca.pem` (trusted), `server.pem`/`server.key`.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "transport-pki-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Self {
            dir,
            ca: ca("test ca"),
            other: ca("other ca"),
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        p.distinguished_name.push(DnType::CommonName, "server");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &pki.ca).unwrap();
        std::fs::write(pki.path("server.pem"), cert.pem()).unwrap();
        std::fs::write(pki.path("server.key"), key.serialize_pem()).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `FILE.pem`/`FILE.key`: a client certificate with `names`,
    /// signed by the trusted CA (or the unrelated one with `foreign`).
    pub fn client(&self, file: &str, names: &Names<'_>, foreign: bool) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(
            names
                .dns
                .map(str::to_string)
                .into_iter()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        p.distinguished_name.push(DnType::CommonName, names.cn);
        if let Some(org) = names.org {
            p.distinguished_name.push(DnType::OrganizationName, org);
        }
        if let Some(uri) = names.uri {
            p.subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = if foreign { &self.other } else { &self.ca };
        let cert = p.signed_by(&key, issuer).unwrap();
        std::fs::write(self.path(&format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{file}.key")), key.serialize_pem()).unwrap();
    }

    /// `tls_cert=…&tls_key=…` for the server, with `tls_ca` when `mtls`.
    pub fn listener_query(&self, mtls: bool) -> String {
        let mut q = format!(
            "tls_cert={}&tls_key={}",
            self.path("server.pem").display(),
            self.path("server.key").display()
        );
        if mtls {
            q.push_str(&format!("&tls_ca={}", self.path("ca.pem").display()));
        }
        q
    }

    /// `tls_ca=…` and, with `client`, that client's certificate and key.
    pub fn target_query(&self, client: Option<&str>) -> String {
        let mut q = format!("tls_ca={}", self.path("ca.pem").display());
        if let Some(c) = client {
            q.push_str(&format!(
                "&tls_cert={}&tls_key={}",
                self.path(&format!("{c}.pem")).display(),
                self.path(&format!("{c}.key")).display()
            ));
        }
        q
    }
}
