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

/// `example:echo@0.1.0`, the user-defined example interface.
pub const ECHO: Package = &[("echo.wit", include_str!("../echo/echo.wit"))];

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
            (super::TEST_STREAMS, 3),
        ] {
            let signatures = Signatures::from_wit(&[package]).unwrap();
            assert_eq!(signatures.iter().count(), functions, "{:?}", package[0].0);
        }
    }
}
