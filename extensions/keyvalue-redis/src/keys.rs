//! How a bucket's keys are laid out in Redis.
//!
//! A key `K` in bucket `B` is stored under
//!
//! ```text
//! <prefix>:<len(B)>:<B>:<K>                       (default)
//! <prefix>:ns:<len(N)>:<N>:<len(B)>:<B>:<K>       (--isolate-namespaces, caller namespace N)
//! ```
//!
//! where `len` is the byte length in decimal. The length makes the split
//! unambiguous whatever bytes a bucket name holds (`a:b`+`c` and `a`+`b:c`
//! differ), so two buckets never see each other's keys, and `list-keys` can
//! `SCAN` with a `MATCH` pattern on the bucket's prefix alone.

/// Maps (namespace, bucket, key) to Redis keys.
#[derive(Clone, Debug)]
pub struct KeyScheme {
    prefix: String,
    isolate_namespaces: bool,
}

/// The namespace used for callers that name none (e.g. over TCP).
pub const DEFAULT_NAMESPACE: &str = "default";

impl KeyScheme {
    pub fn new(prefix: impl Into<String>, isolate_namespaces: bool) -> Self {
        Self {
            prefix: prefix.into(),
            isolate_namespaces,
        }
    }

    /// The prefix shared by every key of `bucket` as seen by a caller in `namespace`.
    pub fn bucket_prefix(&self, namespace: Option<&str>, bucket: &str) -> String {
        let mut out = self.prefix.clone();
        if self.isolate_namespaces {
            let ns = namespace.unwrap_or(DEFAULT_NAMESPACE);
            out.push_str(&format!(":ns:{}:{ns}", ns.len()));
        }
        out.push_str(&format!(":{}:{bucket}:", bucket.len()));
        out
    }

    /// A `SCAN MATCH` pattern matching exactly the keys under `bucket_prefix`.
    pub fn match_pattern(bucket_prefix: &str) -> String {
        let mut pattern = String::with_capacity(bucket_prefix.len() + 1);
        for c in bucket_prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_never_share_a_prefix() {
        let s = KeyScheme::new("kv", false);
        let a = format!("{}c", s.bucket_prefix(None, "a:b"));
        let b = format!("{}b:c", s.bucket_prefix(None, "a"));
        assert_ne!(a, b);
        assert_eq!(s.bucket_prefix(Some("x"), "counter"), "kv:7:counter:");
    }

    #[test]
    fn namespaces_isolate_when_enabled() {
        let s = KeyScheme::new("kv", true);
        assert_eq!(s.bucket_prefix(Some("demo"), "b"), "kv:ns:4:demo:1:b:");
        assert_eq!(s.bucket_prefix(None, "b"), "kv:ns:7:default:1:b:");
    }

    #[test]
    fn match_pattern_escapes_glob_characters() {
        assert_eq!(KeyScheme::match_pattern("kv:3:a*[:"), "kv:3:a\\*\\[:*");
    }
}
