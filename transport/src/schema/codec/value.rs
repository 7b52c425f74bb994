//! The codec's own face: [`Value`], an owned value of any type, for code
//! that reads or writes a few values off a call without a face of its own
//! (the host plugin's adapters, tests).

use std::borrow::Cow;

use super::{Decoded, EncodeError, Sink, Source, View};
use crate::schema::Type;

/// A value of some [`Type`], shaped as the codec sees it: records and
/// tuples as their members, variants, enums, options and results as a case.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `bool`.
    Bool(bool),
    /// `u8`.
    U8(u8),
    /// `u16`.
    U16(u16),
    /// `u32`.
    U32(u32),
    /// `u64`.
    U64(u64),
    /// `s8`.
    S8(i8),
    /// `s16`.
    S16(i16),
    /// `s32`.
    S32(i32),
    /// `s64`.
    S64(i64),
    /// `f32`.
    F32(f32),
    /// `f64`.
    F64(f64),
    /// `char`.
    Char(char),
    /// `string`.
    String(String),
    /// `list<u8>` (or `list<u8, N>`); a `stream<u8>` that came whole.
    Bytes(Vec<u8>),
    /// Any other list's elements, a tuple's, a record's fields in order; a
    /// `stream<T>` that came whole.
    Items(Vec<Value>),
    /// A variant's or enum's case index, `option` (0 `none`, 1 `some`),
    /// `result` (0 `ok`, 1 `err`), with the payload if any.
    Case(u32, Option<Box<Value>>),
    /// Flags: flag `i` at bit `i % 8` of byte `i / 8`.
    Flags(Vec<u8>),
    /// An `own` or `borrow` handle's bytes.
    Handle(Vec<u8>),
    /// A future or stream whose contents travel on this path (decoded), or
    /// are to be sent by the caller (encoded: the path is not read).
    Pending(Vec<usize>),
    /// A future that came with its value (`None` for `future` without a type).
    Ready(Option<Box<Value>>),
}

impl Value {
    /// The `ok` or `err` side of a `result`: `Ok(payload)` or `Err(payload)`.
    pub fn into_result(self) -> Option<Result<Option<Value>, Option<Value>>> {
        match self {
            Self::Case(0, payload) => Some(Ok(payload.map(|p| *p))),
            Self::Case(1, payload) => Some(Err(payload.map(|p| *p))),
            _ => None,
        }
    }

    /// The text of a `string`.
    pub fn into_string(self) -> Option<String> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Source for Value {
    fn view(&self, ty: &Type) -> Result<View<'_, Self>, EncodeError> {
        Ok(match self {
            Self::Bool(b) => View::Bool(*b),
            Self::U8(n) => View::U8(*n),
            Self::U16(n) => View::U16(*n),
            Self::U32(n) => View::U32(*n),
            Self::U64(n) => View::U64(*n),
            Self::S8(n) => View::S8(*n),
            Self::S16(n) => View::S16(*n),
            Self::S32(n) => View::S32(*n),
            Self::S64(n) => View::S64(*n),
            Self::F32(x) => View::F32(*x),
            Self::F64(x) => View::F64(*x),
            Self::Char(c) => View::Char(*c),
            Self::String(s) => View::String(Cow::Borrowed(s)),
            Self::Bytes(b) => View::Bytes(Cow::Borrowed(b)),
            Self::Items(items) => View::Items(items.iter().collect()),
            Self::Case(i, payload) => View::Case(*i, payload.as_deref()),
            Self::Flags(bits) => View::Flags(Cow::Borrowed(bits)),
            Self::Handle(repr) => View::Handle(Cow::Borrowed(repr)),
            Self::Pending(_) => View::Async,
            Self::Ready(_) => {
                return Err(EncodeError::new(format!(
                    "a ready future cannot be sent as {ty}: send it pending"
                )))
            }
        })
    }
}

/// Builds [`Value`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToValue;

impl Sink for ToValue {
    type Value = Value;

    fn value(&mut self, _: &Type, decoded: Decoded<'_, Value>) -> Result<Value, String> {
        Ok(match decoded {
            Decoded::Bool(b) => Value::Bool(b),
            Decoded::U8(n) => Value::U8(n),
            Decoded::U16(n) => Value::U16(n),
            Decoded::U32(n) => Value::U32(n),
            Decoded::U64(n) => Value::U64(n),
            Decoded::S8(n) => Value::S8(n),
            Decoded::S16(n) => Value::S16(n),
            Decoded::S32(n) => Value::S32(n),
            Decoded::S64(n) => Value::S64(n),
            Decoded::F32(x) => Value::F32(x),
            Decoded::F64(x) => Value::F64(x),
            Decoded::Char(c) => Value::Char(c),
            Decoded::String(s) => Value::String(s.to_string()),
            Decoded::Bytes(b) => Value::Bytes(b.to_vec()),
            Decoded::Items(items) => Value::Items(items),
            Decoded::Case(i, payload) => Value::Case(i, payload.map(Box::new)),
            Decoded::Flags(bits) => Value::Flags(bits.to_vec()),
            Decoded::Handle(repr) => Value::Handle(repr.to_vec()),
            Decoded::Pending(path) => Value::Pending(path),
            Decoded::Ready(v) => Value::Ready(v.map(Box::new)),
            Decoded::Inline(list) => list,
        })
    }
}
