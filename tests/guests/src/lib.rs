//! The guest components of `tests/components/`, built for `wasm32-wasip2` by
//! `build.rs` (run `scripts/install.sh` first for the target).

/// The keyvalue test, demo and benchmark guest (`tests/components/kv-guest`).
pub const KV_GUEST: &str = env!("GUEST_KV_GUEST");

/// A guest calling `example:echo/echo`, a user-defined interface (`tests/components/echo-guest`).
pub const ECHO_GUEST: &str = env!("GUEST_ECHO_GUEST");

/// The blobstore test, demo and benchmark guest (`tests/components/blob-guest`).
pub const BLOB_GUEST: &str = env!("GUEST_BLOB_GUEST");

/// A guest publishing and requesting through `wasmcloud:messaging/consumer` (`tests/components/msg-guest`).
pub const MSG_GUEST: &str = env!("GUEST_MSG_GUEST");

/// A guest exporting `wasmcloud:messaging/handler` (`tests/components/msg-handler`).
pub const MSG_HANDLER: &str = env!("GUEST_MSG_HANDLER");

/// A guest calling every function of `example:inventory/stock` and checking
/// the answers, typed errors included (`tests/components/inventory-guest`).
pub const INVENTORY_GUEST: &str = env!("GUEST_INVENTORY_GUEST");

/// A WASI 0.3 command calling `example:streams/bytes`, async funcs over
/// `stream<u8>` (`tests/components/streams-guest`).
pub const STREAMS_GUEST: &str = env!("GUEST_STREAMS_GUEST");

/// A WASI 0.3 component exporting `example:streams/bytes`
/// (`tests/components/streams-service`).
pub const STREAMS_SERVICE: &str = env!("GUEST_STREAMS_SERVICE");

/// A library component exporting `example:echo/echo`, answering
/// `PREFIX #N: MESSAGE` and trapping on `trap` (`tests/components/echo-service`).
pub const ECHO_SERVICE: &str = env!("GUEST_ECHO_SERVICE");

/// A library component exporting `example:echo/echo` by calling the one it
/// imports (`tests/components/echo-relay`).
pub const ECHO_RELAY: &str = env!("GUEST_ECHO_RELAY");

/// A library component exporting `wasi:blobstore@0.2.0-draft` (and
/// `blobstore-s3:admin/containers`) on its first preopened directory
/// (`tests/components/blobstore-filesystem`).
pub const BLOBSTORE_FILESYSTEM: &str = env!("GUEST_BLOBSTORE_FILESYSTEM");

/// A command reading `wasi:config/store` and logging through
/// `wasi:logging/logging` (`tests/components/config-guest`).
pub const CONFIG_GUEST: &str = env!("GUEST_CONFIG_GUEST");

/// A command calling `example:echo/echo` through its unlabelled import and
/// its labelled ones, `primary` and `backup` (`tests/components/label-guest`).
pub const LABEL_GUEST: &str = env!("GUEST_LABEL_GUEST");

/// A WASI 0.2 `wasi:http/incoming-handler` counting hits in
/// `wasi:keyvalue`, echoing, sleeping, trapping and fetching by path
/// (`tests/components/http-counter`).
pub const HTTP_COUNTER: &str = env!("GUEST_HTTP_COUNTER");

/// A WASI 0.3 `wasi:http/handler@0.3.0` greeting and streaming request
/// bodies back (`tests/components/http-p3`).
pub const HTTP_P3: &str = env!("GUEST_HTTP_P3");

/// Every guest `build.rs` builds, by crate name: a guest added there without
/// a constant here fails the `every_guest_has_a_constant` test.
pub const ALL: &[(&str, &str)] = &[
    ("kv-guest", KV_GUEST),
    ("echo-guest", ECHO_GUEST),
    ("blob-guest", BLOB_GUEST),
    ("msg-guest", MSG_GUEST),
    ("msg-handler", MSG_HANDLER),
    ("inventory-guest", INVENTORY_GUEST),
    ("streams-guest", STREAMS_GUEST),
    ("streams-service", STREAMS_SERVICE),
    ("echo-service", ECHO_SERVICE),
    ("echo-relay", ECHO_RELAY),
    ("blobstore-filesystem", BLOBSTORE_FILESYSTEM),
    ("config-guest", CONFIG_GUEST),
    ("label-guest", LABEL_GUEST),
    ("http-counter", HTTP_COUNTER),
    ("http-p3", HTTP_P3),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_guest_has_a_constant() {
        let built: Vec<&str> = env!("GUESTS").split(',').collect();
        let named: Vec<&str> = super::ALL.iter().map(|(n, _)| *n).collect();
        assert_eq!(built, named);
        for (name, path) in super::ALL {
            assert!(std::path::Path::new(path).exists(), "{name}: {path}");
        }
    }
}
