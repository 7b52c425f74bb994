//! Who makes a call: the identity a client sends and the context a server sees.

use core::fmt;
use core::net::SocketAddr;

use std::sync::Arc;

use crate::access::{Admitted, CallNamespace};
use crate::identity::CertIdentity;
use crate::TraceContext;

/// Header names the plugin sends with every call (NATS headers, the pooled
/// stream protocol's call header, WebSocket upgrade requests).
pub mod headers {
    /// Name of the calling workload.
    pub const WORKLOAD: &str = "wrpc-workload";
    /// Namespace of the calling workload.
    pub const NAMESPACE: &str = "wrpc-namespace";
    /// Name of the calling component within its workload.
    pub const COMPONENT: &str = "wrpc-component";
    /// W3C trace context of the call.
    pub const TRACEPARENT: &str = "traceparent";
}

/// Most bytes in a caller identity value.
pub const MAX_IDENTITY_LEN: usize = 253;

/// An identity value a transport cannot carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct IdentityError {
    /// The field, e.g. `name` or `namespace`.
    pub field: String,
    /// What is wrong with its value.
    pub reason: String,
}

/// Checks that `value` can travel as a header on every transport: 1 to 253
/// bytes of printable ASCII (no control characters such as CR or LF).
///
/// # Errors
///
/// An [`IdentityError`] naming `field` and the first offending character.
pub fn validate_identity(field: &str, value: &str) -> Result<(), IdentityError> {
    let fail = |reason: String| IdentityError {
        field: field.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(fail("must not be empty".into()));
    }
    if value.len() > MAX_IDENTITY_LEN {
        return Err(fail(format!(
            "is {} bytes long; the limit is {MAX_IDENTITY_LEN}",
            value.len()
        )));
    }
    if let Some((i, c)) = value
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_graphic() || *c == ' '))
    {
        return Err(fail(format!(
            "contains {} at byte {i}; only printable ASCII can travel in a header",
            describe_char(c)
        )));
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("control character U+{:04X}", u32::from(c)),
        c => format!("`{c}` (non-ASCII)"),
    }
}

/// The identity a host sends with each call of one component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The workload's name.
    pub workload: String,
    /// The workload's namespace.
    pub namespace: String,
    /// The component's name within the workload.
    pub component: String,
    /// The span the component's calls are made in (a run, or a served
    /// call): each call is sent with it as `traceparent`, so the server's
    /// span is its child.
    pub trace: Option<TraceContext>,
}

impl Caller {
    /// Checks every field with [`validate_identity`].
    ///
    /// # Errors
    ///
    /// The first field that cannot travel in a header.
    pub fn validate(&self) -> Result<(), IdentityError> {
        validate_identity("workload name", &self.workload)?;
        validate_identity("namespace", &self.namespace)?;
        validate_identity("component name", &self.component)
    }

    /// The headers naming this caller.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            (headers::WORKLOAD, self.workload.as_str()),
            (headers::NAMESPACE, self.namespace.as_str()),
            (headers::COMPONENT, self.component.as_str()),
        ]
    }
}

/// The transport a call arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// NATS, with the subject the call was published to.
    Nats {
        /// The invocation subject.
        subject: String,
    },
    /// A TCP connection (`secure` when over TLS).
    Tcp {
        /// Whether the connection is TLS.
        secure: bool,
    },
    /// A Unix domain socket.
    Unix,
    /// A WebSocket (`secure` for `wss://`).
    Ws {
        /// Whether the connection is TLS.
        secure: bool,
    },
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nats { .. } => f.write_str("nats"),
            Self::Tcp { secure: false } => f.write_str("tcp"),
            Self::Tcp { secure: true } => f.write_str("tcp+tls"),
            Self::Unix => f.write_str("unix"),
            Self::Ws { secure: false } => f.write_str("ws"),
            Self::Ws { secure: true } => f.write_str("wss"),
        }
    }
}

/// The peer of a connection-based transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP or WebSocket peer.
    Socket(SocketAddr),
    /// A Unix-socket peer, with the credentials the kernel reports.
    Unix {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Process id, where the platform reports it.
        pid: Option<i32>,
    },
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(addr) => write!(f, "{addr}"),
            Self::Unix { uid, gid, pid } => {
                write!(f, "uid={uid} gid={gid}")?;
                if let Some(pid) = pid {
                    write!(f, " pid={pid}")?;
                }
                Ok(())
            }
        }
    }
}

/// Most headers a call may carry.
pub const MAX_HEADERS: usize = 32;

/// The caller of one invocation, the same shape on every transport.
///
/// The host plugin names the workload, namespace and component on NATS
/// (headers), on TCP, Unix and WebSocket connections that speak the pooled
/// protocol (the call header) and in WebSocket upgrade requests. Plain
/// upstream wRPC TCP callers send no identity; then only the peer is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerContext {
    transport: Transport,
    peer: Option<Peer>,
    headers: Vec<(String, String)>,
    trace: Option<TraceContext>,
    certificate: Option<Arc<CertIdentity>>,
    namespace: Option<Arc<str>>,
}

impl CallerContext {
    /// A context for a call on `transport` from `peer` carrying `headers`.
    /// Later duplicates of a header name are ignored.
    pub fn new(transport: Transport, peer: Option<Peer>, headers: Vec<(String, String)>) -> Self {
        let mut unique: Vec<(String, String)> = Vec::with_capacity(headers.len());
        for (k, v) in headers.into_iter().take(MAX_HEADERS) {
            let k = if k.bytes().any(|b| b.is_ascii_uppercase()) {
                k.to_ascii_lowercase()
            } else {
                k
            };
            if !unique.iter().any(|(seen, _)| *seen == k) {
                unique.push((k, v));
            }
        }
        Self {
            transport,
            peer,
            headers: unique,
            trace: None,
            certificate: None,
            namespace: None,
        }
    }

    /// This context with what its listener decided: the verified
    /// certificate and the namespace (from the listener, or from the
    /// header when the listener trusts headers).
    pub(crate) fn admitted(mut self, admitted: &Admitted) -> Self {
        self.certificate.clone_from(&admitted.cert);
        self.namespace = match &admitted.namespace {
            CallNamespace::Unknown => None,
            CallNamespace::Trusted(ns) => Some(Arc::clone(ns)),
            CallNamespace::FromHeaders => self
                .header(headers::NAMESPACE)
                .filter(|ns| validate_identity("namespace", ns).is_ok())
                .map(Arc::from),
        };
        self
    }

    /// The same context in namespace `namespace`, as a listener would decide
    /// it (for tests and in-process dispatch).
    #[must_use]
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A context for a call that arrived over NATS.
    pub fn nats(subject: &str, headers: Option<&async_nats::HeaderMap>) -> Self {
        let headers = headers
            .map(|h| {
                h.iter()
                    .filter_map(|(k, vs)| {
                        let v = vs.first()?;
                        Some((k.to_string(), v.as_str().to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self::new(
            Transport::Nats {
                subject: subject.to_string(),
            },
            None,
            headers,
        )
    }

    /// The transport the call arrived on.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The peer, where the transport has one.
    pub fn peer(&self) -> Option<Peer> {
        self.peer
    }

    /// The peer's socket address, for TCP and WebSocket calls.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self.peer {
            Some(Peer::Socket(addr)) => Some(addr),
            _ => None,
        }
    }

    /// A header's value (name compared case-insensitively), if the call carried it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header the call carried.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The calling workload, as the caller claims it.
    pub fn workload(&self) -> Option<&str> {
        self.header(headers::WORKLOAD)
    }

    /// The namespace of this call, as the listener decided it: from its
    /// `namespace=` option, the client certificate, the peer's uid, or the
    /// `wrpc-namespace` header where the listener trusts headers
    /// (`namespace_from=headers`); `None` when the listener names no source,
    /// whatever the caller sent. See [`crate::access`].
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The namespace the caller claims (its `wrpc-namespace` header), which
    /// nothing verifies.
    pub fn claimed_namespace(&self) -> Option<&str> {
        self.header(headers::NAMESPACE)
    }

    /// The client certificate the listener verified (mutual TLS), if any.
    pub fn certificate(&self) -> Option<&CertIdentity> {
        self.certificate.as_deref()
    }

    /// The calling component, as the caller claims it.
    pub fn component(&self) -> Option<&str> {
        self.header(headers::COMPONENT)
    }

    /// The W3C `traceparent` the caller sent, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.header(headers::TRACEPARENT)
    }

    /// The trace this call runs in: the server's span, a child of the
    /// caller's `traceparent` (a new trace when it sent none or an invalid
    /// one). Set for every call a [`crate::server::Registry`] serves; send
    /// it as the `traceparent` of the calls the handler makes.
    pub fn trace(&self) -> Option<TraceContext> {
        self.trace
    }

    /// Starts this call's server span: a child of the caller's trace, else a new one.
    pub(crate) fn continue_trace(&mut self) -> (Option<TraceContext>, TraceContext) {
        let parent = self.traceparent().and_then(TraceContext::parse);
        let span = parent.map_or_else(TraceContext::root, |p| p.child());
        self.trace = Some(span);
        (parent, span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values_that_cannot_travel_are_named() {
        assert!(validate_identity("name", "counter-1.demo_x").is_ok());
        let err = validate_identity("workload name", "evil\nname").unwrap_err();
        assert_eq!(
            err.to_string(),
            "workload name contains a newline at byte 4; only printable ASCII can travel in a header"
        );
        assert!(validate_identity("namespace", "")
            .unwrap_err()
            .to_string()
            .contains("must not be empty"));
        assert!(validate_identity("namespace", &"x".repeat(300))
            .unwrap_err()
            .to_string()
            .contains("300 bytes"));
        assert!(validate_identity("component name", "caf\u{e9}")
            .unwrap_err()
            .to_string()
            .contains("non-ASCII"));
        let caller = Caller {
            workload: "w".into(),
            namespace: "n\r".into(),
            component: "c".into(),
            trace: None,
        };
        assert!(caller
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("namespace contains a carriage return"));
    }

    #[test]
    fn context_reads_headers_case_insensitively() {
        let cx = CallerContext::new(
            Transport::Tcp { secure: false },
            None,
            vec![
                ("WRPC-Workload".into(), "w".into()),
                ("wrpc-workload".into(), "dup".into()),
                ("traceparent".into(), "00-ab".into()),
            ],
        );
        assert_eq!(cx.workload(), Some("w"));
        assert_eq!(cx.traceparent(), Some("00-ab"));
        assert_eq!(cx.namespace(), None);
    }
}
