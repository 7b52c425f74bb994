//! Declared interface names and how they match a component's imports.

use core::fmt;
use core::str::FromStr;

/// A declared interface: `ns:pkg` (every interface of the package),
/// `ns:pkg/iface`, either optionally with `@version`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceName {
    /// `ns:pkg`.
    pub package: String,
    /// The interface, or `None` for the whole package.
    pub interface: Option<String>,
    /// The version, or `None` for any.
    pub version: Option<String>,
}

/// A declared interface name that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an interface name (expected ns:pkg, ns:pkg/iface or either with @version)")]
pub struct InterfaceNameError(pub String);

impl FromStr for InterfaceName {
    type Err = InterfaceNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InterfaceNameError(s.to_string());
        let (path, version) = match s.split_once('@') {
            Some((path, version)) if !version.is_empty() => (path, Some(version.to_string())),
            Some(_) => return Err(bad()),
            None => (s, None),
        };
        let (package, interface) = match path.split_once('/') {
            Some((package, iface)) => (package, Some(iface.to_string())),
            None => (path, None),
        };
        let ok_ident = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        match package.split_once(':') {
            Some((ns, pkg)) if ok_ident(ns) && ok_ident(pkg) => {}
            _ => return Err(bad()),
        }
        if interface.as_deref().is_some_and(|i| !ok_ident(i)) {
            return Err(bad());
        }
        Ok(Self {
            package: package.to_string(),
            interface,
            version,
        })
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.package)?;
        if let Some(i) = &self.interface {
            write!(f, "/{i}")?;
        }
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl InterfaceName {
    /// Whether an import named `instance` (`ns:pkg/iface@version`) falls under this declaration.
    pub fn matches(&self, instance: &str) -> bool {
        let (path, version) = match instance.split_once('@') {
            Some((path, version)) => (path, Some(version)),
            None => (instance, None),
        };
        let (package, interface) = match path.split_once('/') {
            Some((package, iface)) => (package, Some(iface)),
            None => (path, None),
        };
        package == self.package
            && self
                .interface
                .as_deref()
                .is_none_or(|i| interface == Some(i))
            && self.version.as_deref().is_none_or(|v| version == Some(v))
    }

    /// Whether some import falls under both names (a package and one of its
    /// interfaces overlap; two versions of one interface do not).
    pub fn overlaps(&self, other: &InterfaceName) -> bool {
        fn agree(a: Option<&str>, b: Option<&str>) -> bool {
            a.is_none() || b.is_none() || a == b
        }
        self.package == other.package
            && agree(self.interface.as_deref(), other.interface.as_deref())
            && agree(self.version.as_deref(), other.version.as_deref())
    }

    /// The import among `imports` that this declaration most likely meant,
    /// written in the declaration's own form (with an interface and a version
    /// only where the declaration has them), when one is close enough.
    pub fn suggest<'a>(&self, imports: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let wanted = self.to_string();
        let mut best: Option<(usize, String)> = None;
        for import in imports {
            let Ok(mut candidate) = import.parse::<InterfaceName>() else {
                continue;
            };
            if self.interface.is_none() {
                candidate.interface = None;
            }
            if self.version.is_none() {
                candidate.version = None;
            }
            let candidate = candidate.to_string();
            let distance = edit_distance(&wanted, &candidate);
            if best.as_ref().is_none_or(|(d, _)| distance < *d) {
                best = Some((distance, candidate));
            }
        }
        let (distance, candidate) = best?;
        (distance > 0 && distance <= (wanted.len() / 3).max(2)).then_some(candidate)
    }
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_import_in_the_declared_form() {
        let imports = [
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:keyvalue/atomics@0.2.0-draft",
            "wasi:cli/environment@0.2.6",
        ];
        let typo: InterfaceName = "wasi:keyvaleu".parse().unwrap();
        assert_eq!(typo.suggest(imports).as_deref(), Some("wasi:keyvalue"));
        let version: InterfaceName = "wasi:keyvalue/store@0.2.0".parse().unwrap();
        assert_eq!(
            version.suggest(imports).as_deref(),
            Some("wasi:keyvalue/store@0.2.0-draft")
        );
        let unrelated: InterfaceName = "acme:billing".parse().unwrap();
        assert_eq!(unrelated.suggest(imports), None);
    }

    #[test]
    fn package_matches_every_interface_and_version() {
        let n: InterfaceName = "wasi:keyvalue".parse().unwrap();
        assert!(n.matches("wasi:keyvalue/store@0.2.0-draft"));
        assert!(n.matches("wasi:keyvalue/atomics@0.2.0-draft2"));
        assert!(!n.matches("wasi:keyvalues/store@0.2.0-draft"));
        let n: InterfaceName = "wasi:keyvalue/store@0.2.0-draft".parse().unwrap();
        assert!(n.matches("wasi:keyvalue/store@0.2.0-draft"));
        assert!(!n.matches("wasi:keyvalue/atomics@0.2.0-draft"));
        assert!(!n.matches("wasi:keyvalue/store@0.2.0-draft2"));
    }

    #[test]
    fn overlapping_names_share_an_import() {
        let name = |s: &str| s.parse::<InterfaceName>().unwrap();
        assert!(name("wasi:keyvalue").overlaps(&name("wasi:keyvalue/store@0.2.0-draft")));
        assert!(name("wasi:keyvalue/store").overlaps(&name("wasi:keyvalue@0.2.0-draft")));
        assert!(!name("wasi:keyvalue/store").overlaps(&name("wasi:keyvalue/atomics")));
        assert!(!name("wasi:keyvalue@0.2.0").overlaps(&name("wasi:keyvalue@0.2.1")));
        assert!(!name("wasi:keyvalue").overlaps(&name("wasi:blobstore")));
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["keyvalue", "wasi:", ":x", "wasi:kv/", "wasi:kv@", "a b:c"] {
            assert!(bad.parse::<InterfaceName>().is_err(), "{bad}");
        }
    }
}
