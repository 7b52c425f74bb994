//! The workload manifest: what to run, what the host serves in process,
//! what goes over wRPC, and what is served to the outside.
//!
//! Its own crate, without Wasmtime, so the fuzz targets build it quickly;
//! `host-plugin` re-exports it as `host_plugin::manifest`.
#![deny(missing_docs)]

mod entries;
mod http;
mod interface;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::de;
use serde::{Deserialize, Deserializer};

use entries::{component_name, for_component, identity};
pub use entries::{
    Declaration, ExportEntry, HostEntry, ImportChoice, DEFAULT_EXPORT_CONCURRENCY,
    DEFAULT_EXPORT_TIMEOUT,
};
pub use http::{HttpRoute, DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_REQUEST_BYTES};
pub use interface::{InterfaceName, InterfaceNameError};

/// A named set of components plus config, and where their imports come from.
#[derive(Debug, Clone, Deserialize)]
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
    /// Interfaces served in process by the host's plugins.
    #[serde(default)]
    pub host: Vec<HostEntry>,
    /// Interfaces served by extensions over wRPC.
    #[serde(default)]
    pub wrpc: Vec<Declaration>,
    /// Interfaces the components export, served by the host over wRPC.
    #[serde(default)]
    pub exports: Vec<ExportEntry>,
    /// Requests on the host's HTTP listener that it answers.
    #[serde(default)]
    pub http: Option<HttpRoute>,
}

fn default_namespace() -> String {
    "default".into()
}

fn workload_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    identity(d, "`name`")
}

fn namespace<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    identity(d, "`namespace`")
}

/// One component of a workload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// Its name within the workload (sent with every call, so header-safe).
    #[serde(deserialize_with = "component_name")]
    pub name: String,
    /// A `.wasm` file, relative to the manifest.
    pub file: Option<PathBuf>,
    /// An OCI image reference (`registry/repo:tag` or `…@sha256:…`).
    pub image: Option<String>,
    /// Configuration: its environment variables, and what
    /// `wasi:config/store` answers.
    #[serde(default)]
    pub config: BTreeMap<String, Scalar>,
    /// Host directories it may open, by the path it sees (`/data: ./data`),
    /// relative to the manifest.
    #[serde(default)]
    pub dirs: BTreeMap<String, PathBuf>,
    /// Which component serves an import that several components export.
    #[serde(default)]
    pub imports: Vec<ImportChoice>,
    /// Instances kept instantiated ahead of the requests, served calls and
    /// messages they handle, so one pays no instantiation (0: none).
    #[serde(default)]
    pub pool_size: usize,
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
    /// Reads and checks the manifest at `path`; component files and
    /// directories are resolved relative to it.
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
        workload
            .validate()
            .map_err(|reason| ManifestError::Invalid {
                path: path.to_path_buf(),
                reason,
            })?;
        workload.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(workload)
    }

    /// Parses manifest text (paths stay as written).
    ///
    /// # Errors
    ///
    /// The parser's error, with the line and column.
    pub fn parse(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// Makes relative component files, directories and `host:` entries'
    /// paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for entry in &mut self.host {
            entry.base = base.to_path_buf();
        }
        for c in &mut self.components {
            if let Some(file) = &c.file {
                c.file = Some(base.join(file));
            }
            for dir in c.dirs.values_mut() {
                *dir = base.join(&*dir);
            }
        }
    }

    /// Checks what the schema cannot: names unique and known, one source
    /// per component, no interface routed twice to one component.
    ///
    /// # Errors
    ///
    /// What is wrong, in one line.
    pub fn validate(&self) -> Result<(), String> {
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
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "component `{}` needs exactly one of `file` or `image`",
                        c.name
                    ))
                }
            }
        }
        let known = |what: &str, name: &str| {
            if names.contains(name) {
                Ok(())
            } else {
                Err(format!(
                    "{what} names component `{name}`, which is not in `components`"
                ))
            }
        };
        for c in &self.components {
            for choice in &c.imports {
                known(
                    &format!("component `{}`: import `{}`", c.name, choice.interface),
                    &choice.component,
                )?;
                if choice.component == c.name {
                    return Err(format!(
                        "component `{}`: import `{}` names the component itself",
                        c.name, choice.interface
                    ));
                }
            }
        }
        let mut exported = HashSet::new();
        for e in &self.exports {
            if let Some(c) = &e.component {
                known(&format!("export `{}`", e.interface), c)?;
            }
            if !exported.insert((&e.interface, &e.component)) {
                return Err(format!("`{}` is exported twice", e.interface));
            }
        }
        for (i, d) in self.wrpc.iter().enumerate() {
            for c in d.components.iter().flatten() {
                known(&format!("`wrpc:` entry `{}`", d.interface), c)?;
            }
            let twice = self.wrpc[..i].iter().any(|earlier| {
                earlier.interface == d.interface
                    && earlier.label == d.label
                    && self
                        .components
                        .iter()
                        .any(|c| covers_component(earlier, d, &c.name))
            });
            if twice {
                let label = d
                    .label
                    .as_ref()
                    .map(|l| format!(" with label `{l}`"))
                    .unwrap_or_default();
                return Err(format!(
                    "`{}` is declared twice under `wrpc:`{label}",
                    d.interface
                ));
            }
        }
        for h in &self.host {
            for c in h.components.iter().flatten() {
                known(&format!("`host:` entry `{}`", h.interface), c)?;
            }
        }
        if let Some(c) = self.http.as_ref().and_then(|h| h.component.as_ref()) {
            known("`http.component`", c)?;
        }
        Ok(())
    }

    /// Turns off the start-up check of every `wrpc:` target.
    pub fn skip_served_checks(&mut self) {
        for d in &mut self.wrpc {
            d.check = false;
        }
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&ComponentSpec> {
        self.components.iter().find(|c| c.name == name)
    }
}

fn covers_component(a: &Declaration, b: &Declaration, component: &str) -> bool {
    for_component(a.components.as_deref(), component)
        && for_component(b.components.as_deref(), component)
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
