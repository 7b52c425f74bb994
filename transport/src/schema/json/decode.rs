//! Results to JSON: a [`Sink`] building [`Json`], members in WIT order.

use base64::Engine as _;
use serde::ser::{SerializeMap as _, SerializeSeq as _};

use super::unsupported;
use crate::schema::codec::{decode_tuple, DecodeError, Decoded, Sink};
use crate::schema::{Type, ValueLimits};

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

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Self {
        use serde_json::Value;
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
///
/// # Errors
///
/// [`DecodeError`] for bytes that are not such values, or that do not end
/// with them; a future, stream or handle is refused.
pub fn decode_all(
    types: &[Type],
    buf: &[u8],
    limits: &ValueLimits,
) -> Result<Vec<Json>, DecodeError> {
    let (values, used) = decode_tuple(types, buf, limits, &mut ToJson)?;
    if used != buf.len() {
        return Err(DecodeError::Refused(format!(
            "{} bytes after the value",
            buf.len() - used
        )));
    }
    Ok(values)
}

/// Builds [`Json`] from decoded values.
struct ToJson;

impl Sink for ToJson {
    type Value = Json;

    fn value(&mut self, ty: &Type, decoded: Decoded<'_, Json>) -> Result<Json, String> {
        let number = |n: serde_json::Number| Json::Number(n);
        Ok(match (ty, decoded) {
            (_, Decoded::Bool(b)) => Json::Bool(b),
            (_, Decoded::U8(n)) => number(n.into()),
            (_, Decoded::U16(n)) => number(n.into()),
            (_, Decoded::U32(n)) => number(n.into()),
            (_, Decoded::U64(n)) => number(n.into()),
            (_, Decoded::S8(n)) => number(n.into()),
            (_, Decoded::S16(n)) => number(n.into()),
            (_, Decoded::S32(n)) => number(n.into()),
            (_, Decoded::S64(n)) => number(n.into()),
            (_, Decoded::F32(x)) => f32_json(x),
            (_, Decoded::F64(x)) => f64_json(x),
            (_, Decoded::Char(c)) => Json::String(c.to_string()),
            (_, Decoded::String(s)) => Json::String(s.to_string()),
            (_, Decoded::Bytes(b)) => bytes_json(b),
            (Type::Record(r), Decoded::Items(values)) => Json::Object(
                r.fields
                    .iter()
                    .map(|(name, _)| name.clone())
                    .zip(values)
                    .collect(),
            ),
            (_, Decoded::Items(values)) => Json::Array(values),
            (Type::Variant(v), Decoded::Case(i, payload)) => {
                let name = v
                    .cases
                    .get(i as usize)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default();
                match payload {
                    Some(payload) => Json::Object(vec![(name, payload)]),
                    None => Json::String(name),
                }
            }
            (Type::Enum(e), Decoded::Case(i, _)) => {
                Json::String(e.cases.get(i as usize).cloned().unwrap_or_default())
            }
            (Type::Option(inner), Decoded::Case(_, payload)) => match payload {
                None => Json::Null,
                // `option<option<T>>`: the outer some is `{"some": v}`.
                Some(v) if matches!(**inner, Type::Option(_)) => {
                    Json::Object(vec![("some".into(), v)])
                }
                Some(v) => v,
            },
            (Type::Result { .. }, Decoded::Case(tag, payload)) => {
                let side = if tag == 0 { "ok" } else { "err" };
                Json::Object(vec![(side.into(), payload.unwrap_or(Json::Null))])
            }
            (Type::Flags(f), Decoded::Flags(bits)) => Json::Array(
                f.flags
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
                    .map(|(_, name)| Json::String(name.clone()))
                    .collect(),
            ),
            (ty, _) => return Err(unsupported(&ty.to_string()).to_string()),
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

/// Non-finite floats as the strings the encoder takes back.
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
