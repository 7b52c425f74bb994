//! The dynamic codec: WIT types with their names, JSON arguments encoded to
//! wRPC bytes, and wRPC result bytes decoded to JSON.
//!
//! Byte layout as `wrpc-transport` 0.29 and `wasm-tokio` 0.6 write it (see
//! `transport::schema::WireType`): `bool`, `u8` and `s8` one byte; other
//! integers LEB128 (signed ones sign-extended); floats little-endian;
//! `char` its UTF-8; strings and lists a LEB128 `u32` length then the
//! bytes or elements; records and tuples their members back to back;
//! `option` and `result` a tag byte (0 none/ok, 1 some/err) then the
//! payload; variants and enums a LEB128 `u32` case index then the payload;
//! flags `ceil(n / 8)` bytes, flag `i` at bit `i % 8` of byte `i / 8`.
//!
//! JSON forms (arguments and results alike):
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool`, integers, floats | `true`, `42`, `1.5` (`"NaN"`, `"Infinity"`, `"-Infinity"` too) |
//! | `char`, `string` | `"x"`, `"text"` |
//! | `list<u8>` | `"text"` (its UTF-8), `[104, 105]` or `{"base64": "aGk="}`; printed as a string when UTF-8, else `{"base64": …}` |
//! | `list<T>`, `tuple<…>` | `[…]` |
//! | `option<T>` | `null` or the value (`{"some": v}` when `T` is itself an option) |
//! | `result<T, E>` | `{"ok": v}` / `{"err": v}` (`null` for a side without a type) |
//! | `record` | `{"field-name": v, …}`, every field, no other |
//! | `variant` | `{"case": v}`, or `"case"` for a case without a payload |
//! | `enum` | `"case"` |
//! | `flags` | `["flag", …]` |
//!
//! Arguments may also be written as WIT values (`some(3)`, `{name: "x"}`):
//! see [`wit_syntax`].

use core::fmt;

use base64::Engine as _;
use serde::ser::{SerializeMap as _, SerializeSeq as _};
use serde_json::Value;
use wit_parser::{Handle, Resolve, Type, TypeDefKind};

mod wit_syntax;

/// Deepest nesting of types followed (the transport's value limit).
const MAX_DEPTH: u32 = 64;

/// A WIT type with the names JSON needs (fields, cases, flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `bool`.
    Bool,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `s8`.
    S8,
    /// `s16`.
    S16,
    /// `s32`.
    S32,
    /// `s64`.
    S64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// `string`.
    String,
    /// `list<T>`.
    List(Box<Ty>),
    /// `option<T>`.
    Option(Box<Ty>),
    /// `result<T, E>`, either side possibly without a type.
    Result {
        /// The `ok` payload.
        ok: Option<Box<Ty>>,
        /// The `err` payload.
        err: Option<Box<Ty>>,
    },
    /// `tuple<…>`.
    Tuple(Vec<Ty>),
    /// A record: its name and fields in order.
    Record {
        /// The type's name.
        name: String,
        /// (field name, type).
        fields: Vec<(String, Ty)>,
    },
    /// A variant: its name and cases in order.
    Variant {
        /// The type's name.
        name: String,
        /// (case name, payload type).
        cases: Vec<(String, Option<Ty>)>,
    },
    /// An enum: its name and cases in order.
    Enum {
        /// The type's name.
        name: String,
        /// Case names.
        cases: Vec<String>,
    },
    /// Flags: their type's name and flag names in order.
    Flags {
        /// The type's name.
        name: String,
        /// Flag names.
        flags: Vec<String>,
    },
    /// A type `call` cannot carry (stream, future, resource handle), as WIT
    /// writes it.
    Unsupported(String),
}

impl Ty {
    /// The type `ty` of `resolve`.
    pub fn from_wit(resolve: &Resolve, ty: &Type) -> Self {
        Self::walk(resolve, ty, 0)
    }

    fn walk(resolve: &Resolve, ty: &Type, depth: u32) -> Self {
        let id = match ty {
            Type::Bool => return Self::Bool,
            Type::U8 => return Self::U8,
            Type::U16 => return Self::U16,
            Type::U32 => return Self::U32,
            Type::U64 => return Self::U64,
            Type::S8 => return Self::S8,
            Type::S16 => return Self::S16,
            Type::S32 => return Self::S32,
            Type::S64 => return Self::S64,
            Type::F32 => return Self::F32,
            Type::F64 => return Self::F64,
            Type::Char => return Self::Char,
            Type::String => return Self::String,
            Type::Id(id) => *id,
        };
        if depth >= MAX_DEPTH {
            return Self::Unsupported(format!("a type nested deeper than {MAX_DEPTH} levels"));
        }
        let Some(def) = resolve.types.get(id) else {
            return Self::Unsupported("an unknown type".into());
        };
        let next = |ty: &Type| Self::walk(resolve, ty, depth + 1);
        let boxed = |ty: &Option<Type>| ty.as_ref().map(|ty| Box::new(next(ty)));
        let name = || def.name.clone().unwrap_or_default();
        match &def.kind {
            TypeDefKind::Type(ty) => next(ty),
            TypeDefKind::Record(r) => Self::Record {
                name: name(),
                fields: r
                    .fields
                    .iter()
                    .map(|f| (f.name.clone(), next(&f.ty)))
                    .collect(),
            },
            TypeDefKind::Tuple(t) => Self::Tuple(t.types.iter().map(next).collect()),
            TypeDefKind::Variant(v) => Self::Variant {
                name: name(),
                cases: v
                    .cases
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.as_ref().map(next)))
                    .collect(),
            },
            TypeDefKind::Enum(e) => Self::Enum {
                name: name(),
                cases: e.cases.iter().map(|c| c.name.clone()).collect(),
            },
            TypeDefKind::Flags(f) => Self::Flags {
                name: name(),
                flags: f.flags.iter().map(|f| f.name.clone()).collect(),
            },
            TypeDefKind::Option(ty) => Self::Option(Box::new(next(ty))),
            TypeDefKind::Result(r) => Self::Result {
                ok: boxed(&r.ok),
                err: boxed(&r.err),
            },
            TypeDefKind::List(ty) => Self::List(Box::new(next(ty))),
            TypeDefKind::Handle(Handle::Own(res)) => {
                Self::Unsupported(format!("own<{}>", type_name(resolve, *res)))
            }
            TypeDefKind::Handle(Handle::Borrow(res)) => {
                Self::Unsupported(format!("borrow<{}>", type_name(resolve, *res)))
            }
            TypeDefKind::Resource => Self::Unsupported(type_name(resolve, id)),
            TypeDefKind::Future(ty) => Self::Unsupported(match ty {
                Some(ty) => format!("future<{}>", next(ty)),
                None => "future".into(),
            }),
            TypeDefKind::Stream(s) => Self::Unsupported(match &s.element {
                Some(ty) => format!("stream<{}>", next(ty)),
                None => "stream".into(),
            }),
            TypeDefKind::Unknown => Self::Unsupported("an unresolved type".into()),
        }
    }

    /// The first type in `self` that `call` cannot carry, if any.
    pub fn unsupported(&self) -> Option<&str> {
        match self {
            Self::Unsupported(what) => Some(what),
            Self::List(ty) | Self::Option(ty) => ty.unsupported(),
            Self::Result { ok, err } => ok
                .as_deref()
                .and_then(Self::unsupported)
                .or_else(|| err.as_deref().and_then(Self::unsupported)),
            Self::Tuple(tys) => tys.iter().find_map(Self::unsupported),
            Self::Record { fields, .. } => fields.iter().find_map(|(_, ty)| ty.unsupported()),
            Self::Variant { cases, .. } => cases
                .iter()
                .find_map(|(_, ty)| ty.as_ref().and_then(Self::unsupported)),
            _ => None,
        }
    }

    /// What JSON this type takes, for error messages (empty when obvious).
    fn hint(&self) -> String {
        let names = |names: &mut dyn Iterator<Item = &String>| {
            names.map(String::as_str).collect::<Vec<_>>().join(", ")
        };
        match self {
            Self::Char => " (a one-character string)".into(),
            Self::List(elem) if **elem == Self::U8 => {
                r#" (a string, an array of bytes or {"base64": "…"})"#.into()
            }
            Self::List(_) => " (an array)".into(),
            Self::Tuple(tys) => format!(" (an array of {})", tys.len()),
            Self::Result { .. } => r#" ({"ok": …} or {"err": …})"#.into(),
            Self::Record { .. } => " (an object)".into(),
            Self::Variant { cases, .. } => format!(
                r#" ("case" or {{"case": …}}; cases: {})"#,
                names(&mut cases.iter().map(|(n, _)| n))
            ),
            Self::Enum { cases, .. } => format!(" (one of: {})", names(&mut cases.iter())),
            Self::Flags { flags, .. } => {
                format!(" (an array of: {})", names(&mut flags.iter()))
            }
            _ => String::new(),
        }
    }
}

fn type_name(resolve: &Resolve, id: wit_parser::TypeId) -> String {
    resolve
        .types
        .get(id)
        .and_then(|def| def.name.clone())
        .unwrap_or_else(|| "resource".into())
}

/// As WIT writes the type (named types by their name).
impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |ty: &Option<Box<Ty>>| ty.as_ref().map_or_else(|| "_".into(), |t| t.to_string());
        match self {
            Self::Bool => f.write_str("bool"),
            Self::U8 => f.write_str("u8"),
            Self::U16 => f.write_str("u16"),
            Self::U32 => f.write_str("u32"),
            Self::U64 => f.write_str("u64"),
            Self::S8 => f.write_str("s8"),
            Self::S16 => f.write_str("s16"),
            Self::S32 => f.write_str("s32"),
            Self::S64 => f.write_str("s64"),
            Self::F32 => f.write_str("f32"),
            Self::F64 => f.write_str("f64"),
            Self::Char => f.write_str("char"),
            Self::String => f.write_str("string"),
            Self::List(ty) => write!(f, "list<{ty}>"),
            Self::Option(ty) => write!(f, "option<{ty}>"),
            Self::Result {
                ok: None,
                err: None,
            } => f.write_str("result"),
            Self::Result { ok, err: None } => write!(f, "result<{}>", side(ok)),
            Self::Result { ok, err } => write!(f, "result<{}, {}>", side(ok), side(err)),
            Self::Tuple(tys) => {
                let tys: Vec<String> = tys.iter().map(ToString::to_string).collect();
                write!(f, "tuple<{}>", tys.join(", "))
            }
            Self::Record { name, .. } => write!(f, "record {name}"),
            Self::Variant { name, .. } => write!(f, "variant {name}"),
            Self::Enum { name, .. } => write!(f, "enum {name}"),
            Self::Flags { name, .. } => write!(f, "flags {name}"),
            Self::Unsupported(what) => f.write_str(what),
        }
    }
}

/// One step into a value: a list or tuple element, or a named member
/// (record field, variant case, `ok`/`err`, `some`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Index(usize),
    Name(String),
}

/// Why a value could not be encoded or decoded, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    path: Vec<Step>,
    message: String,
}

/// The message of a value cut short.
const ENDS_EARLY: &str = "the value ends early";

impl ValueError {
    /// Whether the bytes ended before the value did.
    pub fn ends_early(&self) -> bool {
        self.message == ENDS_EARLY
    }

    fn new(message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// The same error one step further out.
    fn within(mut self, step: Step) -> Self {
        self.path.insert(0, step);
        self
    }
}

/// `[3].qty: expected u32, got -1`, or only the message at the root.
impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.path.iter().enumerate() {
            match step {
                Step::Index(n) => write!(f, "[{n}]")?,
                Step::Name(name) if i == 0 => f.write_str(name)?,
                Step::Name(name) => write!(f, ".{name}")?,
            }
        }
        if !self.path.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValueError {}

/// Encodes the command-line argument `text` as a value of `ty`: JSON in the
/// form `ty` takes, else a WIT-style value (see [`wit_syntax`]), else, for
/// a `string` or `list<u8>` parameter, the text itself as a bare word.
///
/// When it is neither, the error is the WIT reading's, unless the text is
/// JSON (then the JSON form's error) or has a quoted name in braces (then
/// JSON's syntax error).
pub fn encode_arg(ty: &Ty, text: &str, out: &mut Vec<u8>) -> Result<(), ValueError> {
    let start = out.len();
    let json_err = match serde_json::from_str::<Value>(text) {
        Ok(value) => match encode(ty, &value, out) {
            Ok(()) => return Ok(()),
            Err(err) => {
                out.truncate(start);
                // JSON of another form can still be a WIT value: `{}` for
                // flags, or for a record whose fields are all options.
                return match wit_syntax::parse(ty, text) {
                    Ok(value) => encode(ty, &value, out),
                    Err(_) => Err(err),
                };
            }
        },
        Err(err) => err,
    };
    let wit_err = match wit_syntax::parse(ty, text) {
        Ok(value) => return encode(ty, &value, out),
        Err(err) => err,
    };
    if is_text(ty) {
        return encode(ty, &Value::String(text.to_string()), out);
    }
    match wit_err {
        // `{"key": …}` was meant as JSON: JSON's error says what is wrong.
        wit_syntax::Error::Syntax {
            quoted_name: true, ..
        } => Err(ValueError::new(format!(
            "not valid JSON ({json_err}); expected {ty}{}",
            ty.hint()
        ))),
        err => Err(err.into_value_error(text)),
    }
}

fn is_text(ty: &Ty) -> bool {
    match ty {
        Ty::String => true,
        Ty::List(elem) => **elem == Ty::U8,
        _ => false,
    }
}

/// A JSON value in a few characters, for error messages.
fn show(value: &Value) -> String {
    const MAX: usize = 40;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn mismatch(ty: &Ty, value: &Value) -> ValueError {
    ValueError::new(format!("expected {ty}{}, got {}", ty.hint(), show(value)))
}

/// Appends the encoding of `value` as a `ty` to `out`.
pub fn encode(ty: &Ty, value: &Value, out: &mut Vec<u8>) -> Result<(), ValueError> {
    match ty {
        Ty::Bool => {
            let b = value.as_bool().ok_or_else(|| mismatch(ty, value))?;
            out.push(u8::from(b));
        }
        Ty::U8 => out.push(unsigned(ty, value, u8::MAX.into())? as u8),
        Ty::U16 => uleb(out, unsigned(ty, value, u16::MAX.into())?),
        Ty::U32 => uleb(out, unsigned(ty, value, u32::MAX.into())?),
        Ty::U64 => uleb(out, unsigned(ty, value, u64::MAX)?),
        Ty::S8 => out.push(signed(ty, value, i8::MIN.into(), i8::MAX.into())? as i8 as u8),
        Ty::S16 => sleb(out, signed(ty, value, i16::MIN.into(), i16::MAX.into())?),
        Ty::S32 => sleb(out, signed(ty, value, i32::MIN.into(), i32::MAX.into())?),
        Ty::S64 => sleb(out, signed(ty, value, i64::MIN, i64::MAX)?),
        Ty::F32 => {
            let x = float(ty, value)?;
            if x.is_finite() && x.abs() > f64::from(f32::MAX) {
                return Err(ValueError::new(format!(
                    "expected f32, got {} (out of range)",
                    show(value)
                )));
            }
            out.extend_from_slice(&(x as f32).to_le_bytes());
        }
        Ty::F64 => out.extend_from_slice(&float(ty, value)?.to_le_bytes()),
        Ty::Char => {
            let s = value.as_str().ok_or_else(|| mismatch(ty, value))?;
            let mut chars = s.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(mismatch(ty, value));
            };
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        Ty::String => {
            let s = value.as_str().ok_or_else(|| mismatch(ty, value))?;
            bytes(out, s.as_bytes())?;
        }
        Ty::List(elem) if **elem == Ty::U8 => bytes(out, &byte_list(ty, value)?)?,
        Ty::List(elem) => {
            let items = value.as_array().ok_or_else(|| mismatch(ty, value))?;
            uleb(out, length(items.len())?);
            for (i, item) in items.iter().enumerate() {
                encode(elem, item, out).map_err(|e| e.within(Step::Index(i)))?;
            }
        }
        Ty::Option(inner) => match value {
            Value::Null => out.push(0),
            // `option<option<T>>`: `null` is the outer none, `{"some": v}` the outer some.
            _ if matches!(**inner, Ty::Option(_)) => {
                let some = single_key(value)
                    .filter(|(k, _)| *k == "some")
                    .ok_or_else(|| {
                        ValueError::new(format!(
                            r#"expected {ty} (null or {{"some": …}}), got {}"#,
                            show(value)
                        ))
                    })?;
                out.push(1);
                encode(inner, some.1, out).map_err(|e| e.within(Step::Name("some".into())))?;
            }
            _ => {
                out.push(1);
                encode(inner, value, out)?;
            }
        },
        Ty::Result { ok, err } => {
            let (side, payload) = case_of(value).ok_or_else(|| mismatch(ty, value))?;
            let (tag, payload_ty) = match side {
                "ok" => (0, ok),
                "err" => (1, err),
                _ => return Err(mismatch(ty, value)),
            };
            out.push(tag);
            payload_of(payload_ty.as_deref(), payload, out)
                .map_err(|e| e.within(Step::Name(side.into())))?;
        }
        Ty::Tuple(tys) => {
            let items = value
                .as_array()
                .filter(|items| items.len() == tys.len())
                .ok_or_else(|| mismatch(ty, value))?;
            for (i, (ty, item)) in tys.iter().zip(items).enumerate() {
                encode(ty, item, out).map_err(|e| e.within(Step::Index(i)))?;
            }
        }
        Ty::Record { fields, .. } => {
            let object = value.as_object().ok_or_else(|| mismatch(ty, value))?;
            if let Some(unknown) = object.keys().find(|k| !fields.iter().any(|(n, _)| n == *k)) {
                let known: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ValueError::new(format!(
                    "unknown field `{unknown}` of {ty} (fields: {})",
                    known.join(", ")
                )));
            }
            for (name, field_ty) in fields {
                let field = object
                    .get(name)
                    .ok_or_else(|| ValueError::new(format!("missing field `{name}` of {ty}")))?;
                encode(field_ty, field, out).map_err(|e| e.within(Step::Name(name.clone())))?;
            }
        }
        Ty::Variant { cases, .. } => {
            let (case, payload) = case_of(value).ok_or_else(|| mismatch(ty, value))?;
            let Some(index) = cases.iter().position(|(n, _)| n == case) else {
                return Err(ValueError::new(format!(
                    "unknown case `{case}` of {ty}{}",
                    ty.hint()
                )));
            };
            uleb(out, length(index)?);
            let case_ty = cases.get(index).and_then(|(_, ty)| ty.as_ref());
            payload_of(case_ty, payload, out).map_err(|e| e.within(Step::Name(case.into())))?;
        }
        Ty::Enum { cases, .. } => {
            let case = value.as_str().ok_or_else(|| mismatch(ty, value))?;
            let index = cases.iter().position(|c| c == case).ok_or_else(|| {
                ValueError::new(format!("unknown case `{case}` of {ty}{}", ty.hint()))
            })?;
            uleb(out, length(index)?);
        }
        Ty::Flags { flags, .. } => {
            let names = value.as_array().ok_or_else(|| mismatch(ty, value))?;
            let mut bits = vec![0u8; flags.len().div_ceil(8)];
            for (i, name) in names.iter().enumerate() {
                let index = name
                    .as_str()
                    .and_then(|name| flags.iter().position(|f| f == name))
                    .ok_or_else(|| {
                        ValueError::new(format!("unknown flag {} of {ty}{}", show(name), ty.hint()))
                            .within(Step::Index(i))
                    })?;
                if let Some(byte) = bits.get_mut(index / 8) {
                    *byte |= 1 << (index % 8);
                }
            }
            out.extend_from_slice(&bits);
        }
        Ty::Unsupported(what) => return Err(unsupported(what)),
    }
    Ok(())
}

/// The error for a type `call` cannot carry.
pub fn unsupported(what: &str) -> ValueError {
    ValueError::new(format!(
        "{what} is not supported by `call` yet (no streams, futures or resources)"
    ))
}

/// `"case"` (no payload) or `{"case": payload}`.
fn case_of(value: &Value) -> Option<(&str, Option<&Value>)> {
    match value {
        Value::String(case) => Some((case, None)),
        _ => single_key(value).map(|(k, v)| (k, Some(v))),
    }
}

fn single_key(value: &Value) -> Option<(&str, &Value)> {
    let object = value.as_object()?;
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((k, v)), None) => Some((k.as_str(), v)),
        _ => None,
    }
}

/// The payload of a case: required when the case has a type, else absent or `null`.
fn payload_of(
    ty: Option<&Ty>,
    payload: Option<&Value>,
    out: &mut Vec<u8>,
) -> Result<(), ValueError> {
    match (ty, payload) {
        (Some(ty), Some(value)) => encode(ty, value, out),
        (Some(ty), None) => Err(ValueError::new(format!("expected a payload of type {ty}"))),
        (None, None | Some(Value::Null)) => Ok(()),
        (None, Some(value)) => Err(ValueError::new(format!(
            "this case has no payload (use null), got {}",
            show(value)
        ))),
    }
}

fn unsigned(ty: &Ty, value: &Value, max: u64) -> Result<u64, ValueError> {
    value
        .as_u64()
        .filter(|n| *n <= max)
        .ok_or_else(|| mismatch(ty, value))
}

fn signed(ty: &Ty, value: &Value, min: i64, max: i64) -> Result<i64, ValueError> {
    value
        .as_i64()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| mismatch(ty, value))
}

fn float(ty: &Ty, value: &Value) -> Result<f64, ValueError> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| mismatch(ty, value)),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(mismatch(ty, value)),
        },
        _ => Err(mismatch(ty, value)),
    }
}

/// A `list<u8>` from a string (its UTF-8), an array of bytes or `{"base64": …}`.
fn byte_list(ty: &Ty, value: &Value) -> Result<Vec<u8>, ValueError> {
    match value {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                unsigned(&Ty::U8, item, u8::MAX.into())
                    .map(|b| b as u8)
                    .map_err(|e| e.within(Step::Index(i)))
            })
            .collect(),
        _ => {
            let (key, encoded) = single_key(value)
                .filter(|(k, _)| *k == "base64")
                .ok_or_else(|| mismatch(ty, value))?;
            let text = encoded.as_str().ok_or_else(|| {
                ValueError::new(format!("expected a base64 string, got {}", show(encoded)))
                    .within(Step::Name(key.into()))
            })?;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|err| {
                    ValueError::new(format!("not base64: {err}")).within(Step::Name(key.into()))
                })
        }
    }
}

fn length(n: usize) -> Result<u64, ValueError> {
    u32::try_from(n)
        .map(u64::from)
        .map_err(|_| ValueError::new(format!("{n} elements are more than wRPC can carry")))
}

fn bytes(out: &mut Vec<u8>, data: &[u8]) -> Result<(), ValueError> {
    uleb(out, length(data.len())?);
    out.extend_from_slice(data);
    Ok(())
}

/// Unsigned LEB128, shortest form.
fn uleb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Signed LEB128, shortest form.
fn sleb(out: &mut Vec<u8>, mut n: i64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let sign = byte & 0x40 != 0;
        if (n == 0 && !sign) || (n == -1 && sign) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A JSON value keeping object members in order (record fields as WIT declares them).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in this order.
    Object(Vec<(String, Json)>),
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Number(n) => n.serialize(s),
            Self::String(text) => s.serialize_str(text),
            Self::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => Self::Number(n),
            Value::String(s) => Self::String(s),
            Value::Array(items) => Self::Array(items.into_iter().map(Self::from).collect()),
            Value::Object(map) => {
                Self::Object(map.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

/// Decodes values of `types`, back to back, that fill all of `buf`.
pub fn decode_all(types: &[&Ty], buf: &[u8]) -> Result<Vec<Json>, ValueError> {
    let mut reader = Reader { buf, pos: 0 };
    let values = types
        .iter()
        .map(|ty| reader.value(ty))
        .collect::<Result<Vec<_>, _>>()?;
    if reader.pos != buf.len() {
        return Err(ValueError::new(format!(
            "{} bytes after the value",
            buf.len() - reader.pos
        )));
    }
    Ok(values)
}

/// Reads values from a complete buffer.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        let end = self.pos.checked_add(n);
        let bytes = end
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or_else(|| ValueError::new(ENDS_EARLY))?;
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, ValueError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Unsigned LEB128 of at most `bits` bits.
    fn uleb(&mut self, bits: u32) -> Result<u64, ValueError> {
        let mut n = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = self.byte()?;
            if shift >= bits {
                return Err(ValueError::new("malformed LEB128 integer"));
            }
            n |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if bits < 64 && n >> bits != 0 {
            return Err(ValueError::new("malformed LEB128 integer"));
        }
        Ok(n)
    }

    /// Signed LEB128 of at most `bits` bits.
    fn sleb(&mut self, bits: u32) -> Result<i64, ValueError> {
        let mut n = 0i64;
        let mut shift = 0u32;
        loop {
            let byte = self.byte()?;
            if shift >= bits {
                return Err(ValueError::new("malformed LEB128 integer"));
            }
            n |= i64::from(byte & 0x7f).wrapping_shl(shift);
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    n |= -1i64 << shift;
                }
                break;
            }
        }
        let min = -1i64 << (bits - 1);
        if n < min || n > !min {
            return Err(ValueError::new("malformed LEB128 integer"));
        }
        Ok(n)
    }

    fn len(&mut self) -> Result<usize, ValueError> {
        let n = self.uleb(32)?;
        usize::try_from(n).map_err(|_| ValueError::new("a length that does not fit in memory"))
    }

    fn case(&mut self, count: usize) -> Result<usize, ValueError> {
        let index = self.len()?;
        if index >= count {
            return Err(ValueError::new(format!("case {index} of {count}")));
        }
        Ok(index)
    }

    fn tag(&mut self) -> Result<bool, ValueError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(ValueError::new(format!("invalid tag byte {b}"))),
        }
    }

    fn value(&mut self, ty: &Ty) -> Result<Json, ValueError> {
        let number = |n: serde_json::Number| Json::Number(n);
        Ok(match ty {
            Ty::Bool => match self.byte()? {
                0 => Json::Bool(false),
                1 => Json::Bool(true),
                b => return Err(ValueError::new(format!("invalid bool byte {b}"))),
            },
            Ty::U8 => number(self.byte()?.into()),
            Ty::U16 => number(self.uleb(16)?.into()),
            Ty::U32 => number(self.uleb(32)?.into()),
            Ty::U64 => number(self.uleb(64)?.into()),
            Ty::S8 => number((self.byte()? as i8).into()),
            Ty::S16 => number(self.sleb(16)?.into()),
            Ty::S32 => number(self.sleb(32)?.into()),
            Ty::S64 => number(self.sleb(64)?.into()),
            Ty::F32 => f32_json(f32::from_le_bytes(self.array()?)),
            Ty::F64 => f64_json(f64::from_le_bytes(self.array()?)),
            Ty::Char => {
                let first = self.byte()?;
                let width = match first {
                    0x00..=0x7f => 1,
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf7 => 4,
                    _ => return Err(ValueError::new("invalid UTF-8")),
                };
                self.pos -= 1;
                let bytes = self.take(width)?;
                let s =
                    core::str::from_utf8(bytes).map_err(|_| ValueError::new("invalid UTF-8"))?;
                Json::String(s.to_string())
            }
            Ty::String => {
                let n = self.len()?;
                let s = core::str::from_utf8(self.take(n)?)
                    .map_err(|_| ValueError::new("invalid UTF-8"))?;
                Json::String(s.to_string())
            }
            Ty::List(elem) if **elem == Ty::U8 => {
                let n = self.len()?;
                bytes_json(self.take(n)?)
            }
            Ty::List(elem) => {
                let n = self.len()?;
                // Every element takes at least a byte: bound the allocation by what is left.
                let mut items = Vec::with_capacity(n.min(self.buf.len() - self.pos));
                for i in 0..n {
                    items.push(self.value(elem).map_err(|e| e.within(Step::Index(i)))?);
                }
                Json::Array(items)
            }
            Ty::Option(inner) => {
                if !self.tag()? {
                    Json::Null
                } else if matches!(**inner, Ty::Option(_)) {
                    let some = self
                        .value(inner)
                        .map_err(|e| e.within(Step::Name("some".into())))?;
                    Json::Object(vec![("some".into(), some)])
                } else {
                    self.value(inner)?
                }
            }
            Ty::Result { ok, err } => {
                let (side, ty) = if self.tag()? {
                    ("err", err)
                } else {
                    ("ok", ok)
                };
                let payload = match ty {
                    Some(ty) => self
                        .value(ty)
                        .map_err(|e| e.within(Step::Name(side.into())))?,
                    None => Json::Null,
                };
                Json::Object(vec![(side.into(), payload)])
            }
            Ty::Tuple(tys) => Json::Array(
                tys.iter()
                    .enumerate()
                    .map(|(i, ty)| self.value(ty).map_err(|e| e.within(Step::Index(i))))
                    .collect::<Result<_, _>>()?,
            ),
            Ty::Record { fields, .. } => Json::Object(
                fields
                    .iter()
                    .map(|(name, ty)| {
                        self.value(ty)
                            .map(|v| (name.clone(), v))
                            .map_err(|e| e.within(Step::Name(name.clone())))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Ty::Variant { cases, .. } => {
                let index = self.case(cases.len())?;
                match cases.get(index) {
                    Some((name, Some(ty))) => {
                        let payload = self
                            .value(ty)
                            .map_err(|e| e.within(Step::Name(name.clone())))?;
                        Json::Object(vec![(name.clone(), payload)])
                    }
                    Some((name, None)) => Json::String(name.clone()),
                    None => return Err(ValueError::new("invalid variant case")),
                }
            }
            Ty::Enum { cases, .. } => {
                let index = self.case(cases.len())?;
                Json::String(cases.get(index).cloned().unwrap_or_default())
            }
            Ty::Flags { flags, .. } => {
                let bits = self.take(flags.len().div_ceil(8))?;
                let set = flags
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
                    .map(|(_, name)| Json::String(name.clone()))
                    .collect();
                Json::Array(set)
            }
            Ty::Unsupported(what) => return Err(unsupported(what)),
        })
    }
}

/// A `list<u8>`: a string when it is UTF-8, else `{"base64": …}`.
fn bytes_json(bytes: &[u8]) -> Json {
    match core::str::from_utf8(bytes) {
        Ok(s) => Json::String(s.to_string()),
        Err(_) => Json::Object(vec![(
            "base64".into(),
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        )]),
    }
}

/// Non-finite floats as the strings `encode` takes back.
fn non_finite(x: f64) -> Json {
    Json::String(
        if x.is_nan() {
            "NaN"
        } else if x > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .into(),
    )
}

/// An `f32` in its shortest decimal form (`0.1`, not `0.10000000149011612`).
fn f32_json(x: f32) -> Json {
    if !x.is_finite() {
        return non_finite(x.into());
    }
    serde_json::from_str::<serde_json::Number>(&format!("{x:?}"))
        .ok()
        .or_else(|| serde_json::Number::from_f64(x.into()))
        .map_or(Json::Null, Json::Number)
}

fn f64_json(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or_else(|| non_finite(x), Json::Number)
}

#[cfg(test)]
mod tests;
