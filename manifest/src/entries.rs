//! The entries of a manifest's lists: `wrpc:` routes, `exports:` served,
//! `host:` imports served in process, and a component's `imports:` choices.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use transport::Endpoint;

use crate::InterfaceName;

/// The default of an export's `max_concurrency`.
pub const DEFAULT_EXPORT_CONCURRENCY: usize = 64;

/// The default of an export's `timeout`.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// One `wrpc:` entry: an interface (or package) the components import,
/// routed to an extension. Short form `- wasi:keyvalue`, or a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The interface or package routed.
    pub interface: InterfaceName,
    /// Where to; `None` for the host's default.
    pub target: Option<Endpoint>,
    /// Deadline of each call's synchronous part; `None` for the host's default.
    pub timeout: Option<Duration>,
    /// Longest pause of a streamed value; `None` for the host's default.
    pub idle_timeout: Option<Duration>,
    /// Whether the target is asked at start what it serves (turn it off for
    /// targets that are not sdk extensions).
    pub check: bool,
    /// The components whose imports it routes; `None` for all of them.
    pub components: Option<Vec<String>>,
    /// Only the imports with this label (`import primary: ns:pkg/iface;`,
    /// WASI 0.3's `[implements=<..>]` names); `None` for the unlabelled
    /// import and every labelled one.
    pub label: Option<String>,
}

impl Declaration {
    /// A declaration of `interface` for every component, to the default target.
    pub fn new(interface: InterfaceName) -> Self {
        Self {
            interface,
            target: None,
            timeout: None,
            idle_timeout: None,
            check: true,
            components: None,
            label: None,
        }
    }

    /// Whether it routes imports of `component`.
    pub fn covers_component(&self, component: &str) -> bool {
        for_component(self.components.as_deref(), component)
    }

    /// Whether it routes the import `instance` of `component`.
    pub fn covers(&self, component: &str, instance: &str) -> bool {
        self.label.is_none()
            && self.interface.matches(instance)
            && for_component(self.components.as_deref(), component)
    }
}

/// Whether a `components:` list (`None`: every component) names `component`.
pub(crate) fn for_component(components: Option<&[String]>, component: &str) -> bool {
    components.is_none_or(|names| names.iter().any(|n| n == component))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongDeclaration {
    interface: Parsed<InterfaceName>,
    target: Option<Parsed<Endpoint>>,
    timeout: Option<Parsed<Bounded>>,
    idle_timeout: Option<Parsed<Bounded>>,
    check: Option<bool>,
    components: Option<Vec<ComponentName>>,
    label: Option<ComponentName>,
}

impl<'de> Deserialize<'de> for Declaration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        short_or_long(
            d,
            "an interface name, or a map with `interface`, `target`, `timeout`, `idle_timeout`, `check`, `components`, `label`",
            Declaration::new,
            |long: LongDeclaration| {
                Ok(Declaration {
                    interface: long.interface.0,
                    target: long.target.map(|t| t.0),
                    timeout: long.timeout.map(|t| t.0 .0),
                    idle_timeout: long.idle_timeout.map(|t| t.0 .0),
                    check: long.check.unwrap_or(true),
                    components: names(long.components),
                    label: long.label.map(|l| l.0),
                })
            },
        )
    }
}

/// One `host:` entry: an interface the components import, served in
/// process by the host plugin that serves it. Short form `- wasi:logging`,
/// or a map whose other keys are that plugin's options.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEntry {
    /// The interface or package served.
    pub interface: InterfaceName,
    /// The components whose imports it serves; `None` for all of them.
    pub components: Option<Vec<String>>,
    /// The plugin that serves it, when several could (by id).
    pub plugin: Option<String>,
    /// The plugin's options (`path`, `dir`, `max_bytes`, …), checked by it.
    pub options: BTreeMap<String, serde_yaml::Value>,
    /// The directory relative paths in the options are resolved against:
    /// the manifest's, once loaded (empty, the working directory, before).
    pub base: PathBuf,
}

impl HostEntry {
    /// A path given in an option, as the host resolves it: relative to the
    /// manifest's directory, like component files and `dirs:`.
    #[must_use]
    pub fn resolve(&self, written: &str) -> PathBuf {
        self.base.join(written)
    }

    /// Refuses any option: for plugins that take none.
    ///
    /// # Errors
    ///
    /// The options found, named.
    pub fn no_options(&self) -> Result<(), String> {
        if self.options.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = self.options.keys().map(String::as_str).collect();
        Err(format!(
            "unknown option `{}` (this plugin takes none)",
            keys.join("`, `")
        ))
    }

    /// Whether it serves the import `instance` of `component`.
    pub fn covers(&self, component: &str, instance: &str) -> bool {
        self.interface.matches(instance) && for_component(self.components.as_deref(), component)
    }
}

impl<'de> Deserialize<'de> for HostEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        short_or_long(
            d,
            "an interface name, or a map with `interface`, `components`, `plugin` and the plugin's options",
            |interface| HostEntry {
                interface,
                components: None,
                plugin: None,
                options: BTreeMap::new(),
                base: PathBuf::new(),
            },
            |mut map: BTreeMap<String, serde_yaml::Value>| {
                let interface = match map.remove("interface") {
                    Some(serde_yaml::Value::String(s)) => s.parse().map_err(de::Error::custom)?,
                    Some(_) => return Err(de::Error::custom("`interface` must be a string")),
                    None => return Err(de::Error::missing_field("interface")),
                };
                let components = match map.remove("components") {
                    Some(value) => {
                        let list: Vec<ComponentName> =
                            serde_yaml::from_value(value).map_err(de::Error::custom)?;
                        names(Some(list))
                    }
                    None => None,
                };
                let plugin = match map.remove("plugin") {
                    Some(serde_yaml::Value::String(s)) => Some(s),
                    Some(_) => return Err(de::Error::custom("`plugin` must be a plugin's id")),
                    None => None,
                };
                Ok(HostEntry {
                    interface,
                    components,
                    plugin,
                    options: map,
                    base: PathBuf::new(),
                })
            },
        )
    }
}

/// One entry of a component's `imports:`: which component of the workload
/// serves an import that several export.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportChoice {
    /// The imported interface or package.
    #[serde(deserialize_with = "parsed")]
    pub interface: InterfaceName,
    /// The component whose export serves it.
    #[serde(deserialize_with = "component_name")]
    pub component: String,
}

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
    component: Option<ComponentName>,
    serve: Parsed<Endpoint>,
    max_concurrency: Option<usize>,
    timeout: Option<Parsed<Bounded>>,
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
            component: raw.component.map(|c| c.0),
            serve: raw.serve.0,
            max_concurrency,
            timeout: raw.timeout.map_or(DEFAULT_EXPORT_TIMEOUT, |t| t.0 .0),
        })
    }
}

/// An entry written as a bare interface name or as a map.
fn short_or_long<'de, D, T, L>(
    d: D,
    expecting: &'static str,
    short: impl FnOnce(InterfaceName) -> T,
    long: impl FnOnce(L) -> Result<T, de::value::Error>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    L: Deserialize<'de>,
{
    struct EntryVisitor<S, F, L> {
        expecting: &'static str,
        short: S,
        long: F,
        marker: core::marker::PhantomData<L>,
    }
    impl<'de, T, L, S, F> Visitor<'de> for EntryVisitor<S, F, L>
    where
        L: Deserialize<'de>,
        S: FnOnce(InterfaceName) -> T,
        F: FnOnce(L) -> Result<T, de::value::Error>,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map(self.short).map_err(E::custom)
        }

        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
            let long = L::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.long)(long).map_err(de::Error::custom)
        }
    }
    d.deserialize_any(EntryVisitor {
        expecting,
        short,
        long,
        marker: core::marker::PhantomData,
    })
}

/// A duration with a unit, greater than zero and at most ten years.
pub(crate) struct Bounded(pub(crate) Duration);

impl FromStr for Bounded {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        transport::parse_duration(s).map(Self)
    }
}

/// Any `FromStr` value read from a YAML string, its error kept with its position.
pub(crate) struct Parsed<T>(pub(crate) T);

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

fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Parsed::<T>::deserialize(d).map(|p| p.0)
}

/// A string that travels in call headers, checked where it is read so the
/// error carries its line and column.
pub(crate) fn identity<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    transport::caller::validate_identity(field, &s).map_err(de::Error::custom)?;
    Ok(s)
}

pub(crate) fn component_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    identity(d, "component `name`")
}

/// A component's name in a list.
struct ComponentName(String);

impl<'de> Deserialize<'de> for ComponentName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        component_name(d).map(Self)
    }
}

fn names(list: Option<Vec<ComponentName>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().map(|c| c.0).collect())
}
