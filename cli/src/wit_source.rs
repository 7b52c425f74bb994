//! Where signatures come from: WIT files (`--wit`), or the target itself
//! through `wrpc-ext:extension/discovery@0.1.0`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use transport::schema::{Signature, Signatures, WireType};
use wit_parser::{FunctionKind, Resolve, SourceMap};

use crate::remote::Remote;
use crate::value::{self, Ty};
use crate::Fail;

use transport::discovery::{DESCRIBE, INSTANCE as DISCOVERY, PER_INSTANCE};

/// One function: its parameters and results with names, and its wire shape.
#[derive(Debug)]
pub struct Function {
    /// (name, type) of each parameter.
    pub params: Vec<(String, Ty)>,
    /// (name if named, type) of each result.
    pub results: Vec<(Option<String>, Ty)>,
    /// What the transport checks and routes by.
    pub wire: Signature,
}

/// Every function of every named interface in some WIT.
#[derive(Debug)]
pub struct Catalog {
    signatures: Signatures,
    instances: BTreeMap<String, BTreeMap<String, Function>>,
}

impl Catalog {
    /// The functions of every named interface in `resolve`.
    pub fn from_resolve(resolve: &Resolve) -> Result<Self, String> {
        let signatures = Signatures::from_resolve(resolve).map_err(|err| err.to_string())?;
        let mut instances: BTreeMap<String, BTreeMap<String, Function>> = BTreeMap::new();
        for (id, iface) in &resolve.interfaces {
            let Some(instance) = resolve.id_of(id) else {
                continue;
            };
            for func in iface.functions.values() {
                let name = rpc_name(&func.name, &func.kind);
                let Some(wire) = signatures.get(&instance, name) else {
                    continue;
                };
                let function = Function {
                    params: func
                        .params
                        .iter()
                        .map(|(n, ty)| (n.clone(), Ty::from_wit(resolve, ty)))
                        .collect(),
                    results: match &func.results {
                        wit_parser::Results::Named(named) => named
                            .iter()
                            .map(|(n, ty)| (Some(n.clone()), Ty::from_wit(resolve, ty)))
                            .collect(),
                        wit_parser::Results::Anon(ty) => vec![(None, Ty::from_wit(resolve, ty))],
                    },
                    wire: wire.clone(),
                };
                instances
                    .entry(instance.clone())
                    .or_default()
                    .insert(name.to_string(), function);
            }
        }
        Ok(Self {
            signatures,
            instances,
        })
    }

    /// WIT at `paths`: `.wit` files or directories (each a package, with its
    /// dependencies in `deps/`), dependencies before the packages using them.
    pub fn from_paths(paths: &[PathBuf]) -> Result<Self, String> {
        let mut resolve = Resolve::new();
        for path in paths {
            resolve
                .push_path(path)
                .map_err(|err| format!("--wit {}: {err:#}", path.display()))?;
        }
        Self::from_resolve(&resolve)
    }

    /// WIT packages given as (file name, contents) lists, dependencies first.
    pub fn from_packages(packages: &[Vec<(String, String)>]) -> Result<Self, String> {
        let mut resolve = Resolve::new();
        for files in packages {
            let mut map = SourceMap::new();
            for (name, contents) in files {
                map.push(Path::new(name), contents.as_str());
            }
            let group = map.parse().map_err(|err| format!("{err:#}"))?;
            resolve
                .push_group(group)
                .map_err(|err| format!("{err:#}"))?;
        }
        Self::from_resolve(&resolve)
    }

    /// The wire signatures, as the transport knows them.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn signatures(&self) -> &Signatures {
        &self.signatures
    }

    /// Finds `INSTANCE.FUNC`: the longest known instance followed by `.`
    /// and a function of it. Errors name what is known.
    pub fn lookup<'a>(&'a self, spec: &str) -> Result<(&'a str, &'a str, &'a Function), String> {
        let found = self
            .instances
            .iter()
            .filter(|(instance, _)| {
                spec.strip_prefix(instance.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|(instance, _)| instance.len());
        if let Some((instance, functions)) = found {
            let func = &spec[instance.len() + 1..];
            return match functions.get_key_value(func) {
                Some((name, function)) => Ok((instance, name, function)),
                None => Err(format!(
                    "`{instance}` has no function `{func}` (it has: {})",
                    join(functions.keys())
                )),
            };
        }
        if let Some(functions) = self.instances.get(spec) {
            return Err(format!(
                "`{spec}` is an interface; name one of its functions as `{spec}.FUNC` ({})",
                join(functions.keys())
            ));
        }
        let Some((instance, _)) = spec.rsplit_once('.') else {
            return Err(format!(
                "`{spec}` is not INSTANCE.FUNC (e.g. wrpc:keyvalue/store@0.2.0-draft.get)"
            ));
        };
        if self.instances.is_empty() {
            return Err("the WIT defines no interface".into());
        }
        Err(format!(
            "no interface `{instance}` in the WIT (it has: {})",
            join(self.instances.keys())
        ))
    }
}

fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// The name wRPC uses for a function: without `[method]`, `[static]` or `[constructor]`.
fn rpc_name<'a>(name: &'a str, kind: &FunctionKind) -> &'a str {
    let prefix = match kind {
        FunctionKind::Freestanding => return name,
        FunctionKind::Method(_) => "[method]",
        FunctionKind::Static(_) => "[static]",
        FunctionKind::Constructor(_) => "[constructor]",
    };
    name.strip_prefix(prefix).unwrap_or(name)
}

/// Calls the target's `describe`: its description as JSON text.
/// Errors say why, without naming the call.
pub async fn describe(remote: &Remote) -> Result<String, String> {
    describe_at(remote, DISCOVERY, DESCRIBE).await
}

/// The description as `instance.func` answers it.
async fn describe_at(remote: &Remote, instance: &str, func: &str) -> Result<String, String> {
    let bytes = remote
        .call(instance, func, Bytes::new(), &[WireType::String])
        .await
        .map_err(|err| err.reason)?;
    let mut values =
        value::decode_all(&[&Ty::String], &bytes).map_err(|err| format!("its answer: {err}"))?;
    match values.pop() {
        Some(value::Json::String(text)) => Ok(text),
        _ => Err("its answer is not a string".into()),
    }
}

/// What `fetch_signatures` reads of a description.
#[derive(serde::Deserialize)]
struct Description {
    /// Packages, dependencies first, each a list of (file name, contents).
    wit: Vec<Vec<(String, String)>>,
}

/// The signatures of everything the target describes (its `describe`
/// answer's `wit`), asked first through `instance` when given (over NATS
/// only an extension serving it answers that; the general question may be
/// answered by any extension on the prefix). Fails in one line saying to
/// pass `--wit` when the target does not describe itself.
pub async fn fetch_signatures(remote: &Remote, instance: Option<&str>) -> Result<Catalog, Fail> {
    let target = remote.endpoint();
    let per_instance = match instance {
        Some(instance) => describe_at(remote, instance, PER_INSTANCE).await.ok(),
        None => None,
    };
    let text = match per_instance {
        Some(text) => Ok(text),
        None => describe(remote).await,
    };
    let text = text.map_err(|err| {
        Fail::call(format!(
            "{target} did not describe itself ({err}); pass --wit PATH with the interface's WIT"
        ))
    })?;
    let description: Description = serde_json::from_str(&text).map_err(|err| {
        Fail::call(format!(
            "{target} described itself in a form not understood ({err}); pass --wit PATH"
        ))
    })?;
    Catalog::from_packages(&description.wit).map_err(|err| {
        Fail::call(format!(
            "the WIT {target} described itself with does not parse ({err}); pass --wit PATH"
        ))
    })
}
