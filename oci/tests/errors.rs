//! Typed errors: wrong artifacts, missing ones, unreachable or stalled
//! registries, the size limit, and the digest check itself.

mod support;

use std::time::{Duration, Instant};

use host_oci::{pull, push, sha256_digest, verify, Error, Options};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use support::{component, options, write_file, Registry};

/// Pushes one layer and a config with the given media types, as another
/// tool would (with `oci-client` directly).
async fn push_other(reference: &str, config_type: &str, layer_type: &str, layer: Vec<u8>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let image: Reference = reference.parse().unwrap();
    let layers = [ImageLayer::new(layer, layer_type.into(), None)];
    let config = Config::new(b"{}".to_vec(), config_type.into(), None);
    client
        .push(&image, &layers, config, &RegistryAuth::Anonymous, None)
        .await
        .unwrap();
}

fn not_wasm(err: Error) -> (String, &'static str, String) {
    match err {
        Error::NotWasm {
            reference,
            what,
            media_type,
        } => (reference, what, media_type),
        other => panic!("expected NotWasm, got {other}"),
    }
}

#[tokio::test]
async fn a_container_image_is_not_wasm_and_its_media_type_is_named() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = registry.reference("other/image:1");
    let image_config = "application/vnd.oci.image.config.v1+json";
    let tar = "application/vnd.oci.image.layer.v1.tar";
    push_other(&reference, image_config, tar, b"not a tarball".to_vec()).await;
    let err = pull(&reference, &options(dir.path(), &registry), |_| {})
        .await
        .unwrap_err();
    assert_eq!(
        not_wasm(err),
        (reference.clone(), "config", image_config.into())
    );

    // Wasm config, foreign layer: the layer's media type is named.
    let reference = registry.reference("other/mixed:1");
    let wasm_config = host_oci::WASM_CONFIG_MEDIA_TYPE;
    push_other(&reference, wasm_config, tar, b"x".to_vec()).await;
    let err = pull(&reference, &options(dir.path(), &registry), |_| {})
        .await
        .unwrap_err();
    assert_eq!(not_wasm(err), (reference, "layer", tar.into()));
}

#[tokio::test]
async fn wasm_media_types_around_bytes_that_are_not_wasm_are_refused() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = registry.reference("other/fake:1");
    let (config, layer) = (
        host_oci::WASM_CONFIG_MEDIA_TYPE,
        host_oci::WASM_LAYER_MEDIA_TYPE,
    );
    push_other(&reference, config, layer, b"#!/bin/sh\n".to_vec()).await;
    let err = pull(&reference, &options(dir.path(), &registry), |_| {})
        .await
        .unwrap_err();
    let (r, what, media_type) = not_wasm(err);
    assert_eq!((r, media_type), (reference, layer.to_string()));
    assert!(what.starts_with("layer content"), "{what}");
}

#[tokio::test]
async fn the_older_wasm_to_oci_layout_is_accepted() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = registry.reference("other/legacy:1");
    let config = host_oci::WASM_CONFIG_MEDIA_TYPES[1];
    let layer = host_oci::WASM_LAYER_MEDIA_TYPES[1];
    push_other(&reference, config, layer, component()).await;
    let pulled = pull(&reference, &options(dir.path(), &registry), |_| {})
        .await
        .unwrap();
    assert_eq!(pulled.bytes, component());
}

#[tokio::test]
async fn unknown_tags_and_repositories_are_not_found() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &registry);
    let file = write_file(dir.path(), "c.wasm", &component());
    push(&file, &registry.reference("known/app:1"), &opts)
        .await
        .unwrap();
    for missing in ["known/app:2", "unknown/app:1"] {
        let reference = registry.reference(missing);
        let err = pull(&reference, &opts, |_| {}).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { reference: r } if *r == reference),
            "{err}"
        );
    }
    let digest = format!("known/app@sha256:{}", "0".repeat(64));
    let err = pull(&registry.reference(&digest), &opts, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_closed_port_and_an_unknown_host_are_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for registry in [format!("127.0.0.1:{port}"), "registry.invalid".to_string()] {
        let mut opts = Options::new(dir.path());
        opts.insecure = vec![registry.clone()];
        opts.timeout = Duration::from_secs(10);
        let reference = format!("{registry}/app:1");
        let err = pull(&reference, &opts, |_| {}).await.unwrap_err();
        match &err {
            Error::Unreachable { registry: r, .. } => assert_eq!(r, &registry),
            other => panic!("expected Unreachable for {registry}, got {other}"),
        }
    }
}

#[tokio::test]
async fn localhost_is_not_implicitly_insecure() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let port = registry.addr.rsplit_once(':').unwrap().1;
    let mut opts = options(dir.path(), &registry);
    opts.insecure.clear();
    // https to a plain-http server: the TLS handshake fails.
    let err = pull(&format!("localhost:{port}/app:1"), &opts, |_| {})
        .await
        .unwrap_err();
    match &err {
        Error::Unreachable { reason, .. } => {
            assert!(reason.contains("listed as insecure"), "{reason}")
        }
        other => panic!("expected Unreachable, got {other}"),
    }
    // Listed by host alone: plain http on any port (here: a missing tag).
    opts.insecure = vec!["localhost".into()];
    let err = pull(&format!("localhost:{port}/app:1"), &opts, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_registry_that_never_answers_times_out_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    // Connections are accepted by the kernel, and nothing ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let mut opts = Options::new(dir.path());
    opts.insecure = vec![addr.clone()];
    opts.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = pull(&format!("{addr}/app:1"), &opts, |_| {})
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        Error::Timeout { after, .. } => assert_eq!(*after, opts.timeout),
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test]
async fn a_layer_over_the_limit_is_refused_before_it_is_downloaded() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let file = write_file(dir.path(), "c.wasm", &wasm);
    let reference = registry.reference("big/app:1");
    let mut opts = options(dir.path(), &registry);
    push(&file, &reference, &opts).await.unwrap();
    opts.max_layer_bytes = 16;
    let err = pull(&reference, &opts, |_| {}).await.unwrap_err();
    match &err {
        Error::LayerTooLarge {
            digest,
            size,
            limit,
            ..
        } => assert_eq!(
            (digest, *size, *limit),
            (&sha256_digest(&wasm), wasm.len() as u64, 16)
        ),
        other => panic!("expected LayerTooLarge, got {other}"),
    }
    assert_eq!(
        registry.blob_gets("big/app"),
        0,
        "the layer was never requested"
    );
    let err = push(&file, &registry.reference("big/app:2"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LayerTooLarge { size, .. } if size == wasm.len() as u64));
}

#[tokio::test]
async fn pushing_a_file_that_is_not_wasm_or_to_a_digest_is_refused_offline() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path());
    let file = write_file(dir.path(), "script.sh", b"#!/bin/sh\n");
    let err = push(&file, "127.0.0.1:1/app:1", &opts).await.unwrap_err();
    assert_eq!(not_wasm(err).1, "file");
    let wasm = write_file(dir.path(), "c.wasm", &component());
    let pinned = format!("127.0.0.1:1/app@sha256:{}", "0".repeat(64));
    let err = push(&wasm, &pinned, &opts).await.unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }), "{err}");
    let err = pull("UPPER/Case:1", &opts, |_| {}).await.unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }), "{err}");
}

#[test]
fn verify_names_the_reference_and_both_digests() {
    let bytes = component();
    let good = sha256_digest(&bytes);
    verify("r.example/app:1", &good, &bytes).unwrap();
    let bad = format!("sha256:{}", "1".repeat(64));
    let err = verify("r.example/app:1", &bad, &bytes).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::DigestMismatch { reference, expected, actual }
        if reference == "r.example/app:1" && *expected == bad && *actual == good)
    );
    assert!(text.contains("r.example/app:1") && text.contains(&bad) && text.contains(&good));
}
