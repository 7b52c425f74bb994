//! The `keyvalue` host plugin: wasi:keyvalue served in the host: in memory, or persisted to a file the workload names.
#![deny(missing_docs)]

use host_plugin::{HostPlugin, InterfaceName};

/// Serves `wasi:keyvalue` to components whose workload lists it under `host:`.
#[derive(Default)]
pub struct KeyvaluePlugin;

impl HostPlugin for KeyvaluePlugin {
    fn id(&self) -> &'static str {
        "keyvalue"
    }

    fn serves(&self) -> Vec<InterfaceName> {
        vec!["wasi:keyvalue@0.2.0-draft"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name"))]
    }
}
