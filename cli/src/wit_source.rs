//! Where signatures come from: WIT files (`--wit`), or the target itself
//! through `wrpc-ext:extension/discovery@0.1.0`.

use std::path::PathBuf;

use bytes::Bytes;
use transport::schema::json::{self, Json};
use transport::schema::{Function, Signatures, Type, WireType, WitError};
use transport::Limits;
use wit_parser::Resolve;

use crate::remote::Remote;
use crate::Fail;

use transport::discovery::{DESCRIBE, INSTANCE as DISCOVERY, PER_INSTANCE};

/// Every function of every named interface in some WIT, with its named
/// types (the transport's [`Signatures`]), found by `INSTANCE.FUNC`.
#[derive(Debug)]
pub struct Catalog {
    signatures: Signatures,
}

impl Catalog {
    /// The functions of every named interface in `resolve`.
    pub fn from_resolve(resolve: &Resolve) -> Result<Self, String> {
        Signatures::from_resolve(resolve)
            .map(Self::from)
            .map_err(|err| err.to_string())
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
        let files: Vec<Vec<(&str, &str)>> = packages
            .iter()
            .map(|files| {
                files
                    .iter()
                    .map(|(name, contents)| (name.as_str(), contents.as_str()))
                    .collect()
            })
            .collect();
        let packages: Vec<&[(&str, &str)]> = files.iter().map(Vec::as_slice).collect();
        match Signatures::from_wit(&packages) {
            Ok(signatures) => Ok(signatures.into()),
            // The parser's own message, as it renders it (file, line, column).
            Err(WitError::Parse(message)) => Err(message),
            Err(err) => Err(err.to_string()),
        }
    }

    /// The signatures, with their named types.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn signatures(&self) -> &Signatures {
        &self.signatures
    }

    /// Finds `INSTANCE.FUNC`: the longest known instance followed by `.`
    /// and a function of it. Errors name what is known.
    pub fn lookup<'a>(&'a self, spec: &str) -> Result<(&'a str, &'a str, &'a Function), String> {
        let sigs = &self.signatures;
        let found = sigs
            .instances()
            .filter(|instance| {
                spec.strip_prefix(instance)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|instance| instance.len());
        if let Some(instance) = found {
            let func = &spec[instance.len() + 1..];
            return match sigs.named(instance).find(|(name, _)| *name == func) {
                Some((name, function)) => Ok((instance, name, function)),
                None => Err(format!(
                    "`{instance}` has no function `{func}` (it has: {})",
                    join(sigs.named(instance).map(|(name, _)| name))
                )),
            };
        }
        if let Some(instance) = sigs.instances().find(|instance| *instance == spec) {
            return Err(format!(
                "`{spec}` is an interface; name one of its functions as `{spec}.FUNC` ({})",
                join(sigs.named(instance).map(|(name, _)| name))
            ));
        }
        let Some((instance, _)) = spec.rsplit_once('.') else {
            return Err(format!(
                "`{spec}` is not INSTANCE.FUNC (e.g. wrpc:keyvalue/store@0.2.0-draft.get)"
            ));
        };
        if sigs.instances().next().is_none() {
            return Err("the WIT defines no interface".into());
        }
        Err(format!(
            "no interface `{instance}` in the WIT (it has: {})",
            join(sigs.instances())
        ))
    }
}

impl From<Signatures> for Catalog {
    fn from(signatures: Signatures) -> Self {
        Self { signatures }
    }
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// Why a target gave no description.
pub enum Undescribed {
    /// No call can succeed there (nothing listens, not wRPC): the line says
    /// so, naming the target.
    Unusable(String),
    /// The description failed: why, without naming the call.
    Failed(String),
}

impl Undescribed {
    /// `Fail` for a command that needed the description of `target`;
    /// `advice` follows a failed (not unusable) description.
    pub fn fail(self, target: &impl core::fmt::Display, advice: &str) -> Fail {
        match self {
            Self::Unusable(line) => Fail::call(line),
            Self::Failed(why) => {
                Fail::call(format!("{target} did not describe itself ({why}){advice}"))
            }
        }
    }
}

/// Calls the target's `describe`: its description as JSON text.
pub async fn describe(remote: &Remote) -> Result<String, Undescribed> {
    describe_at(remote, DISCOVERY, DESCRIBE).await
}

/// The description as `instance.func` answers it.
async fn describe_at(remote: &Remote, instance: &str, func: &str) -> Result<String, Undescribed> {
    let bytes = remote
        .call(instance, func, Bytes::new(), &[WireType::String])
        .await
        .map_err(|err| {
            if err.is_unusable() {
                Undescribed::Unusable(err.reason().to_string())
            } else {
                Undescribed::Failed(err.reason().to_string())
            }
        })?;
    let mut values = json::decode_all(&[Type::String], &bytes, &Limits::DEFAULT.value())
        .map_err(|err| Undescribed::Failed(format!("its answer: {err}")))?;
    match values.pop() {
        Some(Json::String(text)) => Ok(text),
        _ => Err(Undescribed::Failed("its answer is not a string".into())),
    }
}

/// The signatures of everything the target describes (its `describe`
/// answer's `wit`), asked first through `instance` when given (over NATS
/// only an extension serving it answers that; the general question may be
/// answered by any extension on the prefix). Fails in one line saying to
/// pass `--wit` when the target does not describe itself.
pub async fn fetch_signatures(remote: &Remote, instance: Option<&str>) -> Result<Catalog, Fail> {
    let target = remote.endpoint();
    let per_instance = match instance {
        Some(instance) => describe_at(remote, instance, PER_INSTANCE).await,
        None => Err(Undescribed::Failed(String::new())),
    };
    let text = match per_instance {
        Ok(text) => Ok(text),
        Err(Undescribed::Unusable(line)) => Err(Undescribed::Unusable(line)),
        Err(Undescribed::Failed(_)) => describe(remote).await,
    };
    let text =
        text.map_err(|err| err.fail(target, "; pass --wit PATH with the interface's WIT"))?;
    let description = transport::discovery::Document::parse(&text).map_err(|err| {
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

#[cfg(test)]
mod tests {
    use super::*;

    const TYPES: &str = "test:lookup/types@0.1.0";

    fn catalog() -> Catalog {
        let wit = r#"
            package test:lookup@0.1.0;

            interface types {
                resource bucket {
                    get: func(key: string) -> string;
                }
                compound: func(a: u32, b: list<string>) -> result<_, string>;
                named: func() -> tuple<u32, string>;
                scalars: func(x: bool);
            }

            interface other {
                f: func();
            }
        "#;
        Catalog::from_packages(&[vec![("lookup.wit".into(), wit.into())]]).expect("test WIT parses")
    }

    #[test]
    fn lookup_finds_functions_and_methods() {
        let catalog = catalog();
        let (instance, func, f) = catalog.lookup(&format!("{TYPES}.compound")).unwrap();
        assert_eq!((instance, func), (TYPES, "compound"));
        assert_eq!(
            f.params,
            [
                ("a".to_string(), Type::U32),
                ("b".to_string(), Type::List(Box::new(Type::String)))
            ]
        );
        assert_eq!(f.results.len(), 1);
        assert_eq!(f.results[0].to_string(), "result<_, string>");
        let (_, func, get) = catalog.lookup(&format!("{TYPES}.bucket.get")).unwrap();
        assert_eq!(func, "bucket.get");
        assert_eq!(get.params[0].1.to_string(), "borrow<bucket>");
        assert_eq!(
            catalog.signatures().get(TYPES, "named"),
            Some(
                catalog
                    .lookup(&format!("{TYPES}.named"))
                    .unwrap()
                    .2
                    .signature()
            )
        );
    }

    #[test]
    fn lookup_names_what_is_known() {
        let catalog = catalog();
        assert_eq!(
            catalog.lookup(&format!("{TYPES}.nope")).unwrap_err(),
            format!(
                "`{TYPES}` has no function `nope` (it has: bucket.get, compound, named, scalars)"
            )
        );
        assert_eq!(
            catalog.lookup("test:lookup/missing@0.1.0.f").unwrap_err(),
            "no interface `test:lookup/missing@0.1.0` in the WIT (it has: test:lookup/other@0.1.0, test:lookup/types@0.1.0)"
        );
        assert_eq!(
            catalog.lookup(TYPES).unwrap_err(),
            format!("`{TYPES}` is an interface; name one of its functions as `{TYPES}.FUNC` (bucket.get, compound, named, scalars)")
        );
        assert!(catalog
            .lookup("nodots")
            .unwrap_err()
            .contains("is not INSTANCE.FUNC"));
        let empty = Catalog::from(Signatures::default());
        assert_eq!(
            empty.lookup("a:b/c.f").unwrap_err(),
            "the WIT defines no interface"
        );
    }

    #[test]
    fn bad_wit_gives_the_parsers_message() {
        let err = Catalog::from_packages(&[vec![(
            "bad.wit".into(),
            "package a:b;\ninterface i { f: func(; }".into(),
        )]])
        .unwrap_err();
        assert!(err.contains("bad.wit"), "{err}");
        assert!(!err.starts_with("failed to parse WIT"), "{err}");
    }

    #[test]
    fn keyvalue_wit_loads_from_its_directory() {
        // As `--wit` loads it: a directory with its dependencies.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/wrpc-keyvalue");
        let kv = Catalog::from_paths(&[dir.into()]).expect("keyvalue WIT");
        let mut n = 0;
        for (instance, func, sig) in kv.signatures().iter() {
            let (_, _, f) = kv.lookup(&format!("{instance}.{func}")).unwrap();
            assert_eq!(f.signature(), sig, "{func}");
            n += 1;
        }
        assert_eq!(n, 9);
        let err = Catalog::from_paths(&[format!("{dir}/nope").into()]).unwrap_err();
        assert!(err.starts_with("--wit "), "{err}");
    }
}
