//! The directory's semantics, and bodies written through the stream.

use std::path::Path;

use bytes::Bytes;
use wasmtime_wasi::p2::{OutputStream as _, StreamError};

use crate::body::{Upload, CHUNK, QUEUE};
use crate::root::Root;

fn root(dir: &Path) -> Root {
    Root::new(dir.to_path_buf(), 1 << 20)
}

#[test]
fn names_that_could_leave_the_directory_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(dir.path());
    for bad in ["..", ".", "a/b", "/etc", "a\\b", "a\0b", "", ".partial"] {
        let err = r.create_container(bad).unwrap_err();
        assert!(
            err.starts_with(&format!("invalid container name {bad:?}: ")),
            "{err}"
        );
    }
    r.create_container("c").unwrap();
    for bad in ["..", "../c", "/etc/passwd", "x\0", &"n".repeat(256)] {
        let err = r.has_object("c", bad).unwrap_err();
        assert!(
            err.starts_with(&format!("invalid object name {bad:?}: ")),
            "{err}"
        );
    }
    assert!(
        r.has_object("c", ".hidden").is_ok(),
        "a leading dot is fine"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "only the container was made");
}

#[test]
fn containers_follow_the_s3_extension() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(dir.path());
    assert_eq!(r.container_exists("c"), Ok(false));
    assert_eq!(
        r.open_container("c").unwrap_err(),
        "container `c` does not exist"
    );
    r.create_container("c").unwrap();
    assert_eq!(
        r.create_container("c").unwrap_err(),
        "container `c` already exists"
    );
    assert!(r.container_created("c").unwrap() > 0);
    r.create_container("b").unwrap();
    let listed: Vec<String> = r
        .list_containers()
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(listed, ["b", "c"]);
    r.delete_container("c").unwrap();
    assert_eq!(
        r.delete_container("c").unwrap_err(),
        "container `c` does not exist"
    );
}

#[test]
fn objects_ranges_copies_and_moves() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(dir.path());
    r.create_container("c").unwrap();
    std::fs::write(dir.path().join("c/o"), b"0123456789").unwrap();
    std::fs::write(dir.path().join("c/empty"), b"").unwrap();
    let read = |start, end| {
        r.open_range("c", "o", start, end)
            .and_then(|(f, len)| crate::root::read_exact(f, len))
    };
    assert_eq!(read(2, 4).unwrap(), b"234");
    assert_eq!(read(8, u64::MAX).unwrap(), b"89");
    assert!(read(10, 12)
        .unwrap_err()
        .contains("past the object's 10 bytes"));
    assert!(read(3, 2)
        .unwrap_err()
        .contains("ends (2) before it starts (3)"));
    assert_eq!(r.open_range("c", "empty", 5, 9).unwrap().1, 0);
    let missing = r.object_info("c", "nope").unwrap_err();
    assert_eq!(missing, "object `nope` of container `c` does not exist");
    assert_eq!(r.object_info("c", "o").unwrap().1, 10);

    r.copy(("c", "o"), ("c", "copy")).unwrap();
    r.rename(("c", "copy"), ("c", "moved")).unwrap();
    assert_eq!(r.list_objects("c").unwrap(), ["empty", "moved", "o"]);
    assert!(r
        .copy(("c", "o"), ("none", "x"))
        .unwrap_err()
        .contains("`none` does not exist"));
    assert!(r.rename(("c", "gone"), ("c", "x")).is_err());
    r.delete_objects("c", &["moved".into(), "never".into()])
        .unwrap();
    r.clear("c").unwrap();
    assert!(r.list_objects("c").unwrap().is_empty());
}

/// Writes `chunks` through a body's stream (as a guest would, `check-write`
/// first) and finishes it into object `o` of container `c`.
async fn write(r: &Root, chunks: &[&[u8]]) -> Result<(), String> {
    let before = r.object_info("c", "o").ok();
    let (upload, mut writer) = Upload::start(r.stage()?, r.max_object_bytes);
    for chunk in chunks {
        for piece in chunk.chunks(CHUNK) {
            while writer.check_write().map_err(|e| e.to_string())? == 0 {
                wasmtime_wasi::p2::Pollable::ready(&mut writer).await;
            }
            match writer.write(Bytes::copy_from_slice(piece)) {
                Ok(()) => {}
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_string()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    drop(writer);
    let unchanged = r.object_info("c", "o").ok();
    assert_eq!(unchanged, before, "the object changes only on finish");
    let staged = upload.finish().await?;
    r.commit(staged, "c", "o")
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_appear_whole_on_finish_and_never_past_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(dir.path());
    r.create_container("c").unwrap();
    let big = vec![7_u8; CHUNK * QUEUE * 3 + 5];
    write(&r, &[b"head", &big]).await.unwrap();
    let stored = std::fs::read(dir.path().join("c/o")).unwrap();
    assert_eq!(stored.len(), 4 + big.len());

    let over = vec![0_u8; (1 << 20) + 1];
    let err = write(&r, &[&over]).await.unwrap_err();
    assert!(err.contains("max_object_bytes (1048576 bytes)"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("c/o")).unwrap().len(),
        stored.len(),
        "the object is unchanged"
    );

    assert_eq!(r.list_objects("c").unwrap(), ["o"]);
}

/// On Tokio's current-thread runtime the dropped upload's task is gone (its
/// staged file with it) by the time the stream sees its receiver closed.
#[tokio::test]
async fn a_body_dropped_unfinished_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(dir.path());
    r.create_container("c").unwrap();
    let (upload, mut writer) = Upload::start(r.stage().unwrap(), 1 << 20);
    writer.write(Bytes::from_static(b"partial")).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join(".partial"))
            .unwrap()
            .count(),
        1
    );
    drop(upload);
    writer.closed().await;
    assert_eq!(
        std::fs::read_dir(dir.path().join(".partial"))
            .unwrap()
            .count(),
        0
    );
    assert!(matches!(writer.check_write(), Err(StreamError::Closed)));
    assert!(r.list_objects("c").unwrap().is_empty());
}
