//! A guest command that uses `wasi:blobstore@0.2.0-draft`. Its component
//! config (environment) picks what it does:
//!
//! - `SCENARIO=full`: creates container `CONTAINER`; writes objects of 0 B,
//!   1 KiB and `SIZE` bytes (default 64 MiB); reads each back whole and by
//!   ranges and compares SHA-256; checks metadata, copy, move, listing,
//!   deletes, clear, `blobstore-s3:admin` list-containers, and deletes the
//!   container;
//! - `SCENARIO=list`: lists `CONTAINER` (holding `EXPECT` objects) in batches
//!   of `BATCH` and checks that every name comes exactly once; then skips
//!   `SKIP` names and counts the rest;
//! - `SCENARIO=write`: writes object `NAME` of `SIZE` bytes in chunks of
//!   `CHUNK` bytes, pausing `PAUSE_MS` between chunks; `ABORT=trap` traps
//!   after `ABORT_AFTER` bytes, `ABORT=hang` prints `written N` there and
//!   sleeps; prints `write: ok SHA256`;
//! - `SCENARIO=read`: reads `NAME` whole, `CHUNK` bytes at a time, pausing
//!   `PAUSE_MS` between reads; prints `read: ok LEN SHA256 start_ns=… end_ns=…`;
//! - `SCENARIO=ops`: `COUNT` has-object calls; prints `ops: ok start_ns=… end_ns=…`;
//! - `SCENARIO=exists`: prints `exists: BOOL` for `CONTAINER`;
//! - `SCENARIO=steady`: `container-exists` of `CONTAINER` in a loop that
//!   never stops on an error, for the fault-injection suite
//!   (`../shared/steady.rs` says how it stops and what it prints);
//! - `SCENARIO=bench-put` / `bench-get`: writes / reads `NAME` of `SIZE`
//!   bytes as fast as possible; prints `bench put: bytes=… ns=…`;
//! - `SCENARIO=demo` (the README's demo): creates container `CONTAINER`,
//!   writes a `GREETING` note and a `SIZE`-byte object (streamed, multipart
//!   when large), lists the containers, then the container's objects with
//!   their sizes, reads the note back and a range of the large object, and
//!   deletes the container;
//! - `SCENARIO=seed` / `intrude` / `intact`: one tenant's container, another
//!   tenant trying every operation on it, the first checking it (`tenant`).
//!
//! With `EXPECT_ERROR=1` a scenario must fail: it prints `error: …` and
//! exits 0. Any failed check prints `FAIL: …` and exits 1.

mod bindings {
    wit_bindgen::generate!({
        path: [
            "../../../wit/io",
            "../../../wit/blobstore",
            "../../../wit/blobstore-admin",
            "wit",
        ],
        world: "test:blob-guest/guest",
        generate_all,
    });
}

mod tenant;

use std::collections::BTreeSet;
use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bindings::blobstore_s3::admin::containers;
use bindings::wasi::blobstore::blobstore;
use bindings::wasi::blobstore::container::Container;
use bindings::wasi::blobstore::types::{IncomingValue, ObjectId, OutgoingValue};
use bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};
use sha2::{Digest as _, Sha256};

#[path = "../../shared/steady.rs"]
mod steady;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_str(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn fail(msg: impl AsRef<str>) -> ! {
    println!("FAIL: {}", msg.as_ref());
    exit(1)
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A failed step: expected with `EXPECT_ERROR=1` (printed, exit 0), else a failure.
fn failed(step: &str, why: impl AsRef<str>) -> ! {
    if env_or("EXPECT_ERROR", 0u8) == 1 {
        println!("error: {step}: {}", why.as_ref());
        exit(0)
    }
    fail(format!("{step}: {}", why.as_ref()))
}

/// `check(step, result)`: the value, or a failure naming the step.
fn check<T>(step: &str, r: Result<T, String>) -> T {
    r.unwrap_or_else(|why| failed(step, why))
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "stream closed".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

/// The byte at offset `i` of the object seeded `seed`: any range can be
/// regenerated without the rest.
fn byte_at(seed: u64, i: u64) -> u8 {
    let mut z = seed ^ (i / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> ((i % 8) * 8)) as u8
}

fn seed_of(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Fills `buf` with the object's bytes from `offset`.
fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = byte_at(seed, offset + k as u64);
    }
}

/// SHA-256 of bytes `start..end` of the object seeded `seed`.
fn expected_hash(seed: u64, start: u64, end: u64) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = start;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        fill(seed, at, &mut buf[..n]);
        h.update(&buf[..n]);
        at += n as u64;
    }
    hex(h)
}

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes all of `data` through the output stream: as much as check-write
/// allows each time, waiting on the stream's pollable when it allows nothing.
fn write_all(out: &OutputStream, mut data: &[u8]) -> Result<(), String> {
    while !data.is_empty() {
        let n = out.check_write().map_err(stream_error)? as usize;
        if n == 0 {
            out.subscribe().block();
            continue;
        }
        let n = n.min(data.len());
        out.write(&data[..n]).map_err(stream_error)?;
        data = &data[n..];
    }
    Ok(())
}

/// Writes object `name` of `size` bytes (seeded by the name) to `container`
/// in chunks of `chunk`, pausing `pause` between them. Returns its SHA-256.
fn write_object(
    container: &Container,
    name: &str,
    size: u64,
    chunk: usize,
    pause: Duration,
    abort: Option<(&str, u64)>,
) -> Result<String, String> {
    let seed = seed_of(name);
    let (value, body) = open_body(container, name)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; chunk.max(1)];
    let mut at = 0u64;
    while at < size {
        if let Some((how, after)) = abort {
            if at >= after {
                match how {
                    "trap" => unreachable!("trapping mid-write after {at} bytes, as told"),
                    "hang" => {
                        println!("written {at}");
                        std::thread::sleep(Duration::from_secs(600));
                        exit(2)
                    }
                    "exit" => {
                        println!("written {at}");
                        exit(0)
                    }
                    other => fail(format!("unknown ABORT `{other}`")),
                }
            }
        }
        let n = (size - at).min(buf.len() as u64) as usize;
        fill(seed, at, &mut buf[..n]);
        h.update(&buf[..n]);
        write_all(&body, &buf[..n])?;
        at += n as u64;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    close_body(value, body)?;
    Ok(hex(h))
}

/// Starts writing object `name`: the value and its body stream.
fn open_body(container: &Container, name: &str) -> Result<(OutgoingValue, OutputStream), String> {
    let value = OutgoingValue::new_outgoing_value();
    let body = value
        .outgoing_value_write_body()
        .map_err(|()| "outgoing-value-write-body refused".to_string())?;
    container
        .write_data(name, &value)
        .map_err(|e| format!("write-data: {e}"))?;
    Ok((value, body))
}

/// Flushes the body, drops it and finishes the value: S3's verdict.
fn close_body(value: OutgoingValue, body: OutputStream) -> Result<(), String> {
    body.blocking_flush().map_err(stream_error)?;
    drop(body);
    OutgoingValue::finish(value).map_err(|e| format!("finish: {e}"))
}

/// Reads the whole input stream, calling `each` on every piece.
fn read_stream(input: &InputStream, chunk: u64, pause: Duration, mut each: impl FnMut(&[u8])) -> Result<u64, String> {
    let mut total = 0;
    loop {
        match input.blocking_read(chunk) {
            Ok(bytes) => {
                total += bytes.len() as u64;
                each(&bytes);
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            Err(StreamError::Closed) => return Ok(total),
            Err(e) => return Err(stream_error(e)),
        }
    }
}

/// `get-data(start, end)` read through an input stream: (length, SHA-256).
fn read_range(container: &Container, name: &str, start: u64, end: u64) -> Result<(u64, String), String> {
    let value = container
        .get_data(name, start, end)
        .map_err(|e| format!("get-data: {e}"))?;
    let input = IncomingValue::incoming_value_consume_async(value)
        .map_err(|e| format!("consume-async: {e}"))?;
    let mut h = Sha256::new();
    let len = read_stream(&input, 64 * 1024, Duration::ZERO, |b| h.update(b))?;
    Ok((len, hex(h)))
}

/// `get-data(start, end)` consumed whole.
fn read_sync(container: &Container, name: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let value = container
        .get_data(name, start, end)
        .map_err(|e| format!("get-data: {e}"))?;
    IncomingValue::incoming_value_consume_sync(value).map_err(|e| format!("consume-sync: {e}"))
}

fn list_all(container: &Container, batch: u64) -> Result<Vec<String>, String> {
    let names = container.list_objects().map_err(|e| format!("list-objects: {e}"))?;
    let mut out = Vec::new();
    loop {
        let (mut got, end) = names
            .read_stream_object_names(batch)
            .map_err(|e| format!("read-stream-object-names: {e}"))?;
        if got.len() as u64 > batch {
            return Err(format!("asked for {batch} names, got {}", got.len()));
        }
        out.append(&mut got);
        if end {
            return Ok(out);
        }
    }
}

fn full() {
    let name = env_str("CONTAINER", "blobs");
    let size: u64 = env_or("SIZE", 64 << 20);
    let started = unix_ns() / 1_000_000_000;
    let container = check("create-container", blobstore::create_container(&name));
    if !check("container-exists", blobstore::container_exists(&name)) {
        fail("container-exists is false right after create-container");
    }
    let info = check("container.info", container.info());
    if info.name != name || info.created_at == 0 {
        fail(format!("container.info: {info:?}"));
    }
    if (info.created_at as u128) + 86_400 < started {
        fail(format!("container.info: created-at {} is far in the past", info.created_at));
    }
    let again = check("get-container", blobstore::get_container(&name));
    if check("container.name", again.name()) != name {
        fail("get-container opened another container");
    }
    if blobstore::get_container("no-such-container-here").is_ok() {
        fail("get-container of a missing container succeeded");
    }

    let objects = [("empty", 0u64), ("small", 1024), ("big", size)];
    for (object, len) in objects {
        let hash = check(
            &format!("writing `{object}`"),
            write_object(&container, object, len, 256 * 1024, Duration::ZERO, None),
        );
        let expected = expected_hash(seed_of(object), 0, len);
        if hash != expected {
            fail(format!("`{object}`: wrote {hash}, expected {expected}"));
        }
    }
    for (object, len) in objects {
        let meta = check(&format!("object-info `{object}`"), container.object_info(object));
        if meta.size != len || meta.created_at == 0 || meta.name != object || meta.container != name {
            fail(format!("object-info `{object}`: {meta:?}"));
        }
        if !check(&format!("has-object `{object}`"), container.has_object(object)) {
            fail(format!("has-object `{object}` is false"));
        }
        // Whole, as a stream and (small ones) at once.
        let (n, hash) = check(&format!("reading `{object}`"), read_range(&container, object, 0, u64::MAX));
        let expected = expected_hash(seed_of(object), 0, len);
        if n != len || hash != expected {
            fail(format!("`{object}` read back {n} bytes {hash}, expected {len} {expected}"));
        }
        if len <= 1024 {
            let bytes = check(&format!("reading `{object}` at once"), read_sync(&container, object, 0, u64::MAX));
            let mut h = Sha256::new();
            h.update(&bytes);
            if hex(h) != expected {
                fail(format!("`{object}` read at once differs"));
            }
        }
    }
    // Ranges: both ends included.
    let ranges: &[(&str, u64, u64, u64)] = &[
        ("small", 0, 0, 1),
        ("small", 100, 199, 100),
        ("small", 1000, 5000, 24),
        ("small", 1023, 1023, 1),
        ("big", size / 2, size / 2 + (1 << 20) - 1, 1 << 20),
        ("big", size - 1, size - 1, 1),
    ];
    for &(object, start, end, want) in ranges {
        let (n, hash) = check(
            &format!("reading `{object}` [{start}, {end}]"),
            read_range(&container, object, start, end),
        );
        let expected = expected_hash(seed_of(object), start, start + want);
        if n != want || hash != expected {
            fail(format!("`{object}` [{start}, {end}]: {n} bytes {hash}, expected {want} {expected}"));
        }
    }
    let value = check("get-data for size", container.get_data("small", 100, 199).map_err(|e| e.to_string()));
    if value.size() != 100 {
        fail(format!("incoming-value.size of [100, 199] is {}", value.size()));
    }
    drop(value);

    // Copy and move.
    let id = |object: &str| ObjectId {
        container: name.clone(),
        object: object.to_string(),
    };
    check("copy-object", blobstore::copy_object(&id("small"), &id("small-copy")));
    let (_, hash) = check("reading the copy", read_range(&container, "small-copy", 0, u64::MAX));
    if hash != expected_hash(seed_of("small"), 0, 1024) {
        fail("the copy differs from its source");
    }
    check("move-object", blobstore::move_object(&id("small-copy"), &id("small-moved")));
    if check("has-object small-copy", container.has_object("small-copy")) {
        fail("the moved object is still at its source");
    }
    let names: BTreeSet<String> = check("listing", list_all(&container, 2)).into_iter().collect();
    let want: BTreeSet<String> = ["big", "empty", "small", "small-moved"].map(String::from).into();
    if names != want {
        fail(format!("listing: {names:?}, expected {want:?}"));
    }
    let listed = check("list-containers", containers::list_containers());
    match listed.iter().find(|c| c.name == name) {
        Some(c) if c.created_at > 0 => {}
        other => fail(format!("list-containers: {other:?} in {listed:?}")),
    }

    // Deletes, clear, delete the container.
    check("delete-object", container.delete_object("small-moved"));
    check("delete-object (missing)", container.delete_object("small-moved"));
    check("delete-objects", container.delete_objects(&["empty".to_string(), "small".to_string()]));
    let names = check("listing after deletes", list_all(&container, 100));
    if names != ["big"] {
        fail(format!("after deletes: {names:?}"));
    }
    check("clear", container.clear());
    let names = check("listing after clear", list_all(&container, 100));
    if !names.is_empty() {
        fail(format!("after clear: {names:?}"));
    }
    check("delete-container", blobstore::delete_container(&name));
    if check("container-exists after delete", blobstore::container_exists(&name)) {
        fail("the container still exists after delete-container");
    }
    println!("full: ok");
}

fn list() {
    let name = env_str("CONTAINER", "blobs");
    let expect: usize = env_or("EXPECT", 0);
    let batch: u64 = env_or("BATCH", 100);
    let container = check("get-container", blobstore::get_container(&name));
    let names = check("listing", list_all(&container, batch));
    let unique: BTreeSet<&String> = names.iter().collect();
    if unique.len() != names.len() {
        fail(format!("{} names listed, {} of them distinct", names.len(), unique.len()));
    }
    if names.len() != expect {
        fail(format!("{} names listed, expected {expect}", names.len()));
    }
    let skip: u64 = env_or("SKIP", 0);
    let listing = check("list-objects", container.list_objects());
    let (skipped, _) = check("skip-stream-object-names", listing.skip_stream_object_names(skip));
    let mut rest = 0;
    loop {
        let (got, end) = check("read-stream-object-names", listing.read_stream_object_names(batch));
        rest += got.len();
        if end {
            break;
        }
    }
    if skipped as usize + rest != expect {
        fail(format!("skipped {skipped}, then read {rest}, of {expect}"));
    }
    println!("list: ok {}", names.len());
}

fn write() {
    let name = env_str("CONTAINER", "blobs");
    let object = env_str("NAME", "object");
    let size: u64 = env_or("SIZE", 1 << 20);
    let chunk: usize = env_or("CHUNK", 256 * 1024);
    let pause = Duration::from_millis(env_or("PAUSE_MS", 0));
    let abort = std::env::var("ABORT").ok();
    let abort = abort.as_deref().map(|how| (how, env_or("ABORT_AFTER", size / 2)));
    let container = check("get-container", blobstore::get_container(&name));
    let hash = check("write", write_object(&container, &object, size, chunk, pause, abort));
    println!("write: ok {hash}");
}

fn read() {
    let name = env_str("CONTAINER", "blobs");
    let object = env_str("NAME", "object");
    let chunk: u64 = env_or("CHUNK", 64 * 1024);
    let pause = Duration::from_millis(env_or("PAUSE_MS", 0));
    let container = check("get-container", blobstore::get_container(&name));
    let start_ns = unix_ns();
    let value = check("get-data", container.get_data(&object, 0, u64::MAX));
    let input = check("consume-async", IncomingValue::incoming_value_consume_async(value));
    let mut h = Sha256::new();
    let len = check("reading", read_stream(&input, chunk, pause, |b| h.update(b)));
    println!("read: ok {len} {} start_ns={start_ns} end_ns={}", hex(h), unix_ns());
}

fn ops() {
    let name = env_str("CONTAINER", "blobs");
    let object = env_str("NAME", "object");
    let count: usize = env_or("COUNT", 100);
    let container = check("get-container", blobstore::get_container(&name));
    let start_ns = unix_ns();
    for _ in 0..count {
        check("has-object", container.has_object(&object));
    }
    println!("ops: ok start_ns={start_ns} end_ns={}", unix_ns());
}

fn exists() {
    let name = env_str("CONTAINER", "blobs");
    let exists = check("container-exists", blobstore::container_exists(&name));
    println!("exists: {exists}");
}

fn bench(put: bool) {
    let name = env_str("CONTAINER", "bench");
    let object = env_str("NAME", "object");
    let size: u64 = env_or("SIZE", 1 << 30);
    let container = check("get-container", blobstore::get_container(&name));
    let start = Instant::now();
    if put {
        let (value, body) = check("write-data", open_body(&container, &object));
        let mut buf = vec![0u8; 256 * 1024];
        fill(seed_of(&object), 0, &mut buf);
        let mut at = 0;
        while at < size {
            let n = (size - at).min(buf.len() as u64) as usize;
            check("writing", write_all(&body, &buf[..n]));
            at += n as u64;
        }
        check("finish", close_body(value, body));
        println!("bench put: bytes={size} ns={}", start.elapsed().as_nanos());
    } else {
        let value = check("get-data", container.get_data(&object, 0, u64::MAX));
        let input = check("consume-async", IncomingValue::incoming_value_consume_async(value));
        let len = check("reading", read_stream(&input, 256 * 1024, Duration::ZERO, |_| {}));
        if len != size {
            fail(format!("read {len} bytes, expected {size}"));
        }
        println!("bench get: bytes={len} ns={}", start.elapsed().as_nanos());
    }
}

fn demo() {
    let name = env_str("CONTAINER", "demo-photos");
    let greeting = env_str("GREETING", "hello");
    let size: u64 = env_or("SIZE", 20 << 20);
    if check("container-exists", blobstore::container_exists(&name)) {
        check("delete-container", blobstore::delete_container(&name));
    }
    let container = check("create-container", blobstore::create_container(&name));
    let all = check("list-containers", containers::list_containers());
    println!("containers: {}", all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "));
    let note = format!("{greeting} from the blob demo\n");
    check("write note.txt", write_object_bytes(&container, "note.txt", note.as_bytes()));
    let digest = check(
        "write photo.raw",
        write_object(&container, "photo.raw", size, 256 * 1024, Duration::ZERO, None),
    );
    println!("wrote note.txt ({} B) and photo.raw ({size} B, sha256 {})", note.len(), &digest[..16]);
    for object in check("list-objects", list_all(&container, 100)) {
        let info = check("object-info", container.object_info(&object));
        println!("  {name}/{object}: {} B, created at {} s", info.size, info.created_at);
    }
    let back = check("read note.txt", read_sync(&container, "note.txt", 0, u64::MAX));
    print!("note.txt says: {}", String::from_utf8_lossy(&back));
    let (len, range) = check("read a range", read_range(&container, "photo.raw", 1 << 20, (2 << 20) - 1));
    if range != expected_hash(seed_of("photo.raw"), 1 << 20, 2 << 20) {
        fail("photo.raw's second MiB read back differs from what was written");
    }
    println!("photo.raw bytes 1048576..=2097151: {len} B, as written");
    check("delete-container", blobstore::delete_container(&name));
    println!("deleted container {name}");
}

/// Writes `data` as object `name` in one piece.
fn write_object_bytes(container: &Container, name: &str, data: &[u8]) -> Result<(), String> {
    let (value, body) = open_body(container, name)?;
    write_all(&body, data)?;
    close_body(value, body)
}

fn main() {
    match std::env::var("SCENARIO").as_deref() {
        Ok("full") => full(),
        Ok("list") => list(),
        Ok("write") => write(),
        Ok("read") => read(),
        Ok("ops") => ops(),
        Ok("exists") => exists(),
        Ok("steady") => {
            let name = env_str("CONTAINER", "blobs");
            steady::steady(|| blobstore::container_exists(&name).map(drop));
        }
        Ok("bench-put") => bench(true),
        Ok("bench-get") => bench(false),
        Ok("demo") => demo(),
        Ok("seed") => tenant::seed(),
        Ok("intrude") => tenant::intrude(),
        Ok("intact") => tenant::intact(),
        other => fail(format!("unknown SCENARIO {other:?}")),
    }
}
