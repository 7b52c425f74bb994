//! Mapping Redis failures to the interface's error value.

use sdk::keyvalue::store::Error;

/// The guest-visible error for a failed Redis command.
/// Counted in `/metrics` as a backend error by kind.
pub fn redis(err: &redis::RedisError) -> Error {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connection_refusal() || err.is_connection_dropped() || err.is_io_error() {
        "connection"
    } else {
        "command"
    };
    sdk::backend_error("redis", kind);
    Error::Other(format!("redis: {err}"))
}

/// The guest-visible error for a request Redis cannot represent.
pub fn invalid(what: impl Into<String>) -> Error {
    Error::Other(what.into())
}
