//! Publishing a component file as a Wasm OCI artifact.

use std::path::Path;

use http::HeaderValue;
use oci_client::RegistryOperation;

use serde::Serialize;

use crate::artifact::{is_wasm, Descriptor, Manifest, OCI_MANIFEST_MEDIA_TYPE};
use crate::artifact::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use crate::session::{parse, Session};
use crate::{sha256_digest, Error, Options, Pushed};

/// Publishes the Wasm file `file` to `reference` (`registry/repo:tag`) in
/// the CNCF layout: an OCI image manifest, a
/// `application/vnd.wasm.config.v0+json` config (`architecture: wasm`,
/// `os: wasip2` for a component, `wasip1` for a core module, and
/// `layerDigests`), and one `application/wasm` layer holding the file's
/// bytes unchanged. Blobs the registry already has are not sent again.
///
/// Uses `options` for credentials, insecure registries, the deadline of each
/// call and the size limit; the cache is not touched.
pub async fn push(file: &Path, reference: &str, options: &Options) -> Result<Pushed, Error> {
    let image = parse(reference)?;
    if image.digest().is_some() {
        return Err(Error::InvalidReference {
            reference: reference.to_string(),
            reason: "a push names a tag, not a digest".into(),
        });
    }
    let wasm = tokio::fs::read(file).await.map_err(|source| Error::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let layer_digest = sha256_digest(&wasm);
    if wasm.len() as u64 > options.max_layer_bytes {
        return Err(Error::LayerTooLarge {
            reference: reference.to_string(),
            digest: layer_digest,
            size: wasm.len() as u64,
            limit: options.max_layer_bytes,
        });
    }
    if !is_wasm(&wasm) {
        return Err(Error::NotWasm {
            reference: reference.to_string(),
            what: "file",
            media_type: format!("{} (no \\0asm header)", file.display()),
        });
    }
    let (config, manifest) = build(&wasm);
    let manifest_digest = sha256_digest(&manifest);

    let session = Session::new(reference, image, options)?;
    let (client, image) = (&session.client, &session.image);
    let auth = &session.creds.auth;
    let op = RegistryOperation::Push;
    session
        .call("authenticate", client.auth(image, auth, op))
        .await?;
    for blob in [config, wasm] {
        let digest = sha256_digest(&blob);
        let size = blob.len();
        if session
            .call("check a blob", client.blob_exists(image, &digest))
            .await?
        {
            tracing::debug!(reference, %digest, "blob already in the registry");
            continue;
        }
        session
            .call("push a blob", client.push_blob(image, blob, &digest))
            .await?;
        tracing::info!(reference, %digest, size, "pushed a blob");
    }
    let content_type = HeaderValue::from_static(OCI_MANIFEST_MEDIA_TYPE);
    let put = client.push_manifest_raw(image, manifest, content_type);
    session.call("push the manifest", put).await?;
    tracing::info!(reference, %manifest_digest, "pushed");
    Ok(Pushed {
        pinned: format!(
            "{}/{}@{manifest_digest}",
            image.registry(),
            image.repository()
        ),
        manifest_digest,
        layer_digest,
    })
}

/// The config a push writes (the CNCF Wasm config's required fields).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig<'a> {
    architecture: &'static str,
    os: &'static str,
    layer_digests: [&'a str; 1],
}

/// The config blob and manifest a push writes for a layer of `wasm` bytes.
fn build(wasm: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let layer_digest = crate::sha256_digest(wasm);
    // A component's version field is 0x0d (a core module's is 1).
    let os = if wasm.get(4) == Some(&0x0d) {
        "wasip2"
    } else {
        "wasip1"
    };
    let config = serde_json::to_vec(&WasmConfig {
        architecture: "wasm",
        os,
        layer_digests: [&layer_digest],
    })
    .expect("the config serialises");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST_MEDIA_TYPE.into()),
        artifact_type: None,
        config: Descriptor {
            media_type: WASM_CONFIG_MEDIA_TYPE.into(),
            digest: crate::sha256_digest(&config),
            size: config.len() as u64,
        },
        layers: vec![Descriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.into(),
            digest: layer_digest,
            size: wasm.len() as u64,
        }],
    };
    let manifest = serde_json::to_vec(&manifest).expect("the manifest serialises");
    (config, manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::wasm_layer;

    #[test]
    fn what_push_writes_is_accepted_by_pull() {
        let wasm = b"\0asm\x0d\0\x01\0";
        let (config, manifest) = build(wasm);
        let layer = wasm_layer("r/x:1", &manifest).unwrap();
        assert_eq!(layer.digest, crate::sha256_digest(wasm));
        assert_eq!(layer.media_type, WASM_LAYER_MEDIA_TYPE);
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["layerDigests"][0], layer.digest.as_str());
        assert_eq!(config["architecture"], "wasm");
    }

    #[test]
    fn a_core_module_is_published_for_wasip1_and_the_output_is_stable() {
        let module = b"\0asm\x01\0\0\0";
        let (config, manifest) = build(module);
        let value: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(value["os"], "wasip1");
        assert_eq!(
            build(module),
            (config, manifest),
            "same bytes, same digests"
        );
    }
}
