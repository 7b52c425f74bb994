//! The Wasm OCI artifact layouts: what a pull accepts and what a push writes.
//!
//! Accepted: an OCI (or Docker v2) image manifest whose config has one of
//! [`WASM_CONFIG_MEDIA_TYPES`] (or is the OCI empty config with such an
//! `artifactType`) and whose only layer has one of
//! [`WASM_LAYER_MEDIA_TYPES`]. A push writes the CNCF layout: config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The OCI image manifest media type (what a push writes).
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The Docker v2 image manifest media type (also accepted by a pull).
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The CNCF Wasm config media type (what a push writes).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The CNCF Wasm layer media type (what a push writes).
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Config media types a pull accepts: the CNCF one, and the older
/// `wasm-to-oci` one.
pub const WASM_CONFIG_MEDIA_TYPES: &[&str] = &[
    WASM_CONFIG_MEDIA_TYPE,
    "application/vnd.wasm.config.v1+json",
];
/// Layer media types a pull accepts: the CNCF one, and the older
/// `wasm-to-oci` one.
pub const WASM_LAYER_MEDIA_TYPES: &[&str] = &[
    WASM_LAYER_MEDIA_TYPE,
    "application/vnd.wasm.content.layer.v1+wasm",
];
/// The OCI empty config (ORAS-style artifacts name their type in `artifactType`).
const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// An image manifest, as much of it as is read or written here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// Parses a manifest and returns its one Wasm layer, or names what makes it
/// something else.
pub(crate) fn wasm_layer(reference: &str, bytes: &[u8]) -> Result<Descriptor, Error> {
    let not_wasm = |what, media_type: &str| Error::NotWasm {
        reference: reference.to_string(),
        what,
        media_type: media_type.to_string(),
    };
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
        // An index (or anything else) still names its media type.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Typed {
            media_type: Option<String>,
        }
        match serde_json::from_slice::<Typed>(bytes) {
            Ok(Typed {
                media_type: Some(media_type),
            }) => not_wasm("manifest", &media_type),
            _ => Error::Registry {
                reference: reference.to_string(),
                message: format!("manifest does not parse: {e}"),
            },
        }
    })?;
    if let Some(media_type) = &manifest.media_type {
        if media_type != OCI_MANIFEST_MEDIA_TYPE && media_type != DOCKER_MANIFEST_MEDIA_TYPE {
            return Err(not_wasm("manifest", media_type));
        }
    }
    let config = manifest.config.media_type.as_str();
    let artifact = manifest.artifact_type.as_deref().unwrap_or("");
    let typed_empty =
        config == EMPTY_CONFIG_MEDIA_TYPE && WASM_CONFIG_MEDIA_TYPES.contains(&artifact);
    if !WASM_CONFIG_MEDIA_TYPES.contains(&config) && !typed_empty {
        return Err(not_wasm("config", config));
    }
    match manifest.layers.as_slice() {
        [layer] if WASM_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) => Ok(layer.clone()),
        [] => Err(not_wasm("layer", "(no layers)")),
        layers => {
            let other = layers
                .iter()
                .find(|l| !WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
                .map_or("(more than one Wasm layer)", |l| l.media_type.as_str());
            Err(not_wasm("layer", other))
        }
    }
}

/// Whether `bytes` start like a Wasm binary (component or core module).
pub(crate) fn is_wasm(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media_type_of(err: Error) -> (&'static str, String) {
        match err {
            Error::NotWasm {
                what, media_type, ..
            } => (what, media_type),
            other => panic!("expected NotWasm, got {other}"),
        }
    }

    #[test]
    fn other_layouts_name_the_offending_media_type() {
        let d = |mt: &str| format!(r#"{{"mediaType":"{mt}","digest":"sha256:00","size":1}}"#);
        let manifest = |config: &str, layers: &[&str], extra: &str| {
            let layers: Vec<String> = layers.iter().map(|l| d(l)).collect();
            format!(
                r#"{{"schemaVersion":2{extra},"config":{},"layers":[{}]}}"#,
                d(config),
                layers.join(",")
            )
        };
        let image = manifest(
            "application/vnd.oci.image.config.v1+json",
            &["application/vnd.oci.image.layer.v1.tar"],
            "",
        );
        let err = wasm_layer("r/x:1", image.as_bytes()).unwrap_err();
        assert_eq!(
            media_type_of(err),
            ("config", "application/vnd.oci.image.config.v1+json".into())
        );
        let tar = manifest(WASM_CONFIG_MEDIA_TYPE, &["application/x-tar"], "");
        let err = wasm_layer("r/x:1", tar.as_bytes()).unwrap_err();
        assert_eq!(media_type_of(err), ("layer", "application/x-tar".into()));
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let err = wasm_layer("r/x:1", index.as_bytes()).unwrap_err();
        assert_eq!(media_type_of(err).0, "manifest");
        let old = manifest(WASM_CONFIG_MEDIA_TYPES[1], &[WASM_LAYER_MEDIA_TYPES[1]], "");
        assert!(wasm_layer("r/x:1", old.as_bytes()).is_ok());
        let oras = manifest(
            EMPTY_CONFIG_MEDIA_TYPE,
            &[WASM_LAYER_MEDIA_TYPE],
            &format!(r#","artifactType":"{WASM_CONFIG_MEDIA_TYPE}""#),
        );
        assert!(wasm_layer("r/x:1", oras.as_bytes()).is_ok());
    }
}
