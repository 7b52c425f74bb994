//! The workload manifest: what to run and what to route.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use wrpc_client_plugin::{Declaration, Endpoint, InterfaceName};

/// A named set of components plus config, and the interfaces routed over wRPC.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The workload's name (sent with every call, so header-safe).
    #[serde(deserialize_with = "workload_name")]
    pub name: String,
    /// Its namespace (sent with every call, so header-safe).
    #[serde(default = "default_namespace", deserialize_with = "namespace")]
    pub namespace: String,
    /// The components, in the order they start.
    pub components: Vec<ComponentSpec>,
    /// Interfaces served by extensions over wRPC.
    #[serde(default)]
    pub wrpc: Vec<WrpcEntry>,
    /// Interfaces the components export, served by the host over wRPC.
    #[serde(default)]
    pub exports: Vec<ExportEntry>,
}

/// The default of an export's `max_concurrency`.
pub const DEFAULT_EXPORT_CONCURRENCY: usize = 64;

/// The default of an export's `timeout`.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// One `exports:` entry: an interface a component exports, served at an
/// address for extensions (or anyone) to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEntry {
    /// The exported interface, e.g. `wasmcloud:messaging/handler@0.2.0`
    /// (without a version: whichever version the component exports).
    pub interface: InterfaceName,
    /// The component that exports it; needed only when several do.
    pub component: Option<String>,
    /// Where to serve it (the URL grammar of targets; port 0 picks one). A
    /// NATS address without a queue group gets the workload's name, so
    /// replicas share the calls.
    pub serve: Endpoint,
    /// Most calls running at once; further ones wait.
    pub max_concurrency: usize,
    /// Longest a call may run (the instance is dropped then).
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExport {
    interface: Parsed<InterfaceName>,
    #[serde(default, deserialize_with = "optional_component")]
    component: Option<String>,
    serve: Parsed<Endpoint>,
    max_concurrency: Option<usize>,
    timeout: Option<Parsed<Bounded>>,
}

fn optional_component<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    component_name(d).map(Some)
}

impl<'de> Deserialize<'de> for ExportEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawExport::deserialize(d)?;
        if raw.interface.0.interface.is_none() {
            return Err(de::Error::custom(format!(
                "`{}` is a package; an export names one interface, e.g. `wasmcloud:messaging/handler@0.2.0`",
                raw.interface.0
            )));
        }
        let max_concurrency = raw.max_concurrency.unwrap_or(DEFAULT_EXPORT_CONCURRENCY);
        if max_concurrency == 0 {
            return Err(de::Error::custom("`max_concurrency` must be at least 1"));
        }
        Ok(Self {
            interface: raw.interface.0,
            component: raw.component,
            serve: raw.serve.0,
            max_concurrency,
            timeout: raw.timeout.map_or(DEFAULT_EXPORT_TIMEOUT, |t| t.0 .0),
        })
    }
}

fn default_namespace() -> String {
    "default".into()
}

/// A string that travels in call headers, checked where it is read so the
/// error carries its line and column.
fn identity<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    transport::caller::validate_identity(field, &s).map_err(de::Error::custom)?;
    Ok(s)
}

fn workload_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    identity(d, "`name`")
}

fn namespace<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    identity(d, "`namespace`")
}

fn component_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    identity(d, "component `name`")
}

/// One component of a workload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// Its name within the workload (sent with every call, so header-safe).
    #[serde(deserialize_with = "component_name")]
    pub name: String,
    /// A `.wasm` file, relative to the manifest.
    pub file: Option<PathBuf>,
    /// An OCI image reference (not supported yet).
    pub image: Option<String>,
    /// Configuration, given to the component as environment variables.
    #[serde(default)]
    pub config: BTreeMap<String, Scalar>,
}

/// A config value: any YAML scalar, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(Self(s)),
            serde_yaml::Value::Number(n) => Ok(Self(n.to_string())),
            serde_yaml::Value::Bool(b) => Ok(Self(b.to_string())),
            other => Err(de::Error::custom(format!(
                "config values must be strings, numbers or booleans, not {other:?}"
            ))),
        }
    }
}

/// One `wrpc:` entry, short (`- wasi:keyvalue`) or long form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrpcEntry(pub Declaration);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongEntry {
    interface: Parsed<InterfaceName>,
    target: Option<Parsed<Endpoint>>,
    timeout: Option<Parsed<Bounded>>,
    idle_timeout: Option<Parsed<Bounded>>,
    /// Ask the target at start whether it serves the interface (default true).
    check: Option<bool>,
}

/// A duration with a unit, greater than zero and at most ten years.
struct Bounded(Duration);

impl FromStr for Bounded {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        transport::parse_duration(s).map(Self)
    }
}

impl<'de> Deserialize<'de> for WrpcEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = WrpcEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an interface name, or a map with `interface`, `target`, `timeout`, `idle_timeout`, `check`",
                )
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<WrpcEntry, E> {
                let interface = s.parse::<InterfaceName>().map_err(E::custom)?;
                Ok(WrpcEntry(Declaration {
                    interface,
                    target: None,
                    timeout: None,
                    idle_timeout: None,
                    check: true,
                }))
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<WrpcEntry, M::Error> {
                let long = LongEntry::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(WrpcEntry(Declaration {
                    interface: long.interface.0,
                    target: long.target.map(|t| t.0),
                    timeout: long.timeout.map(|t| t.0 .0),
                    idle_timeout: long.idle_timeout.map(|t| t.0 .0),
                    check: long.check.unwrap_or(true),
                }))
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

/// Any `FromStr` value read from a YAML string, its error kept with its position.
struct Parsed<T>(T);

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Parsed).map_err(de::Error::custom)
    }
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file cannot be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema; the message has the line and column.
    #[error("{path}: {error}")]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// The parser's error, with its location.
        error: serde_yaml::Error,
    },
    /// The manifest parses but is not a valid workload.
    #[error("{path}: {reason}")]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Workload {
    /// Reads and checks the manifest at `path`; component files are resolved
    /// relative to it.
    ///
    /// # Errors
    ///
    /// A [`ManifestError`] saying what is wrong and where.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|error| ManifestError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let mut workload = Self::parse(&text).map_err(|error| {
            // serde_yaml places a field's error at its mapping's start, and
            // prints no position for the top-level mapping at line 1, column 1:
            // find top-level fields' lines here.
            let line = (error
                .location()
                .is_none_or(|l| l.line() == 1 && l.column() == 1))
            .then(|| {
                let msg = error.to_string();
                ["name", "namespace"]
                    .into_iter()
                    .find(|key| msg.starts_with(&format!("`{key}`")))
                    .and_then(|key| top_level_line(&text, key))
            })
            .flatten();
            match line {
                Some(line) => ManifestError::Invalid {
                    path: path.to_path_buf(),
                    reason: format!("{error} at line {line}"),
                },
                None => ManifestError::Parse {
                    path: path.to_path_buf(),
                    error,
                },
            }
        })?;
        let invalid = |reason: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        workload.validate().map_err(invalid)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for c in &mut workload.components {
            if let Some(file) = &c.file {
                c.file = Some(base.join(file));
            }
        }
        Ok(workload)
    }

    /// Parses manifest text.
    ///
    /// # Errors
    ///
    /// The parser's error, with the line and column.
    pub fn parse(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        if self.components.is_empty() {
            return Err("`components` must list at least one component".into());
        }
        let mut names = HashSet::new();
        for c in &self.components {
            if !names.insert(c.name.as_str()) {
                return Err(format!("component name `{}` is used twice", c.name));
            }
            match (&c.file, &c.image) {
                (Some(_), None) => {}
                (None, Some(image)) => {
                    return Err(format!(
                        "component `{}`: `image: {image}` is not supported yet; use `file:`",
                        c.name
                    ))
                }
                _ => {
                    return Err(format!(
                        "component `{}` needs exactly one of `file` or `image`",
                        c.name
                    ))
                }
            }
        }
        let mut exported = HashSet::new();
        for e in &self.exports {
            if let Some(c) = &e.component {
                if !names.contains(c.as_str()) {
                    return Err(format!(
                        "export `{}` names component `{c}`, which is not in `components`",
                        e.interface
                    ));
                }
            }
            if !exported.insert((&e.interface, &e.component)) {
                return Err(format!("`{}` is exported twice", e.interface));
            }
        }
        let mut declared = HashSet::new();
        for WrpcEntry(d) in &self.wrpc {
            if !declared.insert(&d.interface) {
                return Err(format!("`{}` is declared twice under `wrpc:`", d.interface));
            }
        }
        Ok(())
    }

    /// Turns off the start-up check of every `wrpc:` target.
    pub fn skip_served_checks(&mut self) {
        for entry in &mut self.wrpc {
            entry.0.check = false;
        }
    }

    /// The `wrpc:` declarations.
    pub fn declarations(&self) -> Vec<Declaration> {
        self.wrpc.iter().map(|e| e.0.clone()).collect()
    }
}

/// The line (1-based) of top-level key `key` in YAML `text`.
fn top_level_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: counter
namespace: demo
components:
  - name: api
    file: ./counter.wasm
    config: { greeting: hello, count: 3 }
wrpc:
  - wasi:keyvalue
  - interface: example:echo/echo
    target: tcp://127.0.0.1:7762
    timeout: 5s
"#;

    #[test]
    fn parses_short_and_long_entries() {
        let w = Workload::parse(GOOD).unwrap();
        assert_eq!(w.namespace, "demo");
        assert_eq!(w.components[0].config["count"], Scalar("3".into()));
        let d = w.declarations();
        assert_eq!(d[0].interface.to_string(), "wasi:keyvalue");
        assert_eq!(d[0].target, None);
        assert_eq!(
            d[1].target.as_ref().unwrap().to_string(),
            "tcp://127.0.0.1:7762"
        );
        assert_eq!(d[1].timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let err = Workload::parse("name: x\ncomponents:\n  - name: a\n    file: [\n").unwrap_err();
        assert!(err.location().is_some(), "{err}");
        let bad_target = GOOD.replace("tcp://127.0.0.1:7762", "udp://x:1");
        let err = Workload::parse(&bad_target).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unsupported scheme `udp`") && msg.contains("line 10"),
            "{msg}"
        );
        let bad_iface = GOOD.replace("- wasi:keyvalue", "- keyvalue");
        let msg = Workload::parse(&bad_iface).unwrap_err().to_string();
        assert!(
            msg.contains("`keyvalue` is not an interface name") && msg.contains("line 9"),
            "{msg}"
        );
        let unknown = GOOD.replace("namespace: demo", "namespce: demo");
        let msg = Workload::parse(&unknown).unwrap_err().to_string();
        assert!(msg.contains("unknown field `namespce`"), "{msg}");
    }

    #[test]
    fn header_unsafe_identities_are_refused_with_their_position() {
        let newline = GOOD.replace("name: counter", "name: \"count\\ner\"");
        let msg = Workload::parse(&newline).unwrap_err().to_string();
        assert!(
            msg.contains("`name` contains a newline") && msg.contains("line 2"),
            "{msg}"
        );
        let ns = GOOD.replace("namespace: demo", "namespace: \"a\\rb\"");
        let msg = Workload::parse(&ns).unwrap_err().to_string();
        assert!(
            msg.contains("`namespace` contains a carriage return"),
            "{msg}"
        );
        let comp = GOOD.replace("- name: api", "- name: \"caf\u{e9}\"");
        let msg = Workload::parse(&comp).unwrap_err().to_string();
        assert!(msg.contains("component `name` contains"), "{msg}");
    }

    #[test]
    fn durations_are_bounded_and_named() {
        let huge = GOOD.replace("timeout: 5s", "timeout: 18446744073709551615s");
        let msg = Workload::parse(&huge).unwrap_err().to_string();
        assert!(
            (msg.contains("maximum") || msg.contains("too long")) && msg.contains("line 10"),
            "{msg}"
        );
        let fast = GOOD.replace("timeout: 5s", "timeout: fast");
        let msg = Workload::parse(&fast).unwrap_err().to_string();
        assert!(msg.contains("`fast` is not a duration"), "{msg}");
        let zero = GOOD.replace("timeout: 5s", "timeout: 0s");
        assert!(Workload::parse(&zero)
            .unwrap_err()
            .to_string()
            .contains("greater than zero"));
        let idle = GOOD.replace("timeout: 5s", "timeout: 5s\n    idle_timeout: 2m");
        let w = Workload::parse(&idle).unwrap();
        assert_eq!(
            w.declarations()[1].idle_timeout,
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn targets_keep_credentials_but_never_show_them() {
        let creds = GOOD.replace(
            "tcp://127.0.0.1:7762",
            "nats://user:s3cret@127.0.0.1:4222/p",
        );
        let w = Workload::parse(&creds).unwrap();
        let target = w.declarations()[1].target.clone().unwrap();
        assert_eq!(target.to_string(), "nats://user:***@127.0.0.1:4222/p");
        assert!(!format!("{w:?}").contains("s3cret"));
    }

    const EXPORTS: &str = r#"
exports:
  - interface: wasmcloud:messaging/handler@0.2.0
    serve: nats://127.0.0.1:4222/handlers
    max_concurrency: 4
    timeout: 2s
  - interface: example:echo/echo
    component: api
    serve: tcp://127.0.0.1:0
"#;

    #[test]
    fn exports_parse_with_defaults() {
        let w = Workload::parse(&format!("{GOOD}{EXPORTS}")).unwrap();
        w.validate().unwrap();
        assert_eq!(w.exports.len(), 2);
        assert_eq!(w.exports[0].max_concurrency, 4);
        assert_eq!(w.exports[0].timeout, Duration::from_secs(2));
        assert_eq!(w.exports[0].component, None);
        assert_eq!(w.exports[1].component.as_deref(), Some("api"));
        assert_eq!(w.exports[1].max_concurrency, DEFAULT_EXPORT_CONCURRENCY);
        assert_eq!(w.exports[1].timeout, DEFAULT_EXPORT_TIMEOUT);
        assert_eq!(w.exports[1].serve.to_string(), "tcp://127.0.0.1:0");
    }

    #[test]
    fn bad_exports_are_named() {
        let text = format!("{GOOD}{EXPORTS}");
        let zero = text.replace("max_concurrency: 4", "max_concurrency: 0");
        let msg = Workload::parse(&zero).unwrap_err().to_string();
        assert!(
            msg.contains("`max_concurrency` must be at least 1"),
            "{msg}"
        );
        let package = text.replace("example:echo/echo", "example:echo");
        let msg = Workload::parse(&package).unwrap_err().to_string();
        assert!(msg.contains("`example:echo` is a package"), "{msg}");
        let udp = text.replace("tcp://127.0.0.1:0", "udp://127.0.0.1:0");
        let msg = Workload::parse(&udp).unwrap_err().to_string();
        assert!(msg.contains("unsupported scheme `udp`"), "{msg}");
        let missing = text.replace("component: api", "component: apx");
        let w = Workload::parse(&missing).unwrap();
        let msg = w.validate().unwrap_err();
        assert!(msg.contains("names component `apx`"), "{msg}");
        let unknown = text.replace("timeout: 2s", "timeuot: 2s");
        let msg = Workload::parse(&unknown).unwrap_err().to_string();
        assert!(msg.contains("unknown field `timeuot`"), "{msg}");
    }

    #[test]
    fn validation_names_the_problem() {
        let w = Workload::parse(&GOOD.replace("file: ./counter.wasm", "image: r/x:1")).unwrap();
        assert!(w.validate().unwrap_err().contains("not supported yet"));
        let twice = format!("{GOOD}  - wasi:keyvalue\n");
        let w = Workload::parse(&twice).unwrap();
        assert!(w.validate().unwrap_err().contains("declared twice"));
    }
}
