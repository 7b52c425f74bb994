//! The `blobstore` host plugin: wasi:blobstore served in the host, on a local directory.
#![deny(missing_docs)]

use host_plugin::{HostPlugin, InterfaceName};

/// Serves `wasi:blobstore` to components whose workload lists it under `host:`.
#[derive(Default)]
pub struct BlobstorePlugin;

impl HostPlugin for BlobstorePlugin {
    fn id(&self) -> &'static str {
        "blobstore"
    }

    fn serves(&self) -> Vec<InterfaceName> {
        vec!["wasi:blobstore@0.2.0-draft"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name"))]
    }
}
