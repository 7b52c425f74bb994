//! Standard guest interfaces the plugin implements itself, forwarding each
//! call over a flat wire package: one row per adapted package.

/// A guest-facing package the plugin adapts.
pub(crate) struct Adapted {
    /// The package guests import, e.g. `wasi:keyvalue`.
    pub(crate) guest: &'static str,
    /// The package its calls travel as, e.g. `wrpc:keyvalue`.
    pub(crate) wire: &'static str,
    /// The one version implemented (of both).
    pub(crate) version: &'static str,
    /// The wire package's WIT files, which type its calls.
    pub(crate) wire_wit: &'static [(&'static str, &'static str)],
    /// Which adapter links it.
    pub(crate) kind: Kind,
}

/// The adapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Keyvalue,
}

pub(crate) const ADAPTED: &[Adapted] = &[Adapted {
    guest: "wasi:keyvalue",
    wire: "wrpc:keyvalue",
    version: "0.2.0-draft",
    wire_wit: crate::keyvalue::WIRE_WIT,
    kind: Kind::Keyvalue,
}];

/// The adapted package an import (`ns:pkg/iface@version`) belongs to.
pub(crate) fn for_import(instance: &str) -> Option<&'static Adapted> {
    let package = instance.split('/').next().unwrap_or(instance);
    ADAPTED.iter().find(|a| a.guest == package)
}

/// The adapted package a guest package name denotes.
pub(crate) fn for_package(package: &str) -> Option<&'static Adapted> {
    ADAPTED.iter().find(|a| a.guest == package)
}
