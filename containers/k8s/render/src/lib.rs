//! Renders the pod manifests of `containers/k8s/` from one source.
//!
//! `source.yaml` is a multi-document Kubernetes YAML whose pod specs may
//! carry a key Kubernetes does not know, `x-sidecars:`, a list of ordinary
//! container specs. [`render`] turns it into a manifest Kubernetes accepts,
//! in one of two [`Form`]s that differ only in where those containers sit.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize as _;
use serde_yaml::{Mapping, Value};

pub mod podman;

/// The pod-spec key listing the containers to render as sidecars.
pub const SIDECARS_KEY: &str = "x-sidecars";

/// The first line of every rendered file.
pub const HEADER: &str =
    "# Generated from containers/k8s/source.yaml by `cargo run -p k8s-render`: do not edit.\n";

/// Where the `x-sidecars` containers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Native sidecars (Kubernetes ≥ 1.29): appended to `initContainers`
    /// (after any already there) with `restartPolicy: Always`.
    Native,
    /// Ordinary containers, appended to `containers` after the app's.
    Classic,
}

impl Form {
    /// Both forms, in the order they are written.
    pub const ALL: [Self; 2] = [Self::Native, Self::Classic];

    /// The folder of this form's render, under `containers/k8s/`. Each form
    /// has its own folder: `podman kube play` builds an image itself when a
    /// folder named like an image sits next to the YAML.
    pub fn dir(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Classic => "classic",
        }
    }

    /// Where this form's render lives, given the `containers/k8s/` folder.
    pub fn path(self, k8s_dir: &Path) -> PathBuf {
        k8s_dir.join(self.dir()).join("workload.yaml")
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir())
    }
}

/// The `containers/k8s/` folder of this repository.
pub fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in containers/k8s/render")
        .to_path_buf()
}

/// Renders `source` (multi-document YAML) in `form`, with [`HEADER`] first.
///
/// # Errors
///
/// The YAML does not parse, an `x-sidecars` value is not a list of
/// containers (mappings with a `name`), a sidecar sets another
/// `restartPolicy` than `Always`, or `x-sidecars` appears anywhere but in a
/// pod spec.
pub fn render(source: &str, form: Form) -> Result<String> {
    let mut docs = parse_documents(source)?;
    for (i, doc) in docs.iter_mut().enumerate() {
        place_sidecars(doc, form).with_context(|| format!("document {}", i + 1))?;
    }
    let mut out = String::from(HEADER);
    out.push_str(&to_yaml(&docs)?);
    Ok(out)
}

/// Parses every document of a multi-document YAML, skipping empty ones.
///
/// # Errors
///
/// A document does not parse.
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).with_context(|| format!("document {}", i + 1))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Writes documents as one multi-document YAML (`---` between them).
///
/// # Errors
///
/// A document cannot be serialized (not expected of parsed YAML).
pub fn to_yaml(docs: &[Value]) -> Result<String> {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(doc)?);
    }
    Ok(out)
}

/// The pod spec of a document: `spec` of a Pod, `spec.template.spec` of a
/// workload resource (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job),
/// `spec.jobTemplate.spec.template.spec` of a CronJob; `None` for other kinds.
pub fn pod_spec_mut(doc: &mut Value) -> Option<&mut Mapping> {
    let kind = doc.get("kind")?.as_str()?.to_owned();
    let spec = doc.get_mut("spec")?;
    let pod = match kind.as_str() {
        "Pod" => spec,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            spec.get_mut("template")?.get_mut("spec")?
        }
        "CronJob" => spec
            .get_mut("jobTemplate")?
            .get_mut("spec")?
            .get_mut("template")?
            .get_mut("spec")?,
        _ => return None,
    };
    pod.as_mapping_mut()
}

/// Moves the `x-sidecars` of `doc`'s pod spec to where `form` puts them.
fn place_sidecars(doc: &mut Value, form: Form) -> Result<()> {
    if let Some(pod) = pod_spec_mut(doc) {
        if let Some(sidecars) = pod.remove(SIDECARS_KEY) {
            let Value::Sequence(sidecars) = sidecars else {
                bail!("`{SIDECARS_KEY}` must be a list of containers");
            };
            let mut placed = Vec::with_capacity(sidecars.len());
            for sidecar in sidecars {
                placed.push(sidecar_in(sidecar, form)?);
            }
            let key = match form {
                Form::Native => "initContainers",
                Form::Classic => "containers",
            };
            let list = pod
                .entry(Value::from(key))
                .or_insert_with(|| Value::Sequence(Vec::new()));
            let Value::Sequence(list) = list else {
                bail!("`{key}` must be a list of containers");
            };
            list.extend(placed);
        }
    }
    if let Some(path) = find_key(doc, SIDECARS_KEY, "") {
        bail!("`{SIDECARS_KEY}` at `{path}` is not in a pod spec");
    }
    Ok(())
}

/// Checks one sidecar and adds what `form` needs.
fn sidecar_in(sidecar: Value, form: Form) -> Result<Value> {
    let Value::Mapping(mut container) = sidecar else {
        bail!("each `{SIDECARS_KEY}` entry must be a container (a mapping)");
    };
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("a `{SIDECARS_KEY}` container has no `name`"))?
        .to_owned();
    match container.get("restartPolicy").map(Value::as_str) {
        None | Some(Some("Always")) => {}
        Some(other) => bail!(
            "sidecar `{name}` sets restartPolicy {other:?}: a sidecar restarts `Always` (leave it out)"
        ),
    }
    if form == Form::Native {
        // Right after the name, where a reader looks first.
        let mut native = Mapping::with_capacity(container.len() + 1);
        for (key, value) in container {
            let after = key == "name";
            native.insert(key, value);
            if after {
                native.insert("restartPolicy".into(), "Always".into());
            }
        }
        container = native;
    }
    Ok(Value::Mapping(container))
}

/// The dotted path of the first mapping key `key` under `value`.
fn find_key(value: &Value, key: &str, at: &str) -> Option<String> {
    match value {
        Value::Mapping(map) => map.iter().find_map(|(k, v)| {
            let name = k.as_str().unwrap_or("?");
            let path = if at.is_empty() {
                name.to_owned()
            } else {
                format!("{at}.{name}")
            };
            if name == key {
                Some(path)
            } else {
                find_key(v, key, &path)
            }
        }),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_key(v, key, &format!("{at}[{i}]"))),
        Value::Tagged(tagged) => find_key(&tagged.value, key, at),
        _ => None,
    }
}

/// A render on disk that differs from a fresh one.
#[derive(Debug)]
pub struct Stale {
    /// The file.
    pub path: PathBuf,
    /// Why: missing, unreadable or different.
    pub reason: String,
}

/// Renders `k8s_dir/source.yaml` in every form and, when `write`, writes
/// each render that differs; returns the renders that differed (before
/// writing).
///
/// # Errors
///
/// The source cannot be read or rendered, or a render cannot be written.
pub fn sync(k8s_dir: &Path, write: bool) -> Result<Vec<Stale>> {
    let source_path = k8s_dir.join("source.yaml");
    let source = std::fs::read_to_string(&source_path)
        .with_context(|| format!("cannot read {}", source_path.display()))?;
    let mut stale = Vec::new();
    for form in Form::ALL {
        let rendered =
            render(&source, form).with_context(|| format!("{}", source_path.display()))?;
        let path = form.path(k8s_dir);
        let reason = match std::fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == rendered => continue,
            Ok(_) => "differs from a fresh render".to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => "missing".to_owned(),
            Err(err) => format!("unreadable: {err}"),
        };
        if write {
            let dir = k8s_dir.join(form.dir());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            std::fs::write(&path, &rendered)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        stale.push(Stale { path, reason });
    }
    Ok(stale)
}

#[cfg(test)]
mod tests;
