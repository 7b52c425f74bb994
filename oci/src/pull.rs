//! Pulling a Wasm component through the cache.

use futures::StreamExt as _;
use oci_client::errors::DigestError;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::RegistryOperation;

use crate::artifact::{is_wasm, wasm_layer, Descriptor};
use crate::cache::Cache;
use crate::session::{parse, Session};
use crate::{Error, Options, Progress, Pulled};

/// Manifest types asked for: indexes too, so that one is named in the
/// [`Error::NotWasm`] rather than refused by the registry.
const ACCEPT: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];
/// How many bytes pass between two progress reports.
const PROGRESS_STEP: u64 = 1024 * 1024;

/// Pulls the Wasm component `reference` (`registry/repo:tag` or
/// `registry/repo@sha256:<hex>`) through the cache in `options.cache_dir`,
/// calling `progress` while a layer downloads.
///
/// A digest reference whose manifest and layer are cached needs no network.
/// A tag is resolved again (one manifest request) unless
/// [`Options::refresh_tags`] is off and the tag is in the cache index; a
/// cached layer is never downloaded again. A cached blob that does not match
/// its digest is removed and refused with [`Error::DigestMismatch`] (the next
/// pull downloads it anew).
pub async fn pull(
    reference: &str,
    options: &Options,
    mut progress: impl FnMut(&Progress) + Send,
) -> Result<Pulled, Error> {
    let image = parse(reference)?;
    let cache = Cache::open(&options.cache_dir)?;
    let tag_key = image.digest().is_none().then(|| image.whole());
    let known = match (image.digest(), &tag_key) {
        (Some(digest), _) => Some(digest.to_string()),
        (None, Some(key)) if !options.refresh_tags => cache.index_get(key),
        _ => None,
    };
    if let Some(digest) = &known {
        if let Some(manifest) = cache.read(reference, digest).await? {
            let layer = checked_layer(reference, &manifest, options)?;
            if let Some(bytes) = cache.read(reference, &layer.digest).await? {
                tracing::debug!(reference, digest, "served from the cache");
                return finish(&cache, reference, digest, &layer, bytes, 0);
            }
        }
    }

    let session = Session::new(reference, image, options)?;
    let auth = session.creds.auth.clone();
    let op = RegistryOperation::Pull;
    session
        .call(
            "authenticate",
            session.client.auth(&session.image, &auth, op),
        )
        .await?;
    let digest = match known {
        Some(digest) => digest,
        None => {
            let head = session.client.fetch_manifest_digest(&session.image, &auth);
            let digest = session.call("resolve the tag", head).await?;
            if cache.blob_path(&digest).is_none() {
                return Err(Error::Registry {
                    reference: reference.to_string(),
                    message: format!("manifest digest `{digest}` is not sha256:<hex>"),
                });
            }
            digest
        }
    };

    let mut downloaded = 0;
    let manifest = match cache.read(reference, &digest).await? {
        Some(bytes) => bytes,
        None => {
            let pinned = session.image.clone_with_digest(digest.clone());
            let get = session.client.pull_manifest_raw(&pinned, &auth, ACCEPT);
            let (bytes, _) = session.call("pull the manifest", get).await?;
            cache.put(reference, &digest, &bytes)?;
            downloaded += bytes.len() as u64;
            bytes.to_vec()
        }
    };
    let layer = checked_layer(reference, &manifest, options)?;
    let bytes = match cache.read(reference, &layer.digest).await? {
        Some(bytes) => bytes,
        None => {
            let bytes = download(&session, &cache, &layer, options, &mut progress).await?;
            downloaded += bytes.len() as u64;
            bytes
        }
    };
    if let Some(key) = &tag_key {
        cache.index_put(key, &digest)?;
    }
    finish(&cache, reference, &digest, &layer, bytes, downloaded)
}

/// The manifest's Wasm layer, if its digest and size are acceptable.
fn checked_layer(reference: &str, manifest: &[u8], options: &Options) -> Result<Descriptor, Error> {
    let layer = wasm_layer(reference, manifest)?;
    if crate::cache::sha256_hex(&layer.digest).is_none() {
        return Err(Error::Registry {
            reference: reference.to_string(),
            message: format!("layer digest `{}` is not sha256:<hex>", layer.digest),
        });
    }
    if layer.size > options.max_layer_bytes {
        return Err(too_large(reference, &layer, layer.size, options));
    }
    Ok(layer)
}

fn too_large(reference: &str, layer: &Descriptor, size: u64, options: &Options) -> Error {
    Error::LayerTooLarge {
        reference: reference.to_string(),
        digest: layer.digest.clone(),
        size,
        limit: options.max_layer_bytes,
    }
}

fn finish(
    cache: &Cache,
    reference: &str,
    digest: &str,
    layer: &Descriptor,
    bytes: Vec<u8>,
    downloaded: u64,
) -> Result<Pulled, Error> {
    if !is_wasm(&bytes) {
        return Err(Error::NotWasm {
            reference: reference.to_string(),
            what: "layer content without a \\0asm header",
            media_type: layer.media_type.clone(),
        });
    }
    Ok(Pulled {
        manifest_digest: digest.to_string(),
        layer_digest: layer.digest.clone(),
        path: cache.blob_path(&layer.digest).expect("checked digest"),
        bytes,
        downloaded,
    })
}

/// Streams a layer into the cache, verifying its size and digest.
async fn download(
    session: &Session,
    cache: &Cache,
    layer: &Descriptor,
    options: &Options,
    progress: &mut (impl FnMut(&Progress) + Send),
) -> Result<Vec<u8>, Error> {
    let reference = session.given.as_str();
    let get = session
        .client
        .pull_blob_stream(&session.image, layer.digest.as_str());
    let mut stream = session.call("pull the layer", get).await?;
    if let Some(length) = stream
        .content_length
        .filter(|&n| n > options.max_layer_bytes)
    {
        return Err(too_large(reference, layer, length, options));
    }
    let mut report = |done| {
        let p = Progress {
            reference: reference.to_string(),
            digest: layer.digest.clone(),
            done,
            total: layer.size,
        };
        tracing::info!(reference, digest = %p.digest, done, total = p.total, "pulling");
        progress(&p);
    };
    report(0);
    let mut writer = cache.writer()?;
    let mut bytes = Vec::with_capacity(layer.size as usize);
    let mut reported = 0;
    loop {
        let next = tokio::time::timeout(session.timeout, stream.next()).await;
        let chunk = match next.map_err(|_| session.timed_out("pull the layer"))? {
            None => break,
            Some(Ok(chunk)) => chunk,
            // The client's own check at the end: ours, below, names both digests.
            Some(Err(e)) if e.get_ref().is_some_and(|e| e.is::<DigestError>()) => break,
            Some(Err(e)) => {
                return Err(Error::Registry {
                    reference: reference.to_string(),
                    message: format!("layer transfer failed: {}", crate::error::chain(&e)),
                })
            }
        };
        if writer.len() + chunk.len() as u64 > layer.size {
            return Err(Error::Registry {
                reference: reference.to_string(),
                message: format!(
                    "layer {} is longer than its declared {} bytes",
                    layer.digest, layer.size
                ),
            });
        }
        writer.write(&chunk)?;
        bytes.extend_from_slice(&chunk);
        if writer.len() - reported >= PROGRESS_STEP {
            reported = writer.len();
            report(reported);
        }
    }
    if reported != writer.len() {
        report(writer.len());
    }
    writer.commit(cache, reference, &layer.digest)?;
    Ok(bytes)
}
