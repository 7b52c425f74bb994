//! What a listener verified about its peer: the names in a client
//! certificate that chained to the listener's CA (mutual TLS), and the
//! kernel's credentials of a Unix-socket peer ([`crate::Peer::Unix`]).

use core::fmt;

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

/// The names of a client certificate a listener verified against its CA.
///
/// Every name here was signed by that CA; none comes from what the caller
/// says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CertIdentity {
    /// The subject as one string, e.g. `CN=host-a, O=tenant-a`.
    pub subject: String,
    /// The subject's common names (CN).
    pub common_names: Vec<String>,
    /// The subject's organizations (O).
    pub organizations: Vec<String>,
    /// DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
    /// URIs of the subject alternative name extension (SPIFFE IDs among them).
    pub uris: Vec<String>,
    /// E-mail addresses of the subject alternative name extension.
    pub emails: Vec<String>,
}

impl CertIdentity {
    /// The names of the end-entity certificate `der`, or why they cannot be read.
    ///
    /// # Errors
    ///
    /// The certificate is not valid DER X.509.
    pub fn from_der(der: &CertificateDer<'_>) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("unreadable client certificate: {e}"))?;
        let subject = cert.subject();
        let strings = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
            it.filter_map(|a| a.as_str().ok().map(str::to_string))
                .collect::<Vec<_>>()
        };
        let mut identity = Self {
            subject: subject.to_string(),
            common_names: strings(&mut subject.iter_common_name()),
            organizations: strings(&mut subject.iter_organization()),
            ..Self::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => identity.dns_names.push((*n).to_string()),
                    GeneralName::URI(n) => identity.uris.push((*n).to_string()),
                    GeneralName::RFC822Name(n) => identity.emails.push((*n).to_string()),
                    _ => {}
                }
            }
        }
        Ok(identity)
    }

    /// Every name an allow-list entry can match: the common names and each
    /// DNS name, URI and e-mail address.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.common_names
            .iter()
            .chain(&self.dns_names)
            .chain(&self.uris)
            .chain(&self.emails)
            .map(String::as_str)
    }

    /// The namespace this certificate is issued for: the `ns` segment of a
    /// SPIFFE ID (`spiffe://DOMAIN/ns/NAME/…`, as Kubernetes service meshes
    /// issue them), else the subject's one organization (O).
    pub fn namespace(&self) -> Option<&str> {
        let spiffe = self.uris.iter().find_map(|uri| {
            let path = uri.strip_prefix("spiffe://")?.split_once('/')?.1;
            let mut segments = path.split('/');
            while let Some(segment) = segments.next() {
                if segment == "ns" {
                    return segments.next().filter(|ns| !ns.is_empty());
                }
            }
            None
        });
        spiffe.or(match self.organizations.as_slice() {
            [one] if !one.is_empty() => Some(one.as_str()),
            _ => None,
        })
    }
}

impl fmt::Display for CertIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject)?;
        let sans: Vec<&str> = self
            .dns_names
            .iter()
            .chain(&self.uris)
            .chain(&self.emails)
            .map(String::as_str)
            .collect();
        if !sans.is_empty() {
            write!(f, " ({})", sans.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(uris: &[&str], orgs: &[&str]) -> CertIdentity {
        CertIdentity {
            uris: uris.iter().map(|s| (*s).to_string()).collect(),
            organizations: orgs.iter().map(|s| (*s).to_string()).collect(),
            ..CertIdentity::default()
        }
    }

    #[test]
    fn namespace_comes_from_a_spiffe_id_then_the_one_organization() {
        let spiffe = identity(&["spiffe://cluster.local/ns/team-a/sa/host"], &["other"]);
        assert_eq!(spiffe.namespace(), Some("team-a"));
        assert_eq!(identity(&[], &["team-b"]).namespace(), Some("team-b"));
        assert_eq!(identity(&[], &["a", "b"]).namespace(), None);
        assert_eq!(identity(&["spiffe://d/sa/x"], &[]).namespace(), None);
        assert_eq!(identity(&["https://d/ns/x"], &[]).namespace(), None);
    }
}
