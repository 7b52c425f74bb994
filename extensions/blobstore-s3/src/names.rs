//! Which bucket a container is, as a caller names it.
//!
//! - An alias (`--alias NAME=BUCKET`) is that bucket, for every namespace.
//! - Otherwise the container is the bucket of the same name, or, with
//!   `--isolate-namespaces`, the bucket `<len(N)>-N-C` for container `C` of
//!   namespace `N` (`default` when the caller names none). The length makes
//!   the split unambiguous: `4-demo-photos` is container `photos` of
//!   namespace `demo`, whatever hyphens either holds.
//!
//! S3 restricts bucket names (3 to 63 characters, lowercase letters, digits,
//! `-` and `.`), so a container whose bucket name would break the rules is
//! refused with the rule it breaks; an alias maps any name to a valid bucket.

use std::collections::BTreeMap;

/// The namespace of callers that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Maps container names to buckets and back.
#[derive(Clone, Debug)]
pub struct Buckets {
    aliases: BTreeMap<String, String>,
    isolate_namespaces: bool,
}

impl Buckets {
    pub fn new(
        aliases: impl IntoIterator<Item = (String, String)>,
        isolate_namespaces: bool,
    ) -> Self {
        Self {
            aliases: aliases.into_iter().collect(),
            isolate_namespaces,
        }
    }

    /// The bucket of `container` for a caller in `namespace`.
    pub fn bucket(&self, namespace: Option<&str>, container: &str) -> Result<String, String> {
        if let Some(bucket) = self.aliases.get(container) {
            return Ok(bucket.clone());
        }
        let bucket = if self.isolate_namespaces {
            let ns = namespace.unwrap_or(DEFAULT_NAMESPACE);
            format!("{}-{ns}-{container}", ns.len())
        } else {
            container.to_string()
        };
        check_bucket(&bucket).map_err(|why| {
            format!(
                "container `{container}` cannot be an S3 bucket (`{bucket}`): {why}; map it to a bucket with --alias {container}=BUCKET"
            )
        })?;
        Ok(bucket)
    }

    /// The container a caller in `namespace` knows `bucket` as, if any.
    pub fn container(&self, namespace: Option<&str>, bucket: &str) -> Option<String> {
        if let Some((alias, _)) = self.aliases.iter().find(|(_, b)| *b == bucket) {
            return Some(alias.clone());
        }
        if !self.isolate_namespaces {
            return Some(bucket.to_string());
        }
        let ns = namespace.unwrap_or(DEFAULT_NAMESPACE);
        bucket
            .strip_prefix(&format!("{}-{ns}-", ns.len()))
            .map(str::to_string)
    }
}

/// Why `name` is not a valid S3 bucket name, if it is not.
pub fn check_bucket(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err(format!("{} characters, not 3 to 63", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "`{c}` is not allowed (lowercase letters, digits, `-` and `.` only)"
        ));
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("it must begin and end with a letter or digit".into());
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err("`..`, `.-` and `-.` are not allowed".into());
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("it must not look like an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!("the prefix `{prefix}` is reserved"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", "--x-s3", "--table-s3", ".mrap"] {
        if name.ends_with(suffix) {
            return Err(format!("the suffix `{suffix}` is reserved"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_buckets_unless_isolated_or_aliased() {
        let b = Buckets::new([("Photos".to_string(), "team-photos".to_string())], false);
        assert_eq!(b.bucket(Some("demo"), "docs").unwrap(), "docs");
        assert_eq!(b.bucket(None, "Photos").unwrap(), "team-photos");
        let err = b.bucket(None, "my_docs").unwrap_err();
        assert!(
            err.contains("`_` is not allowed") && err.contains("--alias my_docs=BUCKET"),
            "{err}"
        );
        assert_eq!(b.container(Some("x"), "team-photos").unwrap(), "Photos");
        assert_eq!(b.container(Some("x"), "docs").unwrap(), "docs");
    }

    #[test]
    fn namespaces_never_share_a_bucket() {
        let b = Buckets::new([], true);
        assert_eq!(b.bucket(Some("demo"), "photos").unwrap(), "4-demo-photos");
        assert_eq!(b.bucket(None, "photos").unwrap(), "7-default-photos");
        // `a-b` + `c` and `a` + `b-c` differ.
        assert_ne!(
            b.bucket(Some("a-b"), "c1").unwrap(),
            b.bucket(Some("a"), "b-c1").unwrap()
        );
        assert_eq!(
            b.container(Some("demo"), "4-demo-photos").unwrap(),
            "photos"
        );
        assert_eq!(b.container(Some("other"), "4-demo-photos"), None);
        assert!(b.bucket(Some("demo"), &"x".repeat(60)).is_err());
    }

    #[test]
    fn bucket_rules() {
        for ok in ["abc", "my-bucket.v2", "1-a-b"] {
            assert_eq!(check_bucket(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.2",
            "xn--abc",
            "abc-s3alias",
            "a_b",
        ] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }
}
