//! Two tenants sharing bucket names: `seed` stores the victim's data,
//! `intrude` (run as another tenant) tries every store, atomics and batch
//! operation on it, `intact` (run as the victim again) checks nothing changed.

use std::collections::BTreeSet;

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::{all_keys, check, ok};

/// The victim's keys and values.
const DATA: [(&str, &[u8]); 3] = [("marker", b"victim"), ("k1", b"v1"), ("k2", b"v2")];

fn names(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_string()).collect()
}

/// `SCENARIO=seed`: the victim's keys and a counter at 7.
pub fn seed(bucket: &store::Bucket) {
    ok("set marker", bucket.set(DATA[0].0, DATA[0].1));
    let pairs: Vec<(String, Vec<u8>)> = DATA[1..].iter().map(|(k, v)| ((*k).to_string(), v.to_vec())).collect();
    ok("set-many", batch::set_many(bucket, &pairs));
    check(ok("increment", atomics::increment(bucket, "counter", 7)) == 7, "the seed's counter starts at 7");
    println!("seed: ok");
}

/// `SCENARIO=intrude`: every operation on the victim's keys; none may
/// read or touch them.
pub fn intrude(bucket: &store::Bucket) {
    for (key, _) in DATA {
        check(ok("get", bucket.get(key)).is_none(), format!("get read another tenant's `{key}`"));
        check(!ok("exists", bucket.exists(key)), format!("exists saw another tenant's `{key}`"));
    }
    check(ok("get counter", bucket.get("counter")).is_none(), "get read another tenant's counter");
    let (keys, _) = all_keys(bucket);
    check(keys.is_empty(), format!("list-keys listed another tenant's keys: {keys:?}"));
    let got = ok("get-many", batch::get_many(bucket, &names(&["marker", "k1", "k2", "counter"])));
    check(got.iter().all(Option::is_none), "get-many read another tenant's keys");
    check(
        ok("increment", atomics::increment(bucket, "counter", 1)) == 1,
        "increment continued another tenant's counter",
    );
    // Writes that would damage the victim's data if they reached it.
    ok("set", bucket.set("marker", b"intruder"));
    ok("set-many", batch::set_many(bucket, &[("k1".to_string(), b"intruder".to_vec())]));
    ok("delete", bucket.delete("k2"));
    ok("delete-many", batch::delete_many(bucket, &names(&["k1", "marker"])));
    ok("delete counter", bucket.delete("counter"));
    println!("intrude: ok");
}

/// `SCENARIO=intact`: the victim's data as `seed` left it.
pub fn intact(bucket: &store::Bucket) {
    for (key, value) in DATA {
        check(ok("get", bucket.get(key)).as_deref() == Some(value), format!("`{key}` was changed"));
    }
    check(ok("get counter", bucket.get("counter")).as_deref() == Some(b"7".as_slice()), "the counter was changed");
    let (keys, _) = all_keys(bucket);
    let expected: BTreeSet<String> = ["marker", "k1", "k2", "counter"].iter().map(|k| (*k).to_string()).collect();
    check(keys == expected, format!("list-keys gives {keys:?}"));
    println!("intact: ok");
}
