//! The one place a client's default deadlines live: the router's, the sdk's
//! [`crate::client::TypedClient`] (`sdk::Outbound`) and every NATS connect
//! take them from here.

use core::time::Duration;

/// Deadline of a call's synchronous part unless the caller sets one.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest pause of a streamed value unless the caller sets one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to a NATS server may take, client or server.
pub const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The deadlines each call to a target gets: the synchronous part must be
/// done within `timeout`, a streamed value may pause for at most
/// `idle_timeout`.
///
/// ```
/// let opts = transport::CallOptions {
///     timeout: core::time::Duration::from_secs(2),
///     ..Default::default()
/// };
/// assert_eq!(opts.idle_timeout, transport::client::IDLE_TIMEOUT);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallOptions {
    /// Deadline of each call's synchronous part ([`CALL_TIMEOUT`]).
    pub timeout: Duration,
    /// Longest pause of a streamed value ([`IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            timeout: CALL_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}
