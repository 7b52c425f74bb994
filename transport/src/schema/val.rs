//! The Wasmtime face of the codec, for the host: component types to
//! [`Type`]s, `Val`s encoded through [`Source`], and decoded into `Val`s by
//! [`ToVal`]. Futures and streams are left to the caller, who owns the
//! store they live in.

use std::borrow::Cow;

use wasmtime::component::types::Type as WasmType;
use wasmtime::component::Val;

use super::codec::{Decoded, EncodeError, Sink, Source, View};
use super::{Enum, Flags, Record, Type, Variant};

/// The [`Type`] of a component type.
///
/// # Errors
///
/// What wRPC cannot carry: a `map` or an `error-context`, named as WIT
/// writes it.
pub fn type_of(ty: &WasmType) -> Result<Type, String> {
    let boxed = |ty: Option<WasmType>| ty.map(|t| type_of(&t).map(Box::new)).transpose();
    Ok(match ty {
        WasmType::Bool => Type::Bool,
        WasmType::S8 => Type::S8,
        WasmType::U8 => Type::U8,
        WasmType::S16 => Type::S16,
        WasmType::U16 => Type::U16,
        WasmType::S32 => Type::S32,
        WasmType::U32 => Type::U32,
        WasmType::S64 => Type::S64,
        WasmType::U64 => Type::U64,
        WasmType::Float32 => Type::F32,
        WasmType::Float64 => Type::F64,
        WasmType::Char => Type::Char,
        WasmType::String => Type::String,
        WasmType::List(l) => Type::List(Box::new(type_of(&l.ty())?)),
        WasmType::FixedLengthList(l) => Type::FixedList(Box::new(type_of(&l.ty())?), l.len()),
        WasmType::Record(r) => Type::Record(Record {
            name: None,
            fields: r
                .fields()
                .map(|f| Ok((f.name.to_string(), type_of(&f.ty)?)))
                .collect::<Result<_, String>>()?,
        }),
        WasmType::Tuple(t) => {
            Type::Tuple(t.types().map(|t| type_of(&t)).collect::<Result<_, _>>()?)
        }
        WasmType::Variant(v) => Type::Variant(Variant {
            name: None,
            cases: v
                .cases()
                .map(|c| Ok((c.name.to_string(), c.ty.as_ref().map(type_of).transpose()?)))
                .collect::<Result<_, String>>()?,
        }),
        WasmType::Enum(e) => Type::Enum(Enum {
            name: None,
            cases: e.names().map(str::to_string).collect(),
        }),
        WasmType::Flags(f) => Type::Flags(Flags {
            name: None,
            flags: f.names().map(str::to_string).collect(),
        }),
        WasmType::Option(o) => Type::Option(Box::new(type_of(&o.ty())?)),
        WasmType::Result(r) => Type::Result {
            ok: boxed(r.ok())?,
            err: boxed(r.err())?,
        },
        WasmType::Own(_) => Type::Own("resource".into()),
        WasmType::Borrow(_) => Type::Borrow("resource".into()),
        WasmType::Future(f) => Type::Future(boxed(f.ty())?),
        WasmType::Stream(s) => Type::Stream(boxed(s.ty())?),
        WasmType::Map(_) => return Err("a map".into()),
        WasmType::ErrorContext => return Err("an error-context".into()),
    })
}

fn mismatch(ty: &Type, value: &Val) -> EncodeError {
    EncodeError::new(format!("expected {ty}, got {}", kind(value)))
}

/// What a `Val` is, for messages.
fn kind(value: &Val) -> &'static str {
    match value {
        Val::Bool(_) => "a bool",
        Val::S8(_) | Val::S16(_) | Val::S32(_) | Val::S64(_) => "a signed integer",
        Val::U8(_) | Val::U16(_) | Val::U32(_) | Val::U64(_) => "an unsigned integer",
        Val::Float32(_) | Val::Float64(_) => "a float",
        Val::Char(_) => "a char",
        Val::String(_) => "a string",
        Val::List(_) => "a list",
        Val::FixedLengthList(_) => "a fixed-length list",
        Val::Map(_) => "a map",
        Val::Record(_) => "a record",
        Val::Tuple(_) => "a tuple",
        Val::Variant(..) => "a variant",
        Val::Enum(_) => "an enum",
        Val::Option(_) => "an option",
        Val::Result(_) => "a result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "a resource",
        Val::Future(_) => "a future",
        Val::Stream(_) => "a stream",
        Val::ErrorContext(_) => "an error-context",
    }
}

/// The index of `name` among `names`.
fn index_of<'n>(mut names: impl Iterator<Item = &'n str>, name: &str) -> Option<u32> {
    names
        .position(|n| n == name)
        .and_then(|i| u32::try_from(i).ok())
}

impl Source for Val {
    fn view(&self, ty: &Type) -> Result<View<'_, Self>, EncodeError> {
        Ok(match (ty, self) {
            (Type::Bool, Val::Bool(b)) => View::Bool(*b),
            (Type::U8, Val::U8(n)) => View::U8(*n),
            (Type::U16, Val::U16(n)) => View::U16(*n),
            (Type::U32, Val::U32(n)) => View::U32(*n),
            (Type::U64, Val::U64(n)) => View::U64(*n),
            (Type::S8, Val::S8(n)) => View::S8(*n),
            (Type::S16, Val::S16(n)) => View::S16(*n),
            (Type::S32, Val::S32(n)) => View::S32(*n),
            (Type::S64, Val::S64(n)) => View::S64(*n),
            (Type::F32, Val::Float32(x)) => View::F32(*x),
            (Type::F64, Val::Float64(x)) => View::F64(*x),
            (Type::Char, Val::Char(c)) => View::Char(*c),
            (Type::String, Val::String(s)) => View::String(Cow::Borrowed(s)),
            (
                Type::List(elem) | Type::FixedList(elem, _),
                Val::List(items) | Val::FixedLengthList(items),
            ) if **elem == Type::U8 => {
                let bytes = items
                    .iter()
                    .map(|v| match v {
                        Val::U8(b) => Ok(*b),
                        other => Err(mismatch(elem, other)),
                    })
                    .collect::<Result<Vec<u8>, _>>()?;
                View::Bytes(Cow::Owned(bytes))
            }
            (
                Type::List(_) | Type::FixedList(..),
                Val::List(items) | Val::FixedLengthList(items),
            ) => View::Items(items.iter().collect()),
            (Type::Tuple(_), Val::Tuple(items)) => View::Items(items.iter().collect()),
            (Type::Record(_), Val::Record(fields)) => {
                View::Items(fields.iter().map(|(_, v)| v).collect())
            }
            (Type::Variant(v), Val::Variant(name, payload)) => {
                let i = index_of(v.cases.iter().map(|(n, _)| n.as_str()), name)
                    .ok_or_else(|| EncodeError::new(format!("no case `{name}` in {ty}")))?;
                View::Case(i, payload.as_deref())
            }
            (Type::Enum(e), Val::Enum(name)) => {
                let i = index_of(e.cases.iter().map(String::as_str), name)
                    .ok_or_else(|| EncodeError::new(format!("no case `{name}` in {ty}")))?;
                View::Case(i, None)
            }
            (Type::Option(_), Val::Option(None)) => View::Case(0, None),
            (Type::Option(_), Val::Option(Some(v))) => View::Case(1, Some(v)),
            (Type::Result { .. }, Val::Result(Ok(v))) => View::Case(0, v.as_deref()),
            (Type::Result { .. }, Val::Result(Err(v))) => View::Case(1, v.as_deref()),
            (Type::Flags(f), Val::Flags(names)) => {
                let mut bits = vec![0u8; f.width()];
                for name in names {
                    let i = index_of(f.flags.iter().map(String::as_str), name)
                        .ok_or_else(|| EncodeError::new(format!("no flag `{name}` in {ty}")))?
                        as usize;
                    if let Some(byte) = bits.get_mut(i / 8) {
                        *byte |= 1 << (i % 8);
                    }
                }
                View::Flags(Cow::Owned(bits))
            }
            (Type::Future(_), Val::Future(_)) | (Type::Stream(_), Val::Stream(_)) => View::Async,
            (ty, value) => return Err(mismatch(ty, value)),
        })
    }
}

/// A future or stream the decoder found, for the caller to make in its store.
#[derive(Debug)]
pub enum AsyncVal {
    /// Its contents follow on this path (relative to the decoded tuple).
    Pending(Vec<usize>),
    /// A future whose value came with it (`None` for `future` without a type).
    Ready(Option<Val>),
    /// A stream whose elements all came with it (a `Val::List`).
    Inline(Val),
}

/// Builds `Val`s; futures and streams are made by `asyncs`, which gets the
/// type (`Type::Future` or `Type::Stream`) and what came with it.
pub struct ToVal<'f> {
    /// Makes each future and stream.
    pub asyncs: &'f mut (dyn FnMut(&Type, AsyncVal) -> Result<Val, String> + Send),
}

impl core::fmt::Debug for ToVal<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ToVal")
    }
}

/// The names of the set bits of `bits` among `names`.
fn flag_names(names: &[String], bits: &[u8]) -> Vec<String> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
        .map(|(_, n)| n.clone())
        .collect()
}

impl Sink for ToVal<'_> {
    type Value = Val;

    fn value(&mut self, ty: &Type, decoded: Decoded<'_, Val>) -> Result<Val, String> {
        let case_name = |names: &mut dyn Iterator<Item = &String>, i: u32| {
            names
                .nth(i as usize)
                .cloned()
                .ok_or_else(|| format!("no case {i} in {ty}"))
        };
        Ok(match (ty, decoded) {
            (_, Decoded::Bool(b)) => Val::Bool(b),
            (_, Decoded::U8(n)) => Val::U8(n),
            (_, Decoded::U16(n)) => Val::U16(n),
            (_, Decoded::U32(n)) => Val::U32(n),
            (_, Decoded::U64(n)) => Val::U64(n),
            (_, Decoded::S8(n)) => Val::S8(n),
            (_, Decoded::S16(n)) => Val::S16(n),
            (_, Decoded::S32(n)) => Val::S32(n),
            (_, Decoded::S64(n)) => Val::S64(n),
            (_, Decoded::F32(x)) => Val::Float32(x),
            (_, Decoded::F64(x)) => Val::Float64(x),
            (_, Decoded::Char(c)) => Val::Char(c),
            (_, Decoded::String(s)) => Val::String(s.to_string()),
            (Type::FixedList(..), Decoded::Bytes(b)) => {
                Val::FixedLengthList(b.iter().copied().map(Val::U8).collect())
            }
            (_, Decoded::Bytes(b)) => Val::List(b.iter().copied().map(Val::U8).collect()),
            (Type::FixedList(..), Decoded::Items(items)) => Val::FixedLengthList(items),
            (Type::List(_), Decoded::Items(items)) => Val::List(items),
            (Type::Record(r), Decoded::Items(items)) => {
                Val::Record(r.fields.iter().map(|(n, _)| n.clone()).zip(items).collect())
            }
            (_, Decoded::Items(items)) => Val::Tuple(items),
            (Type::Variant(v), Decoded::Case(i, payload)) => Val::Variant(
                case_name(&mut v.cases.iter().map(|(n, _)| n), i)?,
                payload.map(Box::new),
            ),
            (Type::Enum(e), Decoded::Case(i, _)) => Val::Enum(case_name(&mut e.cases.iter(), i)?),
            (Type::Option(_), Decoded::Case(_, payload)) => Val::Option(payload.map(Box::new)),
            (Type::Result { .. }, Decoded::Case(0, payload)) => {
                Val::Result(Ok(payload.map(Box::new)))
            }
            (Type::Result { .. }, Decoded::Case(_, payload)) => {
                Val::Result(Err(payload.map(Box::new)))
            }
            (Type::Flags(f), Decoded::Flags(bits)) => Val::Flags(flag_names(&f.flags, bits)),
            (_, Decoded::Pending(path)) => (self.asyncs)(ty, AsyncVal::Pending(path))?,
            (_, Decoded::Ready(value)) => (self.asyncs)(ty, AsyncVal::Ready(value))?,
            (_, Decoded::Inline(list)) => (self.asyncs)(ty, AsyncVal::Inline(list))?,
            (ty, Decoded::Handle(_)) => return Err(format!("{ty} cannot be received here")),
            (ty, _) => return Err(format!("a value that is not a {ty}")),
        })
    }
}
