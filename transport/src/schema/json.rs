//! The JSON face of the codec, for `wrpc-ext`: command-line arguments
//! (JSON, WIT-style values, bare words) encoded by their WIT types, and
//! results decoded to JSON.
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool`, integers, floats | `true`, `42`, `1.5` (`"NaN"`, `"Infinity"`, `"-Infinity"` too) |
//! | `char`, `string` | `"x"`, `"text"` |
//! | `list<u8>` | `"text"` (its UTF-8), `[104, 105]` or `{"base64": "aGk="}`; printed as a string when UTF-8, else `{"base64": …}` |
//! | `list<T>`, `list<T, N>`, `tuple<…>` | `[…]` |
//! | `option<T>` | `null` or the value (`{"some": v}` when `T` is itself an option) |
//! | `result<T, E>` | `{"ok": v}` / `{"err": v}` (`null` for a side without a type) |
//! | `record` | `{"field-name": v, …}`, every field, no other |
//! | `variant` | `{"case": v}`, or `"case"` for a case without a payload |
//! | `enum` | `"case"` |
//! | `flags` | `["flag", …]` |
//!
//! Arguments may also be written as WIT values (`some(3)`, `{name: "x"}`):
//! see [`wit_syntax`].

mod decode;
mod wit_syntax;

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::Value;

pub use decode::{decode_all, Json};

use super::codec::{encode_value, EncodeError, Source, Step, View};
use super::Type;

/// Encodes the command-line argument `text` as a value of `ty`: JSON in the
/// form `ty` takes, else a WIT-style value (see [`wit_syntax`]), else, for
/// a `string` or `list<u8>` parameter, the text itself as a bare word.
///
/// When it is neither, the error is the WIT reading's, unless the text is
/// JSON (then the JSON form's error) or has a quoted name in braces (then
/// JSON's syntax error).
///
/// # Errors
///
/// [`EncodeError`] naming where in the value it does not fit `ty`.
pub fn encode_arg(ty: &Type, text: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
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
        } => Err(EncodeError::new(format!(
            "not valid JSON ({json_err}); expected {ty}{}",
            hint(ty)
        ))),
        err => Err(err.into_encode_error(text)),
    }
}

/// Appends the encoding of the JSON `value` as a `ty` to `out`.
///
/// # Errors
///
/// [`EncodeError`] naming where in the value it does not fit `ty`; a
/// future, stream or handle (which `wrpc-ext` cannot send).
pub fn encode(ty: &Type, value: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let deferred = encode_value(ty, value, out)?;
    match deferred.first() {
        Some(d) => Err(unsupported(&d.ty.to_string())),
        None => Ok(()),
    }
}

/// The first type in `ty` that `wrpc-ext` cannot carry (a stream, future
/// or resource handle), as WIT writes it.
pub fn first_unsupported(ty: &Type) -> Option<String> {
    match ty {
        Type::Future(_) | Type::Stream(_) | Type::Own(_) | Type::Borrow(_) => Some(ty.to_string()),
        Type::List(t) | Type::FixedList(t, _) | Type::Option(t) => first_unsupported(t),
        Type::Result { ok, err } => ok
            .as_deref()
            .and_then(first_unsupported)
            .or_else(|| err.as_deref().and_then(first_unsupported)),
        Type::Tuple(tys) => tys.iter().find_map(first_unsupported),
        Type::Record(r) => r.fields.iter().find_map(|(_, t)| first_unsupported(t)),
        Type::Variant(v) => v
            .cases
            .iter()
            .flat_map(|(_, t)| t)
            .find_map(first_unsupported),
        _ => None,
    }
}

/// The error for a type `wrpc-ext` cannot carry.
pub fn unsupported(what: &str) -> EncodeError {
    EncodeError::new(format!(
        "{what} is not supported by `call` yet (no streams, futures or resources)"
    ))
}

fn is_text(ty: &Type) -> bool {
    match ty {
        Type::String => true,
        Type::List(elem) => **elem == Type::U8,
        _ => false,
    }
}

/// What JSON `ty` takes, for error messages (empty when obvious).
pub fn hint(ty: &Type) -> String {
    let names = |names: &mut dyn Iterator<Item = &String>| {
        names.map(String::as_str).collect::<Vec<_>>().join(", ")
    };
    match ty {
        Type::Char => " (a one-character string)".into(),
        Type::List(elem) if **elem == Type::U8 => {
            r#" (a string, an array of bytes or {"base64": "…"})"#.into()
        }
        Type::List(_) => " (an array)".into(),
        Type::FixedList(_, n) => format!(" (an array of {n})"),
        Type::Tuple(tys) => format!(" (an array of {})", tys.len()),
        Type::Result { .. } => r#" ({"ok": …} or {"err": …})"#.into(),
        Type::Record(_) => " (an object)".into(),
        Type::Variant(v) => format!(
            r#" ("case" or {{"case": …}}; cases: {})"#,
            names(&mut v.cases.iter().map(|(n, _)| n))
        ),
        Type::Enum(e) => format!(" (one of: {})", names(&mut e.cases.iter())),
        Type::Flags(f) => format!(" (an array of: {})", names(&mut f.flags.iter())),
        _ => String::new(),
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

fn mismatch(ty: &Type, value: &Value) -> EncodeError {
    EncodeError::new(format!("expected {ty}{}, got {}", hint(ty), show(value)))
}

/// A JSON value read as the encoder asks, type by type.
impl Source for Value {
    fn view(&self, ty: &Type) -> Result<View<'_, Self>, EncodeError> {
        let value = self;
        Ok(match ty {
            Type::Bool => View::Bool(value.as_bool().ok_or_else(|| mismatch(ty, value))?),
            Type::U8 => View::U8(unsigned(ty, value, u8::MAX.into())? as u8),
            Type::U16 => View::U16(unsigned(ty, value, u16::MAX.into())? as u16),
            Type::U32 => View::U32(unsigned(ty, value, u32::MAX.into())? as u32),
            Type::U64 => View::U64(unsigned(ty, value, u64::MAX)?),
            Type::S8 => View::S8(signed(ty, value, i8::MIN.into(), i8::MAX.into())? as i8),
            Type::S16 => View::S16(signed(ty, value, i16::MIN.into(), i16::MAX.into())? as i16),
            Type::S32 => View::S32(signed(ty, value, i32::MIN.into(), i32::MAX.into())? as i32),
            Type::S64 => View::S64(signed(ty, value, i64::MIN, i64::MAX)?),
            Type::F32 => {
                let x = float(ty, value)?;
                // Out of range when it rounds to infinity: `3.4028235e38`,
                // as `f32::MAX` prints, is a little over it as an f64.
                if x.is_finite() && (x as f32).is_infinite() {
                    return Err(EncodeError::new(format!(
                        "expected f32, got {} (out of range)",
                        show(value)
                    )));
                }
                View::F32(x as f32)
            }
            Type::F64 => View::F64(float(ty, value)?),
            Type::Char => {
                let s = value.as_str().ok_or_else(|| mismatch(ty, value))?;
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => View::Char(c),
                    _ => return Err(mismatch(ty, value)),
                }
            }
            Type::String => View::String(Cow::Borrowed(
                value.as_str().ok_or_else(|| mismatch(ty, value))?,
            )),
            Type::List(elem) | Type::FixedList(elem, _) if **elem == Type::U8 => {
                View::Bytes(byte_list(ty, value)?)
            }
            Type::List(_) => View::Items(
                value
                    .as_array()
                    .ok_or_else(|| mismatch(ty, value))?
                    .iter()
                    .collect(),
            ),
            Type::FixedList(_, n) => View::Items(
                value
                    .as_array()
                    .filter(|items| items.len() == *n as usize)
                    .ok_or_else(|| mismatch(ty, value))?
                    .iter()
                    .collect(),
            ),
            Type::Tuple(tys) => View::Items(
                value
                    .as_array()
                    .filter(|items| items.len() == tys.len())
                    .ok_or_else(|| mismatch(ty, value))?
                    .iter()
                    .collect(),
            ),
            Type::Record(r) => {
                let object = value.as_object().ok_or_else(|| mismatch(ty, value))?;
                if let Some(unknown) = object
                    .keys()
                    .find(|k| !r.fields.iter().any(|(n, _)| n == *k))
                {
                    let known: Vec<&str> = r.fields.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(EncodeError::new(format!(
                        "unknown field `{unknown}` of {ty} (fields: {})",
                        known.join(", ")
                    )));
                }
                let fields = r
                    .fields
                    .iter()
                    .map(|(name, _)| {
                        object.get(name).ok_or_else(|| {
                            EncodeError::new(format!("missing field `{name}` of {ty}"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                View::Items(fields)
            }
            Type::Variant(v) => {
                let (case, payload) = case_of(value).ok_or_else(|| mismatch(ty, value))?;
                let Some(index) = v.cases.iter().position(|(n, _)| n == case) else {
                    return Err(EncodeError::new(format!(
                        "unknown case `{case}` of {ty}{}",
                        hint(ty)
                    )));
                };
                let case_ty = v.cases.get(index).and_then(|(_, t)| t.as_ref());
                let payload =
                    payload_of(case_ty, payload).map_err(|e| e.within(Step::Name(case.into())))?;
                View::Case(index as u32, payload)
            }
            Type::Enum(e) => {
                let case = value.as_str().ok_or_else(|| mismatch(ty, value))?;
                let index = e.cases.iter().position(|c| c == case).ok_or_else(|| {
                    EncodeError::new(format!("unknown case `{case}` of {ty}{}", hint(ty)))
                })?;
                View::Case(index as u32, None)
            }
            Type::Option(inner) => match value {
                Value::Null => View::Case(0, None),
                // `option<option<T>>`: `null` is the outer none, `{"some": v}` the outer some.
                _ if matches!(**inner, Type::Option(_)) => {
                    let (_, some) =
                        single_key(value)
                            .filter(|(k, _)| *k == "some")
                            .ok_or_else(|| {
                                EncodeError::new(format!(
                                    r#"expected {ty} (null or {{"some": …}}), got {}"#,
                                    show(value)
                                ))
                            })?;
                    View::Case(1, Some(some))
                }
                _ => View::Case(1, Some(value)),
            },
            Type::Result { ok, err } => {
                let (side, payload) = case_of(value).ok_or_else(|| mismatch(ty, value))?;
                let (tag, payload_ty) = match side {
                    "ok" => (0, ok),
                    "err" => (1, err),
                    _ => return Err(mismatch(ty, value)),
                };
                let payload = payload_of(payload_ty.as_deref(), payload)
                    .map_err(|e| e.within(Step::Name(side.into())))?;
                View::Case(tag, payload)
            }
            Type::Flags(f) => {
                let names = value.as_array().ok_or_else(|| mismatch(ty, value))?;
                let mut bits = vec![0u8; f.width()];
                for (i, name) in names.iter().enumerate() {
                    let index = name
                        .as_str()
                        .and_then(|name| f.flags.iter().position(|f| f == name))
                        .ok_or_else(|| {
                            EncodeError::new(format!(
                                "unknown flag {} of {ty}{}",
                                show(name),
                                hint(ty)
                            ))
                            .within(Step::Index(i))
                        })?;
                    if let Some(byte) = bits.get_mut(index / 8) {
                        *byte |= 1 << (index % 8);
                    }
                }
                View::Flags(Cow::Owned(bits))
            }
            Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) => {
                return Err(unsupported(&ty.to_string()))
            }
        })
    }
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
fn payload_of<'v>(
    ty: Option<&Type>,
    payload: Option<&'v Value>,
) -> Result<Option<&'v Value>, EncodeError> {
    match (ty, payload) {
        (Some(_), Some(value)) => Ok(Some(value)),
        (Some(ty), None) => Err(EncodeError::new(format!("expected a payload of type {ty}"))),
        (None, None | Some(Value::Null)) => Ok(None),
        (None, Some(value)) => Err(EncodeError::new(format!(
            "this case has no payload (use null), got {}",
            show(value)
        ))),
    }
}

fn unsigned(ty: &Type, value: &Value, max: u64) -> Result<u64, EncodeError> {
    value
        .as_u64()
        .filter(|n| *n <= max)
        .ok_or_else(|| mismatch(ty, value))
}

fn signed(ty: &Type, value: &Value, min: i64, max: i64) -> Result<i64, EncodeError> {
    value
        .as_i64()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| mismatch(ty, value))
}

fn float(ty: &Type, value: &Value) -> Result<f64, EncodeError> {
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
fn byte_list<'v>(ty: &Type, value: &'v Value) -> Result<Cow<'v, [u8]>, EncodeError> {
    match value {
        Value::String(s) => Ok(Cow::Borrowed(s.as_bytes())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                unsigned(&Type::U8, item, u8::MAX.into())
                    .map(|b| b as u8)
                    .map_err(|e| e.within(Step::Index(i)))
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Cow::Owned),
        _ => {
            let (key, encoded) = single_key(value)
                .filter(|(k, _)| *k == "base64")
                .ok_or_else(|| mismatch(ty, value))?;
            let text = encoded.as_str().ok_or_else(|| {
                EncodeError::new(format!("expected a base64 string, got {}", show(encoded)))
                    .within(Step::Name(key.into()))
            })?;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Cow::Owned)
                .map_err(|err| {
                    EncodeError::new(format!("not base64: {err}")).within(Step::Name(key.into()))
                })
        }
    }
}

#[cfg(test)]
mod fuzzed;
#[cfg(test)]
mod tests;
