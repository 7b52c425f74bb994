//! WIT to [`Type`]s: the one walk of `wit-parser`'s `Resolve`.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use wit_parser::{FunctionKind, Handle, Resolve, SourceMap, TypeDefKind, TypeId};

use super::{Enum, Flags, Record, Signature, Type, Variant};

/// Deepest nesting of types followed; WIT itself cannot nest deeper than a
/// few levels in practice, and nothing here recurses without bound.
const MAX_DEPTH: u32 = 128;

/// One function of an interface: its parameters and results with their
/// names and types, and the wire shape derived from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// `(name, type)` of each parameter.
    pub params: Vec<(String, Type)>,
    /// The result types (WIT has at most one; wRPC carries them as a tuple).
    pub results: Vec<Type>,
    /// Whether WIT declares it `async func` (the same on the wire).
    pub is_async: bool,
    wire: Signature,
}

impl Function {
    /// A function of these parameters and results.
    pub fn new(params: Vec<(String, Type)>, results: Vec<Type>, is_async: bool) -> Self {
        let wire = Signature {
            params: params.iter().map(|(_, t)| t.wire()).collect(),
            results: results.iter().map(Type::wire).collect(),
        };
        Self {
            params,
            results,
            is_async,
            wire,
        }
    }

    /// What the transport checks and routes by.
    pub fn signature(&self) -> &Signature {
        &self.wire
    }

    /// The parameter types, in order.
    pub fn param_types(&self) -> Vec<Type> {
        self.params.iter().map(|(_, t)| t.clone()).collect()
    }
}

/// Every function of every interface in some WIT packages, keyed by wRPC
/// instance name (`ns:pkg/iface@version`, version kept verbatim) and
/// function name (without `[method]`, `[static]` or `[constructor]`).
#[derive(Clone, Debug, Default)]
pub struct Signatures {
    instances: BTreeMap<String, BTreeMap<String, Function>>,
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
    ///
    /// # Errors
    ///
    /// [`WitError::Parse`] for WIT that does not parse or resolve,
    /// [`WitError::Unsupported`] for a function wRPC cannot carry.
    pub fn from_wit(packages: &[&[(&str, &str)]]) -> Result<Self, WitError> {
        let mut resolve = Resolve::new();
        for files in packages {
            push_package(&mut resolve, files.iter().copied())?;
        }
        Self::from_resolve(&resolve)
    }

    /// The signatures of every named interface in `resolve` (e.g. packages
    /// pushed with [`Resolve::push_path`], a directory with its `deps/`).
    ///
    /// # Errors
    ///
    /// [`WitError::Unsupported`] for a function wRPC cannot carry.
    pub fn from_resolve(resolve: &Resolve) -> Result<Self, WitError> {
        let mut sigs = Self::default();
        for (id, iface) in &resolve.interfaces {
            // Interfaces without a name (inline in a world) have no wRPC instance name of their own.
            let Some(instance) = resolve.id_of(id) else {
                continue;
            };
            for func in iface.functions.values() {
                let item = format!("{instance}#{}", func.name);
                let walk = Walk {
                    resolve,
                    item: &item,
                };
                let params = func
                    .params
                    .iter()
                    .map(|p| Ok((p.name.clone(), walk.ty(&p.ty, 0)?)))
                    .collect::<Result<_, WitError>>()?;
                let results = func
                    .result
                    .iter()
                    .map(|ty| walk.ty(ty, 0))
                    .collect::<Result<_, _>>()?;
                let is_async = matches!(
                    func.kind,
                    FunctionKind::AsyncFreestanding
                        | FunctionKind::AsyncMethod(_)
                        | FunctionKind::AsyncStatic(_)
                );
                sigs.insert(
                    instance.clone(),
                    rpc_func_name(&func.name, &func.kind),
                    Function::new(params, results, is_async),
                );
            }
        }
        Ok(sigs)
    }

    /// The wire signature of `func` in `instance`, if known.
    pub fn get(&self, instance: &str, func: &str) -> Option<&Signature> {
        self.function(instance, func).map(Function::signature)
    }

    /// `func` of `instance`, with its named types.
    pub fn function(&self, instance: &str, func: &str) -> Option<&Function> {
        self.instances.get(instance)?.get(func)
    }

    /// Adds (or replaces) `func` of `instance`.
    pub fn insert(&mut self, instance: impl Into<String>, func: impl Into<String>, f: Function) {
        self.instances
            .entry(instance.into())
            .or_default()
            .insert(func.into(), f);
    }

    /// (instance, function, signature) in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Signature)> {
        self.instances.iter().flat_map(|(instance, funcs)| {
            funcs
                .iter()
                .map(move |(func, f)| (instance.as_str(), func.as_str(), f.signature()))
        })
    }

    /// The instances, in order.
    pub fn instances(&self) -> impl Iterator<Item = &str> {
        self.instances.keys().map(String::as_str)
    }

    /// Functions of one instance, with their wire signatures.
    pub fn functions<'a>(
        &'a self,
        instance: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Signature)> {
        self.named(instance).map(|(func, f)| (func, f.signature()))
    }

    /// Functions of one instance, with their named types.
    pub fn named<'a>(&'a self, instance: &'a str) -> impl Iterator<Item = (&'a str, &'a Function)> {
        self.instances
            .get(instance)
            .into_iter()
            .flat_map(|funcs| funcs.iter().map(|(func, f)| (func.as_str(), f)))
    }

    /// Adds every function of `other`, replacing any already present under the same names.
    pub fn extend(&mut self, other: Signatures) {
        for (instance, funcs) in other.instances {
            self.instances.entry(instance).or_default().extend(funcs);
        }
    }
}

/// Parses one package from its files into `resolve`.
///
/// # Errors
///
/// [`WitError::Parse`] naming what did not parse or resolve.
pub(crate) fn push_package<'a>(
    resolve: &mut Resolve,
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), WitError> {
    let mut map = SourceMap::new();
    for (name, contents) in files {
        map.push_str(name, contents);
    }
    // wit-parser 0.254 panics on some malformed WIT (the doc comment `/**/`);
    // WIT can come from a peer (a `describe` answer): a panic is an error
    // here. `resolve` is the caller's to drop on an error.
    let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let group = map
            .parse()
            .map_err(|(map, err)| WitError::Parse(err.render(&map)))?;
        resolve
            .push_group(group)
            .map_err(|err| WitError::Parse(format!("{err:#}")))?;
        Ok(())
    }));
    parsed.unwrap_or_else(|panic| {
        let why = (panic.downcast_ref::<&str>().copied())
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        Err(WitError::Parse(format!("the WIT parser failed: {why}")))
    })
}

/// The name wRPC uses for a function: without `[method]`, `[static]`,
/// `[constructor]` or their `[async …]` forms.
fn rpc_func_name<'a>(name: &'a str, kind: &FunctionKind) -> &'a str {
    let prefix = match kind {
        FunctionKind::Freestanding | FunctionKind::AsyncFreestanding => return name,
        FunctionKind::Method(_) => "[method]",
        FunctionKind::AsyncMethod(_) => "[async method]",
        FunctionKind::Static(_) => "[static]",
        FunctionKind::AsyncStatic(_) => "[async static]",
        FunctionKind::Constructor(_) => "[constructor]",
    };
    name.strip_prefix(prefix).unwrap_or(name)
}

/// One function's types being walked.
struct Walk<'r> {
    resolve: &'r Resolve,
    /// The function, as `instance#function`, for errors.
    item: &'r str,
}

impl Walk<'_> {
    fn unsupported(&self, what: impl Into<String>) -> WitError {
        WitError::Unsupported {
            item: self.item.to_string(),
            what: what.into(),
        }
    }

    fn boxed(
        &self,
        ty: Option<&wit_parser::Type>,
        depth: u32,
    ) -> Result<Option<Box<Type>>, WitError> {
        ty.map(|ty| self.ty(ty, depth).map(Box::new)).transpose()
    }

    fn name(&self, id: TypeId) -> Option<String> {
        self.resolve.types.get(id).and_then(|def| def.name.clone())
    }

    fn resource_name(&self, id: TypeId) -> String {
        self.name(id).unwrap_or_else(|| "resource".into())
    }

    fn ty(&self, ty: &wit_parser::Type, depth: u32) -> Result<Type, WitError> {
        use wit_parser::Type as T;
        let id = match ty {
            T::Bool => return Ok(Type::Bool),
            T::U8 => return Ok(Type::U8),
            T::U16 => return Ok(Type::U16),
            T::U32 => return Ok(Type::U32),
            T::U64 => return Ok(Type::U64),
            T::S8 => return Ok(Type::S8),
            T::S16 => return Ok(Type::S16),
            T::S32 => return Ok(Type::S32),
            T::S64 => return Ok(Type::S64),
            T::F32 => return Ok(Type::F32),
            T::F64 => return Ok(Type::F64),
            T::Char => return Ok(Type::Char),
            T::String => return Ok(Type::String),
            T::ErrorContext => return Err(self.unsupported("an error-context")),
            T::Id(id) => *id,
        };
        if depth >= MAX_DEPTH {
            return Err(self.unsupported(format!("types nested over {MAX_DEPTH} deep")));
        }
        let Some(def) = self.resolve.types.get(id) else {
            return Err(self.unsupported("an unknown type"));
        };
        let next = |ty: &wit_parser::Type| self.ty(ty, depth + 1);
        let name = || def.name.clone();
        Ok(match &def.kind {
            TypeDefKind::Type(ty) => next(ty)?,
            TypeDefKind::Record(r) => Type::Record(Record {
                name: name(),
                fields: r
                    .fields
                    .iter()
                    .map(|f| Ok((f.name.clone(), next(&f.ty)?)))
                    .collect::<Result<_, WitError>>()?,
            }),
            TypeDefKind::Tuple(t) => {
                Type::Tuple(t.types.iter().map(next).collect::<Result<_, _>>()?)
            }
            TypeDefKind::Variant(v) => Type::Variant(Variant {
                name: name(),
                cases: v
                    .cases
                    .iter()
                    .map(|c| Ok((c.name.clone(), c.ty.as_ref().map(next).transpose()?)))
                    .collect::<Result<_, WitError>>()?,
            }),
            TypeDefKind::Enum(e) => Type::Enum(Enum {
                name: name(),
                cases: e.cases.iter().map(|c| c.name.clone()).collect(),
            }),
            TypeDefKind::Flags(f) => Type::Flags(Flags {
                name: name(),
                flags: f.flags.iter().map(|f| f.name.clone()).collect(),
            }),
            TypeDefKind::Option(ty) => Type::Option(Box::new(next(ty)?)),
            TypeDefKind::Result(r) => Type::Result {
                ok: self.boxed(r.ok.as_ref(), depth + 1)?,
                err: self.boxed(r.err.as_ref(), depth + 1)?,
            },
            TypeDefKind::List(ty) => Type::List(Box::new(next(ty)?)),
            TypeDefKind::FixedLengthList(ty, n) => Type::FixedList(Box::new(next(ty)?), *n),
            TypeDefKind::Map(..) => return Err(self.unsupported("a map")),
            TypeDefKind::Handle(Handle::Own(res)) => Type::Own(self.resource_name(*res)),
            TypeDefKind::Handle(Handle::Borrow(res)) => Type::Borrow(self.resource_name(*res)),
            TypeDefKind::Resource => Type::Own(self.resource_name(id)),
            TypeDefKind::Future(ty) => Type::Future(self.boxed(ty.as_ref(), depth + 1)?),
            TypeDefKind::Stream(ty) => Type::Stream(self.boxed(ty.as_ref(), depth + 1)?),
            TypeDefKind::Unknown => return Err(self.unsupported("an unresolved type")),
        })
    }
}

#[cfg(test)]
mod tests;
