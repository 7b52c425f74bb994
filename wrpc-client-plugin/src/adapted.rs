//! Standard guest interfaces the plugin implements itself, forwarding each
//! call over a flat wire package: one row per adapted package.

use crate::InterfaceName;

/// A guest-facing package the plugin adapts.
pub(crate) struct Adapted {
    /// The package guests import, e.g. `wasi:keyvalue`.
    pub(crate) guest: &'static str,
    /// The one version of it implemented, e.g. `0.2.0-draft`.
    pub(crate) version: &'static str,
    /// The package its calls travel as, e.g. `wrpc:keyvalue`.
    pub(crate) wire: &'static str,
    /// The wire package's version.
    pub(crate) wire_version: &'static str,
    /// Whether every guest interface travels as one wire interface (the
    /// wire package is then routed whole), rather than interface by interface.
    pub(crate) flat: bool,
    /// The WIT packages that type the wire calls, dependencies first.
    pub(crate) wire_wit: &'static [wit::Package],
    /// Which adapter links it.
    pub(crate) kind: Kind,
}

/// The adapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Keyvalue,
    Blobstore,
    Messaging,
}

pub(crate) const ADAPTED: &[Adapted] = &[
    Adapted {
        guest: "wasi:keyvalue",
        version: "0.2.0-draft",
        wire: "wrpc:keyvalue",
        wire_version: "0.2.0-draft",
        flat: false,
        wire_wit: &[crate::keyvalue::WIRE_WIT],
        kind: Kind::Keyvalue,
    },
    Adapted {
        guest: "wasi:blobstore",
        version: "0.2.0-draft",
        wire: "wrpc:blobstore",
        wire_version: "0.2.0",
        flat: true,
        wire_wit: crate::blobstore::WIRE_WIT,
        kind: Kind::Blobstore,
    },
    Adapted {
        guest: "wasmcloud:messaging",
        version: "0.2.0",
        wire: "wasmcloud:messaging",
        wire_version: "0.2.0",
        flat: false,
        wire_wit: &[crate::messaging::WIRE_WIT],
        kind: Kind::Messaging,
    },
];

impl Adapted {
    /// What a declaration of (part of) the guest package routes on the wire.
    pub(crate) fn wire_name(&self, declared: &InterfaceName) -> InterfaceName {
        InterfaceName {
            package: self.wire.to_string(),
            interface: if self.flat {
                None
            } else {
                declared.interface.clone()
            },
            version: declared
                .version
                .as_ref()
                .map(|_| self.wire_version.to_string()),
        }
    }
}

/// The adapted package an import (`ns:pkg/iface@version`) belongs to.
pub(crate) fn for_import(instance: &str) -> Option<&'static Adapted> {
    let package = instance.split('/').next().unwrap_or(instance);
    ADAPTED.iter().find(|a| a.guest == package)
}

/// The adapted package a guest package name denotes.
pub(crate) fn for_package(package: &str) -> Option<&'static Adapted> {
    ADAPTED.iter().find(|a| a.guest == package)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_map_to_their_wire_package() {
        let kv = for_package("wasi:keyvalue").unwrap();
        let store: InterfaceName = "wasi:keyvalue/store@0.2.0-draft".parse().unwrap();
        assert_eq!(
            kv.wire_name(&store).to_string(),
            "wrpc:keyvalue/store@0.2.0-draft"
        );
        let blob = for_package("wasi:blobstore").unwrap();
        let container: InterfaceName = "wasi:blobstore/container@0.2.0-draft".parse().unwrap();
        let wire = blob.wire_name(&container);
        assert_eq!(wire.to_string(), "wrpc:blobstore@0.2.0");
        assert!(wire.matches("wrpc:blobstore/blobstore@0.2.0"));
        let any: InterfaceName = "wasi:blobstore".parse().unwrap();
        assert!(blob
            .wire_name(&any)
            .matches("wrpc:blobstore/blobstore@0.2.0"));
    }
}
