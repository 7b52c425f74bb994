//! The README's no-backend demo, from the manifests it runs (`demo/http.yaml`,
//! `demo/local.yaml`, `demo/local-blob.yaml`, `demo/linked.yaml`): each runs with no server and no
//! extension, and the wRPC plugin switched off to prove it. Only the paths
//! change: component files point at this build's guests, and what the
//! manifests keep under `../target/demo` goes to a temporary directory.

use std::path::Path;
use std::time::Duration;

use e2e::http::{request, send};
use e2e::{assert_success, TempDir, BLOBSTORE_FILESYSTEM, BLOB_GUEST, HTTP_COUNTER, KV_GUEST};
use harness::{spawn_host_manifest, HostRun};

/// A hang guard for each host run, far above what any run here takes.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `demo/<name>.yaml` as shipped, with its component files replaced by this
/// build's guests and `../target/demo` by `data`.
fn demo_manifest(name: &str, data: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../demo/{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let guests = [
        ("kv-guest.wasm", KV_GUEST),
        ("blob-guest.wasm", BLOB_GUEST),
        ("blobstore_filesystem.wasm", BLOBSTORE_FILESYSTEM),
        ("http_counter.wasm", HTTP_COUNTER),
    ];
    let mut replaced = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let Some(rest) = line.trim_start().strip_prefix("file: ") else {
                return line.replace("../target/demo", &data.display().to_string());
            };
            let (_, guest) = guests
                .iter()
                .find(|(file, _)| rest.ends_with(file))
                .unwrap_or_else(|| panic!("{name}.yaml runs an unknown component: {rest}"));
            replaced += 1;
            let indent = &line[..line.len() - line.trim_start().len()];
            format!("{indent}file: \"{guest}\"")
        })
        .collect();
    assert!(replaced > 0, "{name}.yaml names no component file");
    lines.join("\n")
}

fn run(name: &str, data: &Path) -> HostRun {
    spawn_host_manifest(
        &demo_manifest(name, data),
        &["--disable-plugin", "wrpc"],
        &[],
    )
    .unwrap()
    .wait(RUN_LIMIT)
    .unwrap()
}

/// The HTTP counter, served by `host serve` with the built-in keyvalue kept
/// in a file: each `GET /count` counts, and a restarted host counts on.
#[test]
fn http_counter_counts_requests_across_hosts_in_its_file() {
    let data = TempDir::new("demo").unwrap();
    let manifest = demo_manifest("http", data.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for first in [1, 3] {
        let host = harness::spawn_serve(
            &manifest,
            &["--http-listen", "127.0.0.1:0", "--disable-plugin", "wrpc"],
            &[],
        )
        .unwrap();
        let http = host.http_listen(RUN_LIMIT).unwrap();
        host.await_stdout("ready\n", RUN_LIMIT).unwrap();
        for n in first..first + 2 {
            let reply = rt
                .block_on(send(&http, request("localhost", "/count", "")))
                .unwrap();
            assert_eq!(reply.text(), format!("count: {n}\n"));
        }
        let run = host.terminate(RUN_LIMIT).unwrap();
        assert_eq!(run.code, Some(0), "{run:#?}");
    }
    assert!(
        data.path().join("http.kv").exists(),
        "the count is in its file"
    );
}

/// The counter with the built-in keyvalue kept in a file: the second run
/// counts on from the first, and the file holds the count.
#[test]
fn local_counter_counts_on_across_runs_in_its_file() {
    let data = TempDir::new("demo-local").unwrap();
    let first = run("local", data.path());
    assert_success(&first, "hello from the local counter: visit number 1");
    assert!(data.path().join("counter.kv").is_file(), "{first:#?}");
    let second = run("local", data.path());
    assert_success(&second, "hello from the local counter: visit number 2");
}

/// The blob demo on the built-in blobstore: every step of it, with the
/// container listed through `blobstore-s3:admin` and deleted at the end.
#[test]
fn local_blob_demo_runs_on_a_directory() {
    let data = TempDir::new("demo-local-blob").unwrap();
    std::fs::create_dir(data.path().join("blobs")).unwrap();
    let run = run("local-blob", data.path());
    assert_success(&run, "containers: demo-photos");
    assert!(
        run.stdout
            .contains("note.txt says: hello from the blob demo"),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains("deleted container demo-photos"),
        "{run:#?}"
    );
    assert!(!data.path().join("blobs/demo-photos").exists(), "{run:#?}");
}

/// The same blob demo through another component of the workload, linked in
/// process: `files` exports wasi:blobstore on its preopened directory.
#[test]
fn linked_blob_demo_runs_through_the_other_component() {
    let data = TempDir::new("demo-linked").unwrap();
    std::fs::create_dir(data.path().join("linked")).unwrap();
    let run = run("linked", data.path());
    assert_success(&run, "containers: demo-photos");
    assert!(
        run.stdout
            .contains("photo.raw bytes 1048576..=2097151: 1048576 B, as written"),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains("deleted container demo-photos"),
        "{run:#?}"
    );
    assert!(
        data.path().join("linked/.blobstore-partial").is_dir(),
        "the bodies were staged by `files` in its directory: {run:#?}"
    );
}
