//! Conversion of WIT function signatures (via `wit-parser`) into [`WireType`]s.

use std::collections::BTreeMap;
use std::path::Path;

use wit_parser::{Function, FunctionKind, Resolve, SourceMap, Type, TypeDefKind};

use super::{Signature, WireType};

/// Signatures of every function of every interface in some WIT packages,
/// keyed by wRPC instance name (`ns:pkg/iface@version`, version kept verbatim) and function name.
#[derive(Clone, Debug, Default)]
pub struct Signatures {
    instances: BTreeMap<String, BTreeMap<String, Signature>>,
}

/// Why WIT could not be turned into [`Signatures`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitError {
    /// The WIT did not parse or resolve.
    #[error("failed to parse WIT: {0}")]
    Parse(String),
    /// A function uses a type wRPC cannot carry.
    #[error("`{item}` uses {what}, which wRPC does not support")]
    Unsupported {
        /// The function, as `instance#function`.
        item: String,
        /// The offending construct.
        what: String,
    },
}

impl Signatures {
    /// Parses packages given as their files (name, contents); list dependency packages before
    /// the packages that use them. Each inner slice is one package (one or more .wit files).
    pub fn from_wit(packages: &[&[(&str, &str)]]) -> Result<Self, WitError> {
        let mut resolve = Resolve::new();
        for files in packages {
            let mut map = SourceMap::new();
            for (name, contents) in *files {
                map.push(Path::new(name), *contents);
            }
            let group = map
                .parse()
                .map_err(|err| WitError::Parse(format!("{err:#}")))?;
            resolve
                .push_group(group)
                .map_err(|err| WitError::Parse(format!("{err:#}")))?;
        }
        Self::from_resolve(&resolve)
    }

    /// The signatures of every named interface in `resolve` (e.g. packages
    /// pushed with [`Resolve::push_path`], a directory with its `deps/`).
    pub fn from_resolve(resolve: &Resolve) -> Result<Self, WitError> {
        let mut sigs = Self::default();
        for (id, iface) in &resolve.interfaces {
            // Interfaces without a name (inline in a world) have no wRPC instance name of their own.
            let Some(instance) = resolve.id_of(id) else {
                continue;
            };
            for func in iface.functions.values() {
                let item = format!("{instance}#{}", func.name);
                let sig = signature(resolve, func, &item)?;
                sigs.insert(instance.clone(), rpc_func_name(func), sig);
            }
        }
        Ok(sigs)
    }

    /// The signature of `func` in `instance`, if known.
    pub fn get(&self, instance: &str, func: &str) -> Option<&Signature> {
        self.instances.get(instance)?.get(func)
    }

    /// Adds (or replaces) the signature of `func` in `instance`.
    pub fn insert(&mut self, instance: impl Into<String>, func: impl Into<String>, sig: Signature) {
        self.instances
            .entry(instance.into())
            .or_default()
            .insert(func.into(), sig);
    }

    /// (instance, function, signature) in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Signature)> {
        self.instances.iter().flat_map(|(instance, funcs)| {
            funcs
                .iter()
                .map(move |(func, sig)| (instance.as_str(), func.as_str(), sig))
        })
    }

    /// Functions of one instance.
    pub fn functions<'a>(
        &'a self,
        instance: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Signature)> {
        self.instances
            .get(instance)
            .into_iter()
            .flat_map(|funcs| funcs.iter().map(|(func, sig)| (func.as_str(), sig)))
    }

    /// Adds every signature of `other`, replacing any already present under the same names.
    pub fn extend(&mut self, other: Signatures) {
        for (instance, funcs) in other.instances {
            self.instances.entry(instance).or_default().extend(funcs);
        }
    }
}

/// The name wRPC uses for a function: without `[method]`, `[static]` or `[constructor]`.
fn rpc_func_name(func: &Function) -> &str {
    let prefix = match func.kind {
        FunctionKind::Freestanding => return &func.name,
        FunctionKind::Method(_) => "[method]",
        FunctionKind::Static(_) => "[static]",
        FunctionKind::Constructor(_) => "[constructor]",
    };
    func.name.strip_prefix(prefix).unwrap_or(&func.name)
}

fn signature(resolve: &Resolve, func: &Function, item: &str) -> Result<Signature, WitError> {
    let params = func
        .params
        .iter()
        .map(|(_, ty)| wire_type(resolve, ty, item))
        .collect::<Result<_, _>>()?;
    let results = func
        .results
        .iter_types()
        .map(|ty| wire_type(resolve, ty, item))
        .collect::<Result<_, _>>()?;
    Ok(Signature { params, results })
}

fn unsupported(item: &str, what: impl Into<String>) -> WitError {
    WitError::Unsupported {
        item: item.to_string(),
        what: what.into(),
    }
}

fn count(n: usize, item: &str, what: &str) -> Result<u32, WitError> {
    u32::try_from(n).map_err(|_| unsupported(item, format!("{what} with {n} entries")))
}

fn boxed(
    resolve: &Resolve,
    ty: Option<&Type>,
    item: &str,
) -> Result<Option<Box<WireType>>, WitError> {
    ty.map(|ty| wire_type(resolve, ty, item).map(Box::new))
        .transpose()
}

fn wire_type(resolve: &Resolve, ty: &Type, item: &str) -> Result<WireType, WitError> {
    let id = match ty {
        Type::Bool => return Ok(WireType::Bool),
        Type::U8 => return Ok(WireType::U8),
        Type::U16 => return Ok(WireType::U16),
        Type::U32 => return Ok(WireType::U32),
        Type::U64 => return Ok(WireType::U64),
        Type::S8 => return Ok(WireType::S8),
        Type::S16 => return Ok(WireType::S16),
        Type::S32 => return Ok(WireType::S32),
        Type::S64 => return Ok(WireType::S64),
        Type::F32 => return Ok(WireType::F32),
        Type::F64 => return Ok(WireType::F64),
        Type::Char => return Ok(WireType::Char),
        Type::String => return Ok(WireType::String),
        Type::Id(id) => *id,
    };
    let Some(def) = resolve.types.get(id) else {
        return Err(unsupported(item, "an unknown type"));
    };
    let all = |tys: &mut dyn Iterator<Item = &Type>| {
        tys.map(|ty| wire_type(resolve, ty, item))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match &def.kind {
        TypeDefKind::Type(ty) => wire_type(resolve, ty, item)?,
        TypeDefKind::Record(record) => {
            WireType::Record(all(&mut record.fields.iter().map(|f| &f.ty))?)
        }
        TypeDefKind::Tuple(tuple) => WireType::Tuple(all(&mut tuple.types.iter())?),
        TypeDefKind::Variant(variant) => WireType::Variant(
            variant
                .cases
                .iter()
                .map(|case| {
                    case.ty
                        .as_ref()
                        .map(|ty| wire_type(resolve, ty, item))
                        .transpose()
                })
                .collect::<Result<_, _>>()?,
        ),
        TypeDefKind::Enum(e) => WireType::Enum(count(e.cases.len(), item, "an enum")?),
        TypeDefKind::Flags(f) => WireType::Flags(count(f.flags.len(), item, "flags")?),
        TypeDefKind::Option(ty) => WireType::Option(Box::new(wire_type(resolve, ty, item)?)),
        TypeDefKind::Result(r) => WireType::Result {
            ok: boxed(resolve, r.ok.as_ref(), item)?,
            err: boxed(resolve, r.err.as_ref(), item)?,
        },
        TypeDefKind::List(ty) => WireType::List(Box::new(wire_type(resolve, ty, item)?)),
        TypeDefKind::Handle(_) | TypeDefKind::Resource => WireType::Resource,
        TypeDefKind::Future(ty) => WireType::Future(boxed(resolve, ty.as_ref(), item)?),
        TypeDefKind::Stream(stream) => {
            if stream.end.is_some() {
                return Err(unsupported(item, "a stream with an end type"));
            }
            WireType::Stream(boxed(resolve, stream.element.as_ref(), item)?)
        }
        TypeDefKind::Unknown => return Err(unsupported(item, "an unresolved type")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{type_at_path, WireType as W};
    use super::*;

    fn list(ty: W) -> W {
        W::List(Box::new(ty))
    }
    fn option(ty: W) -> W {
        W::Option(Box::new(ty))
    }
    fn result(ok: Option<W>, err: Option<W>) -> W {
        W::Result {
            ok: ok.map(Box::new),
            err: err.map(Box::new),
        }
    }

    fn sig(params: Vec<W>, results: Vec<W>) -> Signature {
        Signature { params, results }
    }

    const KV: &str = "wrpc:keyvalue/store@0.2.0-draft";

    #[test]
    fn keyvalue() {
        let dir = "/work/main/wit/wrpc-keyvalue";
        let files: Vec<(String, String)> = ["store", "atomics", "batch", "world"]
            .iter()
            .map(|name| {
                let path = format!("{dir}/{name}.wit");
                let contents = std::fs::read_to_string(&path).expect("read WIT");
                (path, contents)
            })
            .collect();
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let sigs = Signatures::from_wit(&[&files]).expect("parse keyvalue");

        let error = W::Variant(vec![None, None, Some(W::String)]);
        assert_eq!(
            sigs.get(KV, "get"),
            Some(&sig(
                vec![W::String, W::String],
                vec![result(Some(option(list(W::U8))), Some(error.clone()))],
            ))
        );
        let key_response = W::Record(vec![list(W::String), option(W::U64)]);
        assert_eq!(
            sigs.get(KV, "list-keys"),
            Some(&sig(
                vec![W::String, option(W::U64)],
                vec![result(Some(key_response), Some(error.clone()))],
            ))
        );
        assert_eq!(
            sigs.get(KV, "set").map(|s| &s.results),
            Some(&vec![result(None, Some(error.clone()))])
        );
        assert_eq!(
            sigs.get("wrpc:keyvalue/batch@0.2.0-draft", "get-many"),
            Some(&sig(
                vec![W::String, list(W::String)],
                vec![result(
                    Some(list(option(W::Tuple(vec![W::String, list(W::U8)])))),
                    Some(error.clone()),
                )],
            ))
        );
        assert_eq!(
            sigs.get("wrpc:keyvalue/atomics@0.2.0-draft", "increment"),
            Some(&sig(
                vec![W::String, W::String, W::U64],
                vec![result(Some(W::U64), Some(error))],
            ))
        );
        let names: Vec<(&str, &str)> = sigs.iter().map(|(i, f, _)| (i, f)).collect();
        assert_eq!(names.len(), 9);
        assert_eq!(
            names.first(),
            Some(&("wrpc:keyvalue/atomics@0.2.0-draft", "increment"))
        );
        let store: Vec<&str> = sigs.functions(KV).map(|(f, _)| f).collect();
        assert_eq!(store, ["delete", "exists", "get", "list-keys", "set"]);
        assert_eq!(sigs.functions("wrpc:keyvalue/nope@0.2.0-draft").count(), 0);
        assert!(sigs.iter().all(|(_, _, s)| s.param_paths().is_empty()));
    }

    const TYPES: &str = r#"
        package test:types@1.0.0;

        interface types {
            type bytes = list<u8>;
            type blob = bytes;
            flags perms { read, write, exec }
            enum color { red, green, blue }
            resource bucket {
                constructor(name: string);
                get: func(key: string) -> option<blob>;
                open: static func(name: string) -> result<bucket, string>;
            }
            record rec { a: u8, b: tuple<s16, char>, fut: future<u32> }
            variant v { none, some(perms), other(color) }
        }
    "#;

    const API: &str = r#"
        package test:types@1.0.0;

        interface api {
            use types.{bucket, blob, perms, color, rec, v};
            upload: func(name: string, data: stream<u8>) -> future<result<_, string>>;
            watch: func(b: borrow<bucket>) -> stream<rec>;
            ping: func() -> stream;
            done: func() -> future;
            all: func(p: perms, c: color, r: rec, v: v, f: f32, g: f64, x: s64, y: s8, z: u16, w: s32, q: u32, b: bool) -> tuple<blob, blob>;
            own-it: func(b: own<bucket>) -> list<bucket>;
            many: func() -> (a: string, b: stream<list<string>>);
        }
    "#;

    #[test]
    fn inline_package() {
        let sigs = Signatures::from_wit(&[&[("types.wit", TYPES), ("api.wit", API)]])
            .expect("parse inline package");
        let types = "test:types/types@1.0.0";
        assert_eq!(
            sigs.get(types, "bucket"),
            Some(&sig(vec![W::String], vec![W::Resource]))
        );
        assert_eq!(
            sigs.get(types, "bucket.get"),
            Some(&sig(
                vec![W::Resource, W::String],
                vec![option(list(W::U8))]
            ))
        );
        assert_eq!(
            sigs.get(types, "bucket.open"),
            Some(&sig(
                vec![W::String],
                vec![result(Some(W::Resource), Some(W::String))]
            ))
        );
        assert_eq!(sigs.get(types, "[method]bucket.get"), None);

        let api = "test:types/api@1.0.0";
        let upload = sigs.get(api, "upload").expect("upload");
        let bytes = W::Stream(Some(Box::new(W::U8)));
        assert_eq!(upload.params, [W::String, bytes.clone()]);
        assert_eq!(
            upload.results,
            [W::Future(Some(Box::new(result(None, Some(W::String)))))]
        );
        assert_eq!(upload.param_paths(), [Box::from([Some(1)])]);
        assert_eq!(upload.result_paths(), [Box::from([Some(0)])]);
        assert_eq!(type_at_path(&upload.params, &[1]), Some(&bytes));

        let rec = W::Record(vec![
            W::U8,
            W::Tuple(vec![W::S16, W::Char]),
            W::Future(Some(Box::new(W::U32))),
        ]);
        let watch = sigs.get(api, "watch").expect("watch");
        assert_eq!(watch.params, [W::Resource]);
        assert_eq!(watch.results, [W::Stream(Some(Box::new(rec.clone())))]);
        assert_eq!(
            watch.result_paths(),
            [Box::from([Some(0), None, Some(2)]), Box::from([Some(0)])]
        );
        assert_eq!(
            sigs.get(api, "ping"),
            Some(&sig(vec![], vec![W::Stream(None)]))
        );
        assert_eq!(
            sigs.get(api, "done"),
            Some(&sig(vec![], vec![W::Future(None)]))
        );
        assert_eq!(
            sigs.get(api, "all"),
            Some(&sig(
                vec![
                    W::Flags(3),
                    W::Enum(3),
                    rec,
                    W::Variant(vec![None, Some(W::Flags(3)), Some(W::Enum(3))]),
                    W::F32,
                    W::F64,
                    W::S64,
                    W::S8,
                    W::U16,
                    W::S32,
                    W::U32,
                    W::Bool,
                ],
                vec![W::Tuple(vec![list(W::U8), list(W::U8)])],
            ))
        );
        assert_eq!(
            sigs.get(api, "own-it"),
            Some(&sig(vec![W::Resource], vec![list(W::Resource)]))
        );
        assert_eq!(
            sigs.get(api, "many").map(|s| &s.results),
            Some(&vec![W::String, W::Stream(Some(Box::new(list(W::String))))])
        );
    }

    #[test]
    fn dependency_package() {
        let dep = r#"
            package dep:lib@0.1.0;
            interface types {
                record point { x: s32, y: s32 }
                type points = list<point>;
            }
        "#;
        let app = r#"
            package app:main;
            interface api {
                use dep:lib/types@0.1.0.{point, points};
                nearest: func(p: point, all: points) -> option<point>;
            }
        "#;
        let sigs = Signatures::from_wit(&[&[("dep.wit", dep)], &[("app.wit", app)]])
            .expect("parse with dependency");
        let point = W::Record(vec![W::S32, W::S32]);
        assert_eq!(
            sigs.get("app:main/api", "nearest"),
            Some(&sig(
                vec![point.clone(), list(point.clone())],
                vec![option(point)]
            ))
        );
        // The other order cannot resolve.
        assert!(matches!(
            Signatures::from_wit(&[&[("app.wit", app)], &[("dep.wit", dep)]]),
            Err(WitError::Parse(_))
        ));
    }

    #[test]
    fn errors_and_merging() {
        let bad = "package a:b; interface i { f: func(x: stream<u8, string>); }";
        match Signatures::from_wit(&[&[("bad.wit", bad)]]) {
            Err(WitError::Unsupported { item, what }) => {
                assert_eq!(item, "a:b/i#f");
                assert!(what.contains("end type"), "{what}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Signatures::from_wit(&[&[("x.wit", "package a:b; interface i { f: func(x: nope); }")]]),
            Err(WitError::Parse(_))
        ));

        let mut a = Signatures::default();
        a.insert("x:y/z", "f", sig(vec![W::U8], vec![]));
        a.insert("x:y/z", "g", sig(vec![], vec![]));
        let mut b = Signatures::default();
        b.insert("x:y/z", "f", sig(vec![W::String], vec![]));
        b.insert("x:y/w", "h", sig(vec![], vec![W::Bool]));
        a.extend(b);
        assert_eq!(a.get("x:y/z", "f"), Some(&sig(vec![W::String], vec![])));
        let all: Vec<(&str, &str)> = a.iter().map(|(i, f, _)| (i, f)).collect();
        assert_eq!(all, [("x:y/w", "h"), ("x:y/z", "f"), ("x:y/z", "g")]);
    }
}
