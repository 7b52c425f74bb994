//! The names of discovery on the wire (`wit/extension/discovery.wit`): what
//! every sdk-built extension serves, what the host and `wrpc-ext` ask.

/// The discovery instance, served by every sdk-built extension.
pub const INSTANCE: &str = "wrpc-ext:extension/discovery@0.1.0";

/// Its function: `describe: func() -> string`, a JSON document.
pub const DESCRIBE: &str = "describe";

/// The function every exported instance also answers, with the same
/// document as `describe`: asking `INSTANCE.wrpc-ext:describe` reaches only
/// extensions serving `INSTANCE` (over NATS, where several extensions share
/// a prefix, the discovery instance itself would be answered by any of
/// them). No WIT function can have this name.
pub const PER_INSTANCE: &str = "wrpc-ext:describe";
