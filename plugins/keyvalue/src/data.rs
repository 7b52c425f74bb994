//! The key-value data of one store, its bounds, and the semantics the
//! `keyvalue-redis` extension has, so that a component behaves the same
//! served in process or over wRPC: any bucket name opens (a bucket is only
//! a prefix), counters are decimal text, and `list-keys` cursors see every
//! key present for the whole listing exactly once.

use std::collections::{BTreeMap, HashMap};

/// Most keys one `list-keys` page returns.
pub(crate) const PAGE_KEYS: usize = 500;

/// The bounds a store's writes are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest value, in bytes.
    pub max_value_bytes: u64,
    /// Most bytes of keys and values in every bucket together.
    pub max_total_bytes: u64,
    /// Most keys in every bucket together.
    pub max_keys: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_value_bytes: 1 << 20,
            max_total_bytes: 64 << 20,
            max_keys: 100_000,
        }
    }
}

/// One bucket: its values, and the order keys were added in (what
/// `list-keys` cursors count in).
#[derive(Debug, Default)]
struct Bucket {
    /// Each key's value and its position in `order`.
    values: HashMap<String, (u64, Vec<u8>)>,
    order: BTreeMap<u64, String>,
    next: u64,
}

/// Every bucket of a store.
#[derive(Debug, Default)]
pub struct Data {
    buckets: HashMap<String, Bucket>,
    /// Bytes of every key and value.
    total: u64,
    keys: u64,
    /// Bumped by every change (what is saved is compared against it).
    pub(crate) version: u64,
}

/// Bytes a key and its value take.
fn cost(key: &str, value: usize) -> u64 {
    (key.len() + value) as u64
}

impl Data {
    /// The value of `key` in `bucket`.
    pub fn get(&self, bucket: &str, key: &str) -> Option<&[u8]> {
        self.buckets
            .get(bucket)
            .and_then(|b| b.values.get(key))
            .map(|(_, v)| v.as_slice())
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    ///
    /// A bound it would cross, named.
    pub fn set(
        &mut self,
        limits: &Limits,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), String> {
        self.check(limits, bucket, [(key, value.len())])?;
        self.put(bucket, key.to_string(), value);
        Ok(())
    }

    /// Stores every pair, or none when one of them would cross a bound.
    ///
    /// # Errors
    ///
    /// The first bound the batch would cross, named.
    pub fn set_many(
        &mut self,
        limits: &Limits,
        bucket: &str,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        // A key given twice counts once, with its last value.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (k, v) in &pairs {
            last.insert(k, v.len());
        }
        self.check(limits, bucket, last)?;
        for (k, v) in pairs {
            self.put(bucket, k, v);
        }
        Ok(())
    }

    /// Whether writing values of these sizes under these keys of `bucket`
    /// keeps the store within `limits`. Only growth is refused: a store
    /// over a bound (loaded under a lower one) may still shrink.
    fn check<'k>(
        &self,
        limits: &Limits,
        bucket: &str,
        writes: impl IntoIterator<Item = (&'k str, usize)>,
    ) -> Result<(), String> {
        let (mut total, mut keys) = (self.total, self.keys);
        let mut first_new = None;
        for (key, len) in writes {
            if len as u64 > limits.max_value_bytes {
                return Err(format!(
                    "the value of key `{key}` has {len} bytes, over max_value_bytes ({})",
                    limits.max_value_bytes
                ));
            }
            match self.get(bucket, key) {
                Some(old) => total = total - cost(key, old.len()) + cost(key, len),
                None => {
                    total += cost(key, len);
                    keys += 1;
                    first_new.get_or_insert(key);
                }
            }
        }
        if total > self.total && total > limits.max_total_bytes {
            return Err(format!(
                "writing to bucket `{bucket}` would make {total} bytes of keys and values, over max_total_bytes ({})",
                limits.max_total_bytes
            ));
        }
        if keys > self.keys && keys > limits.max_keys {
            return Err(format!(
                "key `{}` would make {keys} keys, over max_keys ({})",
                first_new.unwrap_or_default(),
                limits.max_keys
            ));
        }
        Ok(())
    }

    /// Stores a value already checked.
    pub(crate) fn put(&mut self, bucket: &str, key: String, value: Vec<u8>) {
        let b = self.buckets.entry(bucket.to_string()).or_default();
        let added = cost(&key, value.len());
        match b.values.get_mut(&key) {
            Some((_, old)) => {
                self.total = self.total - cost(&key, old.len()) + added;
                *old = value;
            }
            None => {
                let at = b.next;
                b.next += 1;
                b.order.insert(at, key.clone());
                b.values.insert(key, (at, value));
                self.total += added;
                self.keys += 1;
            }
        }
        self.version += 1;
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&mut self, bucket: &str, key: &str) -> bool {
        let Some(b) = self.buckets.get_mut(bucket) else {
            return false;
        };
        let Some((at, value)) = b.values.remove(key) else {
            return false;
        };
        b.order.remove(&at);
        self.total -= cost(key, value.len());
        self.keys -= 1;
        if b.values.is_empty() {
            self.buckets.remove(bucket);
        }
        self.version += 1;
        true
    }

    /// One page of `bucket`'s keys from `cursor`, and the next page's
    /// cursor (`None` after the last page). A key present for the whole
    /// listing is returned exactly once; keys added meanwhile may be too.
    pub fn list(&self, bucket: &str, cursor: Option<u64>) -> (Vec<String>, Option<u64>) {
        let Some(b) = self.buckets.get(bucket) else {
            return (Vec::new(), None);
        };
        let mut page = b.order.range(cursor.unwrap_or(0)..);
        let keys: Vec<(u64, String)> = page
            .by_ref()
            .take(PAGE_KEYS)
            .map(|(at, k)| (*at, k.clone()))
            .collect();
        let next = match (page.next(), keys.last()) {
            (Some(_), Some((at, _))) => Some(at + 1),
            _ => None,
        };
        (keys.into_iter().map(|(_, k)| k).collect(), next)
    }

    /// Adds `delta` to the counter under `key` (absent counts as 0), as
    /// Redis's `INCRBY` does: the value must be a decimal integer, the sum
    /// must fit an `i64`, and it is stored as decimal text. A sum below 0 is
    /// stored but refused as a `u64` result.
    ///
    /// # Errors
    ///
    /// The value is not an integer, the sum overflows, a bound is crossed,
    /// or the sum is negative.
    pub fn increment(
        &mut self,
        limits: &Limits,
        bucket: &str,
        key: &str,
        delta: u64,
    ) -> Result<u64, String> {
        let Ok(delta) = i64::try_from(delta) else {
            return Err(format!(
                "increment delta {delta} is larger than a counter can add ({})",
                i64::MAX
            ));
        };
        let current = match self.get(bucket, key) {
            None => 0,
            Some(value) => parse_counter(value).ok_or_else(|| {
                format!("the value of key `{key}` is not an integer, so it cannot be incremented")
            })?,
        };
        let sum = current.checked_add(delta).ok_or_else(|| {
            format!("incrementing key `{key}` ({current}) by {delta} would overflow")
        })?;
        let text = sum.to_string().into_bytes();
        self.check(limits, bucket, [(key, text.len())])?;
        self.put(bucket, key.to_string(), text);
        u64::try_from(sum).map_err(|_| format!("counter holds {sum}, which is not a u64"))
    }

    /// Every entry, bucket by bucket, each in the order it was added.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &str, &[u8])> {
        self.buckets.iter().flat_map(|(name, b)| {
            b.order.values().map(move |k| {
                let value = b.values.get(k).map_or(&[][..], |(_, v)| v.as_slice());
                (name.as_str(), k.as_str(), value)
            })
        })
    }

    /// How many keys, and how many bytes of keys and values.
    pub fn usage(&self) -> (u64, u64) {
        (self.keys, self.total)
    }
}

/// A decimal `i64` as Redis reads one: an optional `-`, digits, no leading
/// zero, no sign on zero, nothing else.
fn parse_counter(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_value_bytes: 8,
            max_total_bytes: 20,
            max_keys: 3,
        }
    }

    #[test]
    fn each_bound_is_refused_by_name_and_nothing_is_written() {
        let mut d = Data::default();
        let err = d.set(&small(), "b", "k", vec![0; 9]).unwrap_err();
        assert!(err.contains("max_value_bytes (8)"), "{err}");
        d.set(&small(), "b", "k1", vec![0; 8]).unwrap();
        let err = d.set(&small(), "c", "k22", vec![0; 8]).unwrap_err();
        assert!(err.contains("over max_total_bytes (20)"), "{err}");
        d.set(&small(), "b", "a", vec![]).unwrap();
        d.set(&small(), "b", "c", vec![]).unwrap();
        let err = d.set(&small(), "b", "d", vec![]).unwrap_err();
        assert!(
            err.contains("key `d` would make 4 keys, over max_keys (3)"),
            "{err}"
        );
        let batch = vec![("x".into(), vec![]), ("y".into(), vec![0; 9])];
        assert!(d.set_many(&small(), "b", batch).is_err());
        assert_eq!(d.get("b", "x"), None, "a refused batch writes nothing");
        assert_eq!(d.usage(), (3, 12));
        // Replacing a value by a smaller one is always allowed.
        d.set(&small(), "b", "k1", vec![1]).unwrap();
        assert_eq!(d.usage(), (3, 5));
    }

    #[test]
    fn buckets_are_apart_and_deletes_free_their_bytes() {
        let mut d = Data::default();
        let l = Limits::default();
        d.set(&l, "a", "k", b"one".to_vec()).unwrap();
        d.set(&l, "b", "k", b"two".to_vec()).unwrap();
        assert_eq!(d.get("a", "k"), Some(&b"one"[..]));
        assert!(d.delete("a", "k"));
        assert!(!d.delete("a", "k"), "deleting an absent key is no change");
        assert_eq!(d.get("b", "k"), Some(&b"two"[..]));
        assert_eq!(d.usage(), (1, 4));
    }

    #[test]
    fn listing_sees_every_key_once_across_changes() {
        let mut d = Data::default();
        let l = Limits::default();
        let n = PAGE_KEYS * 2 + 7;
        for i in 0..n {
            d.set(&l, "b", &format!("k{i}"), vec![]).unwrap();
        }
        let (first, cursor) = d.list("b", None);
        assert_eq!(first.len(), PAGE_KEYS);
        // Deleting listed keys and rewriting unlisted ones moves nothing.
        d.delete("b", "k0");
        d.set(&l, "b", &format!("k{}", n - 1), b"new".to_vec())
            .unwrap();
        let mut seen = first;
        let mut cursor = cursor;
        while let Some(at) = cursor {
            let (keys, next) = d.list("b", Some(at));
            seen.extend(keys);
            cursor = next;
        }
        let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!((seen.len(), distinct.len()), (n, n));
        assert_eq!(d.list("none", None), (Vec::new(), None));
    }

    #[test]
    fn counters_follow_incrby() {
        let mut d = Data::default();
        let l = Limits::default();
        assert_eq!(d.increment(&l, "b", "n", 1), Ok(1));
        assert_eq!(d.increment(&l, "b", "n", 41), Ok(42));
        assert_eq!(d.get("b", "n"), Some(&b"42"[..]));
        for bad in [&b"x"[..], b"", b"01", b"-0", b"+1", b" 1", b"1.5"] {
            d.set(&l, "b", "v", bad.to_vec()).unwrap();
            let err = d.increment(&l, "b", "v", 1).unwrap_err();
            assert!(err.contains("is not an integer"), "{bad:?}: {err}");
        }
        d.set(&l, "b", "v", b"-5".to_vec()).unwrap();
        let err = d.increment(&l, "b", "v", 1).unwrap_err();
        assert!(err.contains("counter holds -4"), "{err}");
        assert_eq!(d.get("b", "v"), Some(&b"-4"[..]), "stored, as Redis does");
        d.set(&l, "b", "v", i64::MAX.to_string().into_bytes())
            .unwrap();
        assert!(d
            .increment(&l, "b", "v", 1)
            .unwrap_err()
            .contains("overflow"));
        assert!(d
            .increment(&l, "b", "w", u64::MAX)
            .unwrap_err()
            .contains("larger than a counter can add"));
    }
}
