//! The built-in `keyvalue` and `blobstore` plugins, end to end: the kv and
//! blob guests against `host:` entries, with no extension, no server and
//! the wRPC plugin switched off; what they store checked in the file or
//! directory the manifest names.

use std::path::Path;
use std::time::Duration;

use e2e::{assert_refused, assert_success, TempDir, BLOB_GUEST, KV_GUEST};
use harness::workload::{Component, Workload};
use harness::HostRun;

/// A hang guard for each host run, far above what any run here takes.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// No wRPC at all: what runs is served in process.
const NO_WRPC: &[&str] = &["--disable-plugin", "wrpc"];

/// A workload of one component, `guest` with `config`, and `host` (the
/// `host:` entries: an interface name, or mapping lines).
fn manifest(guest: &str, config: &[(&str, &str)], host: &[impl AsRef<str>]) -> Workload {
    let mut app = Component::new("app", guest);
    for (k, v) in config {
        app = app.config(k, v);
    }
    let mut w = Workload::new("embedded").namespace("tests").component(app);
    for entry in host {
        w = w.host_entry(entry.as_ref());
    }
    w
}

fn kv(config: &[(&str, &str)], host: &[impl AsRef<str>], args: &[&str]) -> HostRun {
    manifest(KV_GUEST, config, host)
        .run(args, RUN_LIMIT)
        .unwrap()
}

fn blob(config: &[(&str, &str)], host: &[impl AsRef<str>]) -> HostRun {
    manifest(BLOB_GUEST, config, host)
        .run(NO_WRPC, RUN_LIMIT)
        .unwrap()
}

/// A keyvalue entry kept in `file`, with more option lines.
fn kv_file(file: &Path, more: &str) -> [String; 1] {
    [format!(
        "interface: wasi:keyvalue\npath: \"{}\"\n{more}",
        file.display()
    )]
}

/// The blobstore and admin entries on `dir`, with more option lines.
fn blob_dir(dir: &Path, more: &str) -> [String; 2] {
    [
        format!(
            "interface: wasi:blobstore\ndir: \"{}\"\n{more}",
            dir.display()
        ),
        "blobstore-s3:admin".into(),
    ]
}

/// Every store, atomics and batch call of the kv guest, served in process
/// with nothing else running: 1,202 keys listed over three 500-key pages.
#[test]
fn keyvalue_in_memory_serves_every_call_without_a_backend() {
    let run = kv(
        &[("SCENARIO", "full"), ("BUCKET", "alpha")],
        &["wasi:keyvalue"],
        NO_WRPC,
    );
    assert_success(&run, "atomics: ok");
    assert!(run.stdout.contains("store: ok"), "{run:#?}");
    assert!(run.stdout.contains("batch: ok"), "{run:#?}");
    assert!(
        run.stdout.contains("list-keys: 1202 keys in 3 pages"),
        "{run:#?}"
    );
}

/// With `path:`, what one host run wrote is there for the next: the
/// marker the full scenario leaves in `alpha` is seen by a later run (and
/// not in `beta`), and a counter counts on across runs.
#[test]
fn keyvalue_file_keeps_the_data_across_host_runs() {
    let dir = TempDir::new("embedded-kv").unwrap();
    let file = dir.path().join("kv.db");
    let host = kv_file(&file, "");
    let first = kv(&[("SCENARIO", "full"), ("BUCKET", "alpha")], &host, NO_WRPC);
    assert_success(&first, "atomics: ok");
    assert!(file.metadata().unwrap().len() > 0, "the file was written");

    let again = kv(
        &[("SCENARIO", "isolated"), ("BUCKET", "alpha")],
        &host,
        NO_WRPC,
    );
    assert_eq!(again.code, Some(1), "{again:#?}");
    assert!(
        again
            .stdout
            .contains("FAIL: another bucket's key is visible"),
        "the first run's marker is still in `alpha`: {again:#?}"
    );
    let other = kv(
        &[("SCENARIO", "isolated"), ("BUCKET", "beta")],
        &host,
        NO_WRPC,
    );
    assert_success(&other, "isolated: ok");

    for visit in 1..=2 {
        let run = kv(
            &[("SCENARIO", "counter"), ("BUCKET", "visits")],
            &host,
            NO_WRPC,
        );
        assert_success(&run, &format!("hello: visit number {visit}"));
    }
}

/// A value over `max_value_bytes` is the guest's `error::other` naming
/// the bound (the guest prints it and fails; nothing traps); raising the
/// bound lets the same 3 MiB value through.
#[test]
fn keyvalue_value_over_the_bound_is_an_error_value() {
    let big = [("SCENARIO", "big"), ("BUCKET", "b"), ("SIZE", "3145728")];
    let refused = kv(&big, &["wasi:keyvalue"], NO_WRPC);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(
        refused.stdout.contains(
            "FAIL: set big: other: the value of key `big` has 3145728 bytes, over max_value_bytes (1048576)"
        ),
        "{refused:#?}"
    );
    assert!(!refused.stderr.contains("trap"), "{refused:#?}");

    let raised = ["interface: wasi:keyvalue\nmax_value_bytes: 4194304\nmax_total_bytes: 8388608"];
    assert_success(&kv(&big, &raised, NO_WRPC), "big: ok 3145728 bytes");
}

/// A file that is not a keyvalue file refuses the workload, in one line
/// naming the file, before anything runs; the file is left as it was.
#[test]
fn keyvalue_corrupt_file_refuses_the_workload() {
    let dir = TempDir::new("embedded-kv-corrupt").unwrap();
    let file = dir.path().join("kv.db");
    std::fs::write(&file, "not: a keyvalue file\n").unwrap();
    let run = kv(&[("SCENARIO", "counter")], &kv_file(&file, ""), NO_WRPC);
    assert_refused(
        &run,
        &[
            "`host:` entry `wasi:keyvalue`",
            &format!("cannot load {}: not a keyvalue file", file.display()),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "not: a keyvalue file\n"
    );
}

/// `--disable-plugin keyvalue`: the same workload is refused, naming its
/// `host:` entry, and the plugins the host does have.
#[test]
fn keyvalue_switched_off_refuses_the_workload() {
    let run = kv(
        &[("SCENARIO", "counter")],
        &["wasi:keyvalue"],
        &["--disable-plugin", "keyvalue"],
    );
    assert_refused(
        &run,
        &["`host:` entry `wasi:keyvalue`: no plugin on this host serves it (plugins: "],
    );
    assert!(!run.stderr.contains("`keyvalue` ("), "{run:#?}");
}

/// An option neither plugin knows is refused, naming it, and so is a
/// blobstore without `dir`.
#[test]
fn unknown_options_and_a_missing_dir_are_refused_by_name() {
    let run = kv(
        &[("SCENARIO", "counter")],
        &["interface: wasi:keyvalue\nmax_bytes: 10"],
        NO_WRPC,
    );
    assert_refused(
        &run,
        &["`host:` entry `wasi:keyvalue`: unknown option `max_bytes`"],
    );
    let dir = TempDir::new("embedded-blob-options").unwrap();
    let run = blob(
        &[("SCENARIO", "exists")],
        &blob_dir(dir.path(), "colour: red"),
    );
    assert_refused(
        &run,
        &["`host:` entry `wasi:blobstore`: unknown option `colour`"],
    );
    let run = blob(
        &[("SCENARIO", "exists")],
        &["wasi:blobstore", "blobstore-s3:admin"],
    );
    assert_refused(&run, &["`host:` entry `wasi:blobstore`: `dir` is required"]);
}

/// The blob guest's demo and full scenarios on a directory: containers,
/// objects written and read back whole and by ranges (SHA-256), metadata,
/// copy, move, listing, deletes, clear and list-containers. Both delete
/// their container, and the directory is left empty.
#[test]
fn blobstore_demo_and_full_scenarios_on_a_directory() {
    let dir = TempDir::new("embedded-blob").unwrap();
    let host = blob_dir(dir.path(), "");
    let demo = blob(&[("SCENARIO", "demo"), ("SIZE", "4194304")], &host);
    assert_success(&demo, "deleted container demo-photos");
    assert!(
        demo.stdout.contains("containers: demo-photos\n"),
        "{demo:#?}"
    );
    assert!(
        demo.stdout
            .contains("note.txt says: hello from the blob demo"),
        "{demo:#?}"
    );
    assert!(
        demo.stdout.contains("demo-photos/photo.raw: 4194304 B"),
        "{demo:#?}"
    );
    let full = blob(
        &[
            ("SCENARIO", "full"),
            ("CONTAINER", "lifecycle"),
            ("SIZE", "8388608"),
        ],
        &host,
    );
    assert_success(&full, "full: ok");
    let left: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|n| n != ".partial")
        .collect();
    assert!(left.is_empty(), "both containers are gone: {left:?}");
    assert!(
        listing(&dir.path().join(".partial")).is_empty(),
        "nothing staged is left"
    );
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Containers are subdirectories and objects files: an object the guest
/// writes is a file of its size in the container's directory, read back
/// with the same SHA-256; files put there are listed as objects.
#[test]
fn blobstore_objects_are_files_in_the_directory() {
    let dir = TempDir::new("embedded-blob-files").unwrap();
    let host = blob_dir(dir.path(), "");
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    let object = [("CONTAINER", "photos"), ("NAME", "pic.raw")];
    let write = blob(
        &[&object[..], &[("SCENARIO", "write"), ("SIZE", "3000000")]].concat(),
        &host,
    );
    assert_success(&write, "write: ok ");
    let hash = write.stdout.split("write: ok ").nth(1).unwrap().trim();
    let stored = dir.path().join("photos/pic.raw").metadata().unwrap();
    assert_eq!(stored.len(), 3_000_000, "the object is a file of its size");
    let read = blob(&[&object[..], &[("SCENARIO", "read")]].concat(), &host);
    assert_success(&read, &format!("read: ok 3000000 {hash} "));

    for i in 0..250 {
        std::fs::write(dir.path().join(format!("photos/extra-{i:03}")), [i as u8]).unwrap();
    }
    let list = [
        ("SCENARIO", "list"),
        ("CONTAINER", "photos"),
        ("EXPECT", "251"),
        ("BATCH", "97"),
        ("SKIP", "100"),
    ];
    assert_success(&blob(&list, &host), "list: ok 251");
}

/// Names that would leave the directory are refused with an error value
/// naming them, and nothing is written outside it.
#[test]
fn blobstore_names_escaping_the_directory_are_refused() {
    let dir = TempDir::new("embedded-blob-escape").unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("c")).unwrap();
    let host = blob_dir(&store, "");
    let up = [
        ("SCENARIO", "exists"),
        ("CONTAINER", ".."),
        ("EXPECT_ERROR", "1"),
    ];
    assert_success(
        &blob(&up, &host),
        "error: container-exists: invalid container name \"..\": `.` and `..` are not names",
    );
    let write = [
        ("SCENARIO", "write"),
        ("CONTAINER", "c"),
        ("NAME", "../../escaped"),
        ("SIZE", "10"),
        ("EXPECT_ERROR", "1"),
    ];
    assert_success(
        &blob(&write, &host),
        "error: write: write-data: invalid object name \"../../escaped\": it contains a path separator",
    );
    assert_eq!(listing(dir.path()), ["store"], "nothing beside the store");
    assert!(
        listing(&store.join("c")).is_empty(),
        "nothing in the container"
    );
}

/// A body over `max_object_bytes` fails at the write that crosses it; no
/// object appears, whole or partial, and nothing staged is left.
#[test]
fn blobstore_object_over_the_bound_is_never_stored() {
    let dir = TempDir::new("embedded-blob-bound").unwrap();
    std::fs::create_dir(dir.path().join("c")).unwrap();
    let host = blob_dir(dir.path(), "max_object_bytes: 1048576");
    let write = [
        ("SCENARIO", "write"),
        ("CONTAINER", "c"),
        ("NAME", "big"),
        ("SIZE", "2097152"),
        ("EXPECT_ERROR", "1"),
    ];
    let run = blob(&write, &host);
    assert_success(
        &run,
        "error: write: the object is larger than max_object_bytes (1048576 bytes)",
    );
    assert!(
        listing(&dir.path().join("c")).is_empty(),
        "no object: {run:#?}"
    );
    assert!(
        listing(&dir.path().join(".partial")).is_empty(),
        "nothing staged is left"
    );
}

/// `HOST_DISABLE_PLUGINS=blobstore`: the same workload is refused, naming
/// its `host:` entry.
#[test]
fn blobstore_switched_off_refuses_the_workload() {
    let dir = TempDir::new("embedded-blob-off").unwrap();
    let run = manifest(
        BLOB_GUEST,
        &[("SCENARIO", "exists")],
        &blob_dir(dir.path(), ""),
    )
    .spawn(&[], &[("HOST_DISABLE_PLUGINS", "blobstore")])
    .unwrap()
    .wait(RUN_LIMIT)
    .unwrap();
    assert_refused(
        &run,
        &["`host:` entry `wasi:blobstore`: no plugin on this host serves it (plugins: "],
    );
    assert!(!run.stderr.contains("`blobstore` ("), "{run:#?}");
}
