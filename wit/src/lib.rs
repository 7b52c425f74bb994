//! The project's WIT packages as `(file name, contents)` lists, for
//! `transport::schema::Signatures::from_wit`. The `.wit` files in this folder
//! are the only copy; code generators read them by path, everything else
//! through these constants.
#![deny(missing_docs)]

/// One WIT package: its files.
pub type Package = &'static [(&'static str, &'static str)];

/// `wrpc:keyvalue@0.2.0-draft`, what key-value calls travel as.
pub const WRPC_KEYVALUE: Package = &[
    ("store.wit", include_str!("../wrpc-keyvalue/store.wit")),
    ("atomics.wit", include_str!("../wrpc-keyvalue/atomics.wit")),
    ("batch.wit", include_str!("../wrpc-keyvalue/batch.wit")),
    ("world.wit", include_str!("../wrpc-keyvalue/world.wit")),
];

/// `wasi:io@0.2.6`, the streams `wasi:blobstore` bodies are read and written with.
pub const WASI_IO: Package = &[
    ("error.wit", include_str!("../io/error.wit")),
    ("poll.wit", include_str!("../io/poll.wit")),
    ("streams.wit", include_str!("../io/streams.wit")),
    ("world.wit", include_str!("../io/world.wit")),
];

/// `wasi:blobstore@0.2.0-draft`, blob storage as guests import it (depends on [`WASI_IO`]).
pub const WASI_BLOBSTORE: Package = &[
    ("types.wit", include_str!("../blobstore/types.wit")),
    ("container.wit", include_str!("../blobstore/container.wit")),
    ("blobstore.wit", include_str!("../blobstore/blobstore.wit")),
    ("world.wit", include_str!("../blobstore/world.wit")),
];

/// `wrpc:blobstore@0.2.0`, what blobstore calls travel as (depends on
/// [`WASI_IO`] and [`WASI_BLOBSTORE`]).
pub const WRPC_BLOBSTORE: Package = &[
    ("types.wit", include_str!("../wrpc-blobstore/types.wit")),
    (
        "blobstore.wit",
        include_str!("../wrpc-blobstore/blobstore.wit"),
    ),
    ("world.wit", include_str!("../wrpc-blobstore/world.wit")),
];

/// `blobstore-s3:admin@0.1.0`, what blobstore-s3 serves beyond `wasi:blobstore`.
pub const BLOBSTORE_ADMIN: Package = &[(
    "containers.wit",
    include_str!("../blobstore-admin/containers.wit"),
)];

/// `wasmcloud:messaging@0.2.0`: publish and request (`consumer`), and the
/// `handler` components export to receive messages. Guests and the wire use
/// the same package.
pub const MESSAGING: Package = &[
    ("types.wit", include_str!("../messaging/types.wit")),
    ("handler.wit", include_str!("../messaging/handler.wit")),
    ("consumer.wit", include_str!("../messaging/consumer.wit")),
    ("world.wit", include_str!("../messaging/world.wit")),
];

/// `example:echo@0.1.0`, the user-defined example interface.
pub const ECHO: Package = &[("echo.wit", include_str!("../echo/echo.wit"))];

/// `wrpc-ext:extension@0.1.0`: discovery, served by every sdk-built extension.
pub const EXTENSION: Package = &[("discovery.wit", include_str!("../extension/discovery.wit"))];

/// `example:streams@0.1.0`, byte streams both ways through `async func`s
/// (WASI 0.3 guests route it; the `bytes` sdk example serves it).
pub const STREAMS: Package = &[("streams.wit", include_str!("../streams/streams.wit"))];

/// `test:streams@0.1.0`, byte streams both ways, for the sdk's tests.
pub const TEST_STREAMS: Package = &[("streams.wit", include_str!("../test-streams/streams.wit"))];

#[cfg(test)]
mod tests {
    use transport::schema::Signatures;

    /// The plugin and the sdk type calls with these; each must parse.
    #[test]
    fn every_package_parses() {
        for (package, functions) in [
            (super::WRPC_KEYVALUE, 9),
            (super::ECHO, 1),
            (super::EXTENSION, 1),
            (super::TEST_STREAMS, 3),
            (super::STREAMS, 6),
            (super::BLOBSTORE_ADMIN, 1),
            (super::MESSAGING, 3),
        ] {
            let signatures = Signatures::from_wit(&[package]).unwrap();
            assert_eq!(signatures.iter().count(), functions, "{:?}", package[0].0);
        }
        let blobstore =
            Signatures::from_wit(&[super::WASI_IO, super::WASI_BLOBSTORE, super::WRPC_BLOBSTORE])
                .unwrap();
        let wire: Vec<_> = blobstore
            .iter()
            .filter(|(instance, _, _)| *instance == "wrpc:blobstore/blobstore@0.2.0")
            .collect();
        assert_eq!(wire.len(), 14);
    }
}
