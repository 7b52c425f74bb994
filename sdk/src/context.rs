//! What an extension knows about who called it.

use core::net::SocketAddr;

use async_nats::HeaderMap;

/// Header names the host plugin sends with every call over NATS.
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

/// The transport a call arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// NATS, with the subject the call was published to.
    Nats {
        /// The invocation subject.
        subject: String,
    },
    /// A TCP connection.
    Tcp,
}

/// The caller of one invocation, the same for every transport.
///
/// Over NATS the host plugin names the workload, namespace and component in
/// headers; TCP carries no headers, only the peer address.
#[derive(Clone, Debug)]
pub struct CallerContext {
    transport: Transport,
    peer: Option<SocketAddr>,
    headers: Option<HeaderMap>,
}

impl CallerContext {
    /// A call that arrived over NATS.
    pub fn nats(subject: impl Into<String>, headers: Option<HeaderMap>) -> Self {
        Self {
            transport: Transport::Nats {
                subject: subject.into(),
            },
            peer: None,
            headers,
        }
    }

    /// A call that arrived over TCP from `peer`.
    pub fn tcp(peer: SocketAddr) -> Self {
        Self {
            transport: Transport::Tcp,
            peer: Some(peer),
            headers: None,
        }
    }

    /// The transport the call arrived on.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The peer's socket address, where the transport has one.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// A header's value, if the call carried it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name).map(|v| v.as_str())
    }

    /// The calling workload, if known.
    pub fn workload(&self) -> Option<&str> {
        self.header(headers::WORKLOAD)
    }

    /// The calling workload's namespace, if known.
    pub fn namespace(&self) -> Option<&str> {
        self.header(headers::NAMESPACE)
    }

    /// The calling component, if known.
    pub fn component(&self) -> Option<&str> {
        self.header(headers::COMPONENT)
    }

    /// The W3C `traceparent` of the call, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.header(headers::TRACEPARENT)
    }
}
