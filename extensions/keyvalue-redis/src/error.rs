//! Mapping Redis failures to the interface's error value.

use sdk::keyvalue::store::Error;

/// The guest-visible error for a failed Redis command.
pub fn redis(err: &redis::RedisError) -> Error {
    Error::Other(format!("redis: {err}"))
}

/// The guest-visible error for a request Redis cannot represent.
pub fn invalid(what: impl Into<String>) -> Error {
    Error::Other(what.into())
}
