//! Components from OCI images: `host push` publishes one to a real registry
//! (Debian's docker-registry); `image:` pulls it once into a cache by digest
//! (a second start pulls nothing, a blob that does not match its digest is
//! refused), and compiled components are kept on disk, so a restarted host
//! starts one without compiling it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::http::{request, send};
use e2e::{TempDir, HTTP_COUNTER};
use harness::registry::Registry;
use harness::{spawn_serve, HostProcess};

const LIMIT: Duration = Duration::from_secs(60);

fn manifest(name: &str, image: &str) -> String {
    format!(
        "name: {name}\ncomponents:\n  - name: api\n    image: \"{image}\"\n    config: {{GREETING: from the registry}}\nhost: [wasi:keyvalue]\nhttp: {{}}\n"
    )
}

/// `host serve` with `first` as its workload, caching in `cache`.
fn serve(first: &str, cache: &Path, registry: &str) -> HostProcess {
    let args = [
        "--http-listen",
        "127.0.0.1:0",
        "--insecure-registry",
        registry,
        "--log-format",
        "json",
    ];
    let env = [
        ("HOST_CACHE_DIR", cache.to_str().unwrap()),
        ("RUST_LOG", "warn,host::sources=debug"),
    ];
    spawn_serve(first, &args, &env).unwrap()
}

fn hello(host: &HostProcess) -> String {
    let http = host.http_listen(LIMIT).unwrap();
    host.await_stdout("ready\n", LIMIT).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reply = rt
        .block_on(send(&http, request("localhost", "/hello", "")))
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

#[test]
fn images_are_pushed_pulled_once_and_kept_compiled() {
    let mut registry = Registry::start();
    let cache = TempDir::new("host-cache").unwrap();
    let reference = registry.reference("demo/counter:1");
    let push = Command::new(harness::bin("host").unwrap())
        .args([
            "push",
            HTTP_COUNTER,
            &reference,
            "--insecure-registry",
            &registry.addr,
        ])
        .output()
        .unwrap();
    assert!(push.status.success(), "{push:?}");
    let pinned = String::from_utf8(push.stdout).unwrap().trim().to_string();
    assert!(
        pinned.starts_with(&format!("{}/demo/counter@sha256:", registry.addr)),
        "{pinned}"
    );

    // First start: pulled (a progress line), compiled, kept compiled.
    let host = serve(
        &manifest("by-tag", &reference),
        cache.path(),
        &registry.addr,
    );
    assert_eq!(hello(&host), "hello from from the registry\n");
    let run = host.terminate(LIMIT).unwrap();
    assert!(
        run.stdout.contains(&format!("pulling {reference}: ")),
        "{run:#?}"
    );
    let compiled: Vec<_> = std::fs::read_dir(cache.path().join("compiled"))
        .unwrap()
        .collect();
    assert_eq!(compiled.len(), 1, "one compiled component kept");
    let blob_gets = registry.blob_gets("demo/counter");
    assert!(blob_gets >= 1, "the layer was downloaded");

    // Registry gone: a restarted host starts the pinned image from the
    // cache, without pulling or compiling.
    registry.stop();
    let host = serve(
        &manifest("by-digest", &pinned),
        cache.path(),
        &registry.addr,
    );
    assert_eq!(hello(&host), "hello from from the registry\n");
    let run = host.terminate(LIMIT).unwrap();
    assert!(!run.stdout.contains("pulling "), "nothing pulled: {run:#?}");
    assert!(
        run.stderr.contains("compiled component from the cache"),
        "not compiled again: {}",
        run.stderr
    );

    // A cached blob that does not match its digest is refused, not run.
    let blobs = cache.path().join("oci/blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(b"\0asm") {
            bytes[8] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let host = serve(&manifest("tampered", &pinned), cache.path(), &registry.addr);
    host.await_stdout("ready\n", LIMIT).unwrap();
    let run = host.terminate(LIMIT).unwrap();
    assert!(
        run.stderr.contains("workload `tampered` did not start"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("sha256:"),
        "names the digests: {}",
        run.stderr
    );
}

/// Machine code from the compiled cache runs only if no one but this user
/// can have written it: a directory others may write is compiled around.
#[test]
fn a_compiled_cache_others_can_write_is_not_loaded() {
    use std::os::unix::fs::PermissionsExt as _;
    let cache = TempDir::new("host-cache").unwrap();
    let workload = harness::workload::Workload::new("kv")
        .component(
            harness::workload::Component::new("api", e2e::KV_GUEST).config("SCENARIO", "counter"),
        )
        .host("wasi:keyvalue");
    let env = [
        ("HOST_CACHE_DIR", cache.path().to_str().unwrap()),
        ("RUST_LOG", "warn,host::sources=debug"),
    ];
    let run = || workload.spawn(&[], &env).unwrap().wait(LIMIT).unwrap();
    let first = run();
    assert_eq!(first.code, Some(0), "{first:#?}");
    let compiled = cache.path().join("compiled");
    std::fs::set_permissions(&compiled, std::fs::Permissions::from_mode(0o777)).unwrap();
    let open = run();
    assert_eq!(open.code, Some(0), "{open:#?}");
    assert!(open.stderr.contains("compiling instead"), "{}", open.stderr);
    assert!(
        !open.stderr.contains("compiled component from the cache"),
        "{}",
        open.stderr
    );
    std::fs::set_permissions(&compiled, std::fs::Permissions::from_mode(0o700)).unwrap();
    let closed = run();
    assert!(
        closed.stderr.contains("compiled component from the cache"),
        "{}",
        closed.stderr
    );
}
