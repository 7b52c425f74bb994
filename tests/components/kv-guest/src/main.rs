//! A guest command that uses `wasi:keyvalue@0.2.0-draft`. Its component
//! config (environment) picks what it does:
//!
//! - `SCENARIO=full`: every store, atomics and batch call, checking each result;
//! - `SCENARIO=isolated`: checks that the bucket holds none of another bucket's keys;
//! - `SCENARIO=counter`: increments `visits` and prints the count (the demo);
//! - `SCENARIO=expect-error`: one `get` that must fail; prints the error;
//! - `SCENARIO=bench`: times `ITERATIONS` gets and as many in-process host calls,
//!   after `WARMUP` gets (default: `ITERATIONS`, at most 200);
//! - `SCENARIO=throughput`: gets in a loop for `DURATION_MS` after 20 warm-up
//!   gets; prints `bench throughput: calls=… start_unix_ns=… end_unix_ns=…`;
//! - `SCENARIO=big`: stores and reads back a `SIZE`-byte value;
//! - `SCENARIO=seed` / `intrude` / `intact`: one tenant's data, another
//!   tenant trying every operation on it, the first checking it (`tenant`);
//! - `SCENARIO=steady`: `get`s in a loop that never stops on an error, for
//!   the fault-injection suite (`../shared/steady.rs` says how it stops and
//!   what it prints).
//!
//! `BUCKET` names the bucket. Output lines are `key: value`; any failed check
//! prints `FAIL: ...` and exits 1.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/keyvalue",
        world: "imports",
        generate_all,
    });
}

mod tenant;

use std::collections::BTreeSet;
use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bindings::wasi::keyvalue::{atomics, batch, store};

#[path = "../../shared/steady.rs"]
mod steady;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn fail(msg: impl AsRef<str>) -> ! {
    println!("FAIL: {}", msg.as_ref());
    exit(1)
}

fn ok<T>(what: &str, res: Result<T, store::Error>) -> T {
    res.unwrap_or_else(|err| fail(format!("{what}: {}", describe(&err))))
}

fn describe(err: &store::Error) -> String {
    match err {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(msg) => format!("other: {msg}"),
    }
}

fn check(cond: bool, msg: impl AsRef<str>) {
    if !cond {
        fail(msg)
    }
}

fn all_keys(bucket: &store::Bucket) -> (BTreeSet<String>, usize) {
    let mut keys = BTreeSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = ok("list-keys", bucket.list_keys(cursor));
        pages += 1;
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return (keys, pages),
        }
        check(pages < 100_000, "list-keys never ends");
    }
}

fn full(bucket: &store::Bucket) {
    ok("set", bucket.set("greeting", b"hello"));
    check(ok("get", bucket.get("greeting")).as_deref() == Some(b"hello".as_slice()), "get returns what set stored");
    check(ok("exists", bucket.exists("greeting")), "exists after set");
    check(ok("get absent", bucket.get("absent")).is_none(), "absent key reads as none");
    check(!ok("exists absent", bucket.exists("absent")), "absent key does not exist");
    ok("set empty", bucket.set("empty", b""));
    check(ok("get empty", bucket.get("empty")).as_deref() == Some(b"".as_slice()), "empty value round-trips");
    let binary: Vec<u8> = (0..=255u8).collect();
    ok("set binary", bucket.set("binary", &binary));
    check(ok("get binary", bucket.get("binary")) == Some(binary), "binary value round-trips");
    ok("delete", bucket.delete("greeting"));
    check(!ok("exists after delete", bucket.exists("greeting")), "deleted key is gone");
    ok("delete absent", bucket.delete("greeting"));
    println!("store: ok");

    let n: usize = env("KEYS", "1200").parse().unwrap_or(1200);
    let pairs: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("item:{i:05}"), i.to_string().into_bytes())).collect();
    for chunk in pairs.chunks(200) {
        ok("set-many", batch::set_many(bucket, chunk));
    }
    let (keys, pages) = all_keys(bucket);
    let mut expected: BTreeSet<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    expected.extend(["empty".to_string(), "binary".to_string()]);
    check(keys == expected, format!("list-keys returned {} keys, expected {}", keys.len(), expected.len()));
    check(pages > 1, format!("list-keys used {pages} page(s); expected several"));
    println!("list-keys: {} keys in {pages} pages", keys.len());

    let wanted = ["item:00007".to_string(), "missing".to_string(), "item:00042".to_string()];
    let got = ok("get-many", batch::get_many(bucket, &wanted));
    check(got.len() == 3, "get-many returns one entry per key");
    check(got[0] == Some(("item:00007".into(), b"7".to_vec())), "get-many first");
    check(got[1].is_none(), "get-many missing");
    check(got[2] == Some(("item:00042".into(), b"42".to_vec())), "get-many third");
    let doomed: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    for chunk in doomed.chunks(500) {
        ok("delete-many", batch::delete_many(bucket, chunk));
    }
    check(!ok("exists deleted", bucket.exists("item:00007")), "delete-many removed keys");
    println!("batch: ok");

    check(ok("increment", atomics::increment(bucket, "counter", 1)) == 1, "first increment from absent is 1");
    check(ok("increment", atomics::increment(bucket, "counter", 41)) == 42, "increment adds delta");
    check(ok("get counter", bucket.get("counter")).as_deref() == Some(b"42".as_slice()), "counter reads back as text");
    ok("set marker", bucket.set("marker", b"mine"));
    println!("atomics: ok");
}

fn isolated(bucket: &store::Bucket) {
    check(ok("get marker", bucket.get("marker")).is_none(), "another bucket's key is visible");
    check(!ok("exists counter", bucket.exists("counter")), "another bucket's counter is visible");
    let (keys, _) = all_keys(bucket);
    check(keys.is_empty(), format!("bucket starts with {} foreign keys", keys.len()));
    ok("set own", bucket.set("marker", b"theirs"));
    check(ok("get own", bucket.get("marker")).as_deref() == Some(b"theirs".as_slice()), "own key");
    println!("isolated: ok");
}

fn big(bucket: &store::Bucket) {
    let size: usize = env("SIZE", "3145728").parse().unwrap_or(3 << 20);
    let value: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    ok("set big", bucket.set("big", &value));
    let back = ok("get big", bucket.get("big"));
    check(back.as_deref() == Some(value.as_slice()), "big value comes back intact");
    println!("big: ok {size} bytes");
}

fn bench(bucket: &store::Bucket) {
    let iterations: usize = env("ITERATIONS", "2000").parse().unwrap_or(2000);
    ok("set", bucket.set("bench", b"0123456789abcdef"));
    let warmup: usize = env("WARMUP", "").parse().unwrap_or(iterations.min(200));
    for _ in 0..warmup {
        ok("warm-up get", bucket.get("bench"));
    }
    let mut remote = Vec::with_capacity(iterations);
    let mut local = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let v = ok("get", bucket.get("bench"));
        remote.push(start.elapsed().as_nanos());
        check(v.is_some(), "bench key present");
        // A direct in-process host call: wasi:clocks/monotonic-clock.now.
        let start = Instant::now();
        let _ = std::hint::black_box(Instant::now());
        local.push(start.elapsed().as_nanos());
    }
    let line = |name: &str, v: &mut Vec<u128>| {
        v.sort_unstable();
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        println!("bench {name}: n={} median_ns={} p99_ns={}", v.len(), p(0.5), p(0.99));
    };
    line("host-call", &mut local);
    line("get", &mut remote);
}

fn unix_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn throughput(bucket: &store::Bucket) {
    let duration = Duration::from_millis(env("DURATION_MS", "2000").parse().unwrap_or(2000));
    ok("set", bucket.set("bench", b"0123456789abcdef"));
    for _ in 0..20 {
        ok("warm-up get", bucket.get("bench"));
    }
    let start_unix = unix_ns();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < duration {
        check(ok("get", bucket.get("bench")).is_some(), "bench key present");
        calls += 1;
    }
    println!("bench throughput: calls={calls} start_unix_ns={start_unix} end_unix_ns={}", unix_ns());
}

fn main() {
    let bucket_name = env("BUCKET", "default");
    let scenario = env("SCENARIO", "full");
    let bucket = ok("open", store::open(&bucket_name));
    match scenario.as_str() {
        "full" => full(&bucket),
        "isolated" => isolated(&bucket),
        "counter" => {
            let visits = ok("increment", atomics::increment(&bucket, "visits", 1));
            println!("{}: visit number {visits}", env("GREETING", "hello"));
        }
        "expect-error" => match bucket.get("anything") {
            Ok(_) => fail("get succeeded but an error was expected"),
            Err(err) => println!("error: {}", describe(&err)),
        },
        "bench" => bench(&bucket),
        "throughput" => throughput(&bucket),
        "big" => big(&bucket),
        "seed" => tenant::seed(&bucket),
        "intrude" => tenant::intrude(&bucket),
        "intact" => tenant::intact(&bucket),
        "steady" => steady::steady(|| bucket.get("steady").map(drop).map_err(|e| describe(&e))),
        other => fail(format!("unknown SCENARIO `{other}`")),
    }
}
