//! A listener's access policy, written in its URL: which verified callers it
//! admits, and where the namespace of their calls comes from.
//!
//! | option | meaning | transports |
//! |---|---|---|
//! | `allow=NAME[,NAME…]` | admit only client certificates carrying one of these names (a CN, DNS name, URI or e-mail) | `tcp://` and `wss://` with `tls_ca` |
//! | `allow_uid=UID[,UID…]` | admit only peers running as one of these users | `unix://` |
//! | `namespace=NAME` | every call on this listener is in namespace NAME | all |
//! | `namespace_from=cert` | the namespace the client certificate is issued for ([`CertIdentity::namespace`]) | `tcp://` and `wss://` with `tls_ca` |
//! | `uid_namespace=UID:NAME[,…]` | the namespace of the peer's user; other users are refused | `unix://` |
//! | `namespace_from=headers` | the caller's `wrpc-namespace` header, as sent: only where every caller is trusted | all |
//!
//! Without a namespace option a call has no namespace
//! ([`crate::CallerContext::namespace`] is `None`) whatever its headers say.

use core::fmt;
use std::sync::Arc;

use crate::endpoint::{escape, QUERY};
use crate::identity::CertIdentity;
use crate::Peer;

/// Where the namespace of a listener's calls comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NamespaceSource {
    /// Nowhere: calls have no namespace.
    #[default]
    None,
    /// One namespace for every call (`namespace=NAME`).
    Fixed(String),
    /// The client certificate (`namespace_from=cert`).
    Certificate,
    /// The peer's Unix user, mapped (`uid_namespace=UID:NAME,…`).
    Uid(Vec<(u32, String)>),
    /// The caller's header, trusted as sent (`namespace_from=headers`).
    Headers,
}

impl NamespaceSource {
    /// Whether the namespace comes from something the caller cannot choose
    /// for itself (or the operator said its headers may be trusted).
    pub fn is_configured(&self) -> bool {
        !matches!(self, Self::None)
    }
}

/// Which callers a listener admits and where their namespace comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Access {
    /// Certificate names admitted; empty admits every caller TLS admits.
    pub allow_names: Vec<String>,
    /// Unix users admitted; empty admits every user that can open the socket.
    pub allow_uids: Vec<u32>,
    /// Where the namespace comes from.
    pub namespace: NamespaceSource,
}

/// What a listener decided about one connection.
#[derive(Clone, Debug, Default)]
pub(crate) struct Admitted {
    /// The verified client certificate, if the connection presented one.
    pub(crate) cert: Option<Arc<CertIdentity>>,
    /// The namespace of the connection's calls.
    pub(crate) namespace: CallNamespace,
}

/// The namespace of a connection's calls.
#[derive(Clone, Debug, Default)]
pub(crate) enum CallNamespace {
    /// None is known.
    #[default]
    Unknown,
    /// Decided by the listener.
    Trusted(Arc<str>),
    /// Each call's `wrpc-namespace` header.
    FromHeaders,
}

impl Access {
    /// Whether no option was given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Admits a connection from `peer` that presented `cert` (verified), or
    /// says why not.
    pub(crate) fn admit(
        &self,
        peer: Option<&Peer>,
        cert: Option<CertIdentity>,
    ) -> Result<Admitted, String> {
        let uid = match peer {
            Some(Peer::Unix { uid, .. }) => Some(*uid),
            _ => None,
        };
        if !self.allow_names.is_empty() {
            let Some(cert) = &cert else {
                return Err(
                    "the listener admits only named client certificates; none was presented".into(),
                );
            };
            if !cert
                .names()
                .any(|n| self.allow_names.iter().any(|a| a == n))
            {
                return Err(format!(
                    "client certificate {cert} is not allowed on this listener"
                ));
            }
        }
        if !self.allow_uids.is_empty() && !uid.is_some_and(|u| self.allow_uids.contains(&u)) {
            return Err(format!("{} is not allowed on this listener", uid_name(uid)));
        }
        let namespace = match &self.namespace {
            NamespaceSource::None => CallNamespace::Unknown,
            NamespaceSource::Headers => CallNamespace::FromHeaders,
            NamespaceSource::Fixed(ns) => CallNamespace::Trusted(ns.as_str().into()),
            NamespaceSource::Certificate => {
                let ns = cert.as_ref().and_then(CertIdentity::namespace).ok_or_else(|| {
                    match &cert {
                        Some(cert) => format!("client certificate {cert} names no namespace (a SPIFFE ID with /ns/NAME, or one organization O)"),
                        None => "the listener takes the namespace from a client certificate; none was presented".into(),
                    }
                })?;
                crate::caller::validate_identity("the client certificate's namespace", ns)
                    .map_err(|e| e.to_string())?;
                CallNamespace::Trusted(ns.into())
            }
            NamespaceSource::Uid(map) => {
                let ns = map
                    .iter()
                    .find(|(u, _)| Some(*u) == uid)
                    .map(|(_, ns)| ns.as_str())
                    .ok_or_else(|| {
                        format!("{} has no namespace on this listener", uid_name(uid))
                    })?;
                CallNamespace::Trusted(ns.into())
            }
        };
        Ok(Admitted {
            cert: cert.map(Arc::new),
            namespace,
        })
    }

    /// The options as `key=value` pairs, in the order they are documented.
    pub(crate) fn query(&self) -> Vec<String> {
        let mut out = Vec::new();
        let escaped = |s: &str| escape(s, QUERY).into_owned();
        if !self.allow_names.is_empty() {
            let names: Vec<String> = self.allow_names.iter().map(|n| escaped(n)).collect();
            out.push(format!("allow={}", names.join(",")));
        }
        if !self.allow_uids.is_empty() {
            let uids: Vec<String> = self.allow_uids.iter().map(u32::to_string).collect();
            out.push(format!("allow_uid={}", uids.join(",")));
        }
        match &self.namespace {
            NamespaceSource::None => {}
            NamespaceSource::Fixed(ns) => out.push(format!("namespace={}", escaped(ns))),
            NamespaceSource::Certificate => out.push("namespace_from=cert".into()),
            NamespaceSource::Headers => out.push("namespace_from=headers".into()),
            NamespaceSource::Uid(map) => {
                let pairs: Vec<String> = map
                    .iter()
                    .map(|(u, ns)| format!("{u}:{}", escaped(ns)))
                    .collect();
                out.push(format!("uid_namespace={}", pairs.join(",")));
            }
        }
        out
    }
}

fn uid_name(uid: Option<u32>) -> String {
    uid.map_or_else(
        || "a peer without Unix credentials".into(),
        |u| format!("uid {u}"),
    )
}

impl fmt::Display for NamespaceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Fixed(ns) => write!(f, "`{ns}`"),
            Self::Certificate => f.write_str("the client certificate"),
            Self::Uid(_) => f.write_str("the peer's uid"),
            Self::Headers => f.write_str("the caller's header"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, org: &str) -> CertIdentity {
        CertIdentity {
            subject: format!("CN={cn}, O={org}"),
            common_names: vec![cn.into()],
            organizations: vec![org.into()],
            ..CertIdentity::default()
        }
    }

    fn namespace(admitted: &Admitted) -> Option<&str> {
        match &admitted.namespace {
            CallNamespace::Trusted(ns) => Some(ns),
            _ => None,
        }
    }

    #[test]
    fn allow_lists_and_namespace_sources_decide_per_connection() {
        let by_cert = Access {
            allow_names: vec!["host-a".into()],
            namespace: NamespaceSource::Certificate,
            ..Access::default()
        };
        let a = by_cert.admit(None, Some(cert("host-a", "red"))).unwrap();
        assert_eq!(namespace(&a), Some("red"));
        assert!(by_cert
            .admit(None, Some(cert("host-b", "red")))
            .unwrap_err()
            .contains("CN=host-b, O=red is not allowed"));
        assert!(by_cert
            .admit(None, None)
            .unwrap_err()
            .contains("none was presented"));
        let odd = Access {
            namespace: NamespaceSource::Certificate,
            ..Access::default()
        };
        assert!(odd
            .admit(None, Some(cert("h", "r\u{e9}d")))
            .unwrap_err()
            .contains("non-ASCII"));
        let peer = Peer::Unix {
            uid: 1000,
            gid: 1000,
            pid: None,
        };
        let by_uid = Access {
            allow_uids: vec![1000],
            namespace: NamespaceSource::Uid(vec![(1000, "blue".into())]),
            ..Access::default()
        };
        assert_eq!(
            namespace(&by_uid.admit(Some(&peer), None).unwrap()),
            Some("blue")
        );
        assert!(by_uid
            .admit(None, None)
            .unwrap_err()
            .contains("a peer without Unix credentials is not allowed"));
        assert!(matches!(
            Access::default().admit(None, None).unwrap().namespace,
            CallNamespace::Unknown
        ));
    }
}
