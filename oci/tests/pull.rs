//! Push and pull against a real registry, and the cache.

mod support;

use host_oci::{pull, push, sha256_digest, Error, Progress};
use support::{big_component, component, options, write_file, Registry};

#[tokio::test]
async fn push_then_pull_by_tag_and_by_digest_round_trips_the_bytes() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let file = write_file(dir.path(), "c.wasm", &wasm);
    let reference = registry.reference("demo/echo:1.0");
    let opts = options(&dir.path().join("cache"), &registry);

    let pushed = push(&file, &reference, &opts).await.unwrap();
    assert_eq!(pushed.layer_digest, sha256_digest(&wasm));
    assert_eq!(
        pushed.pinned,
        format!("{}/demo/echo@{}", registry.addr, pushed.manifest_digest)
    );

    let by_tag = pull(&reference, &opts, |_| {}).await.unwrap();
    assert_eq!(by_tag.bytes, wasm);
    assert_eq!(std::fs::read(&by_tag.path).unwrap(), wasm);
    assert_eq!(by_tag.manifest_digest, pushed.manifest_digest);
    assert!(
        by_tag.downloaded > wasm.len() as u64,
        "manifest and layer came over the network"
    );

    // A fresh cache: by digest downloads again, to the same bytes.
    let opts2 = options(&dir.path().join("cache2"), &registry);
    let by_digest = pull(&pushed.pinned, &opts2, |_| {}).await.unwrap();
    assert_eq!(by_digest.bytes, wasm);
    assert_eq!(by_digest.layer_digest, pushed.layer_digest);
    let hex = pushed.layer_digest.strip_prefix("sha256:").unwrap();
    assert_eq!(
        by_digest.path,
        dir.path().join("cache2/blobs/sha256").join(hex)
    );
}

#[tokio::test]
async fn second_pull_by_digest_with_the_registry_stopped_is_a_cache_hit() {
    let mut registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let file = write_file(dir.path(), "c.wasm", &wasm);
    let opts = options(&dir.path().join("cache"), &registry);
    let pushed = push(&file, &registry.reference("demo/hit:1"), &opts)
        .await
        .unwrap();
    let first = pull(&pushed.pinned, &opts, |_| {}).await.unwrap();
    assert!(first.downloaded > 0);

    registry.stop();
    let mut reports = 0;
    let second = pull(&pushed.pinned, &opts, |_| reports += 1).await.unwrap();
    assert_eq!(second.bytes, wasm);
    assert_eq!(second.downloaded, 0);
    assert_eq!(reports, 0, "nothing was downloaded, so no progress");

    // A tag with the registry stopped must resolve, and cannot.
    let err = pull(&registry.reference("demo/hit:1"), &opts, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn tag_pull_with_the_layer_cached_resolves_the_tag_but_downloads_no_layer() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "c.wasm", &component());
    let reference = registry.reference("demo/tagged:latest");
    let opts = options(&dir.path().join("cache"), &registry);
    push(&file, &reference, &opts).await.unwrap();
    pull(&reference, &opts, |_| {}).await.unwrap();
    let blob_gets = registry.blob_gets("demo/tagged");
    assert!(
        blob_gets > 0,
        "the first pull fetched the layer:\n{}",
        registry.log()
    );
    let manifest_requests =
        |r: &Registry| r.log().matches("/v2/demo/tagged/manifests/latest").count();
    let manifests = manifest_requests(&registry);
    assert!(manifests > 0);

    let again = pull(&reference, &opts, |_| {}).await.unwrap();
    assert_eq!(again.downloaded, 0);
    assert_eq!(
        registry.blob_gets("demo/tagged"),
        blob_gets,
        "no blob was fetched again"
    );
    assert!(
        manifest_requests(&registry) > manifests,
        "the tag was resolved again"
    );
}

#[tokio::test]
async fn tag_pull_without_refresh_is_served_from_the_index_offline() {
    let mut registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let file = write_file(dir.path(), "c.wasm", &wasm);
    let reference = registry.reference("demo/pinned:2");
    let mut opts = options(&dir.path().join("cache"), &registry);
    let pushed = push(&file, &reference, &opts).await.unwrap();
    pull(&reference, &opts, |_| {}).await.unwrap();
    let index = std::fs::read_to_string(dir.path().join("cache/index.json")).unwrap();
    assert!(index.contains(&pushed.manifest_digest), "{index}");

    registry.stop();
    opts.refresh_tags = false;
    let cached = pull(&reference, &opts, |_| {}).await.unwrap();
    assert_eq!((cached.bytes, cached.downloaded), (wasm, 0));
}

#[tokio::test]
async fn progress_is_reported_per_mebibyte_up_to_the_layer_size() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let wasm = big_component(3 * 1024 * 1024 + 123);
    let file = write_file(dir.path(), "big.wasm", &wasm);
    let reference = registry.reference("demo/big:1");
    let opts = options(&dir.path().join("cache"), &registry);
    push(&file, &reference, &opts).await.unwrap();

    let mut reports: Vec<Progress> = Vec::new();
    let pulled = pull(&reference, &opts, |p| reports.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(pulled.bytes, wasm);
    let total = wasm.len() as u64;
    assert!(
        reports.len() >= 4,
        "0, 1, 2, 3 MiB and the end: {reports:?}"
    );
    assert_eq!(reports.first().unwrap().done, 0);
    assert_eq!(reports.last().unwrap().done, total);
    assert!(reports.windows(2).all(|w| w[0].done < w[1].done));
    assert!(reports
        .iter()
        .all(|p| p.total == total && p.reference == reference));
    assert!(reports.iter().all(|p| p.digest == pulled.layer_digest));
    let last = format!("pulling {reference}: {total}/{total} bytes");
    assert_eq!(reports.last().unwrap().to_string(), last);
}

#[tokio::test]
async fn corrupted_cache_blob_is_refused_offline_and_pulled_again_online() {
    let mut registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let file = write_file(dir.path(), "c.wasm", &wasm);
    let opts = options(&dir.path().join("cache"), &registry);
    let pushed = push(&file, &registry.reference("demo/rot:1"), &opts)
        .await
        .unwrap();
    let first = pull(&pushed.pinned, &opts, |_| {}).await.unwrap();

    let mut rotten = wasm.clone();
    *rotten.last_mut().unwrap() ^= 0xff;
    std::fs::write(&first.path, &rotten).unwrap();
    // Offline: refused, naming the reference and both digests; the blob is dropped.
    registry.stop();
    let err = pull(&pushed.pinned, &opts, |_| {}).await.unwrap_err();
    match &err {
        Error::DigestMismatch {
            reference,
            expected,
            actual,
        } => {
            assert_eq!(reference, &pushed.pinned);
            assert_eq!(expected, &pushed.layer_digest);
            assert_eq!(actual, &sha256_digest(&rotten));
        }
        other => panic!("expected DigestMismatch, got {other}"),
    }
    assert!(!first.path.exists(), "the corrupt blob is removed");
    let err = pull(&pushed.pinned, &opts, |_| {}).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");

    // Online (a new registry with the same content): pulled again, intact.
    let registry = Registry::start();
    let opts = options(&dir.path().join("cache"), &registry);
    let reference = registry.reference("demo/rot:1");
    push(&file, &reference, &opts).await.unwrap();
    let again = pull(&reference, &opts, |_| {}).await.unwrap();
    assert_eq!(again.layer_digest, pushed.layer_digest);
    assert_eq!(
        (again.bytes, std::fs::read(&again.path).unwrap()),
        (wasm.clone(), wasm)
    );
}

#[tokio::test]
async fn a_registry_serving_altered_bytes_is_refused_and_nothing_is_cached() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let file = write_file(dir.path(), "c.wasm", &wasm);
    let opts = options(&dir.path().join("cache"), &registry);
    let pushed = push(&file, &registry.reference("demo/liar:1"), &opts)
        .await
        .unwrap();
    // Alter the layer in the registry's own storage (same length).
    let stored = registry.blob_file(&pushed.layer_digest);
    let mut altered = std::fs::read(&stored).unwrap();
    assert_eq!(altered, wasm);
    altered[9] ^= 0x55;
    std::fs::write(&stored, &altered).unwrap();

    let err = pull(&pushed.pinned, &opts, |_| {}).await.unwrap_err();
    match &err {
        Error::DigestMismatch {
            reference,
            expected,
            actual,
        } => {
            assert_eq!(reference, &pushed.pinned);
            assert_eq!(expected, &pushed.layer_digest);
            assert_eq!(actual, &sha256_digest(&altered));
        }
        other => panic!("expected DigestMismatch, got {other}"),
    }
    let hex = pushed.layer_digest.strip_prefix("sha256:").unwrap();
    assert!(!dir.path().join("cache/blobs/sha256").join(hex).exists());
    let tmp = std::fs::read_dir(dir.path().join("cache/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "no partial download is left behind");
}
