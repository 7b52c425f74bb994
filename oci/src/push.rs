//! Publishing a component file as a Wasm OCI artifact.

use std::path::Path;

use http::HeaderValue;
use oci_client::RegistryOperation;

use crate::artifact::{build, is_wasm, OCI_MANIFEST_MEDIA_TYPE};
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
