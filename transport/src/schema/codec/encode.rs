//! The encoder: a value of a known [`Type`], read through [`Source`], to
//! wRPC bytes. Futures and streams are written pending and handed back as
//! [`Deferred`] values with the path their contents travel on.

use std::borrow::Cow;

use super::{EncodeError, Step};
use crate::schema::Type;

/// A value the encoder can read: what it is, for the type it must be.
///
/// One implementation per face: Wasmtime's `Val` in the host, JSON and
/// WIT-syntax arguments in `wrpc-ext`.
pub trait Source {
    /// This value as a `ty`.
    ///
    /// # Errors
    ///
    /// An error naming what was expected and what was found, when the value
    /// is not a `ty` (the encoder adds where in the value it was).
    fn view(&self, ty: &Type) -> Result<View<'_, Self>, EncodeError>;
}

/// What a [`Source`] value is. Each variant fits the types named on it; the
/// encoder refuses any other pairing.
#[derive(Debug)]
pub enum View<'a, S: ?Sized> {
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
    String(Cow<'a, str>),
    /// `list<u8>` (and a fixed-length `list<u8, N>`) as bytes.
    Bytes(Cow<'a, [u8]>),
    /// The elements of a list, fixed-length list or tuple, or the fields of
    /// a record in declaration order.
    Items(Vec<&'a S>),
    /// A variant's case (its index), an enum's case, `option` (0 `none`,
    /// 1 `some`) or `result` (0 `ok`, 1 `err`), with the payload if any.
    Case(u32, Option<&'a S>),
    /// Flags as set bits: flag `i` is bit `i % 8` of byte `i / 8` (at most
    /// `ceil(n / 8)` bytes).
    Flags(Cow<'a, [u8]>),
    /// An `own` or `borrow` handle: the bytes its server chose.
    Handle(Cow<'a, [u8]>),
    /// A future or stream: written pending, its contents sent later on its
    /// own path by whoever drives the returned [`Deferred`].
    Async,
}

/// A future or stream found while encoding: the caller sends its contents
/// on `path`.
#[derive(Debug)]
pub struct Deferred<'a, S: ?Sized> {
    /// Where its contents travel (relative to the encoded tuple).
    pub path: Vec<usize>,
    /// Its type (`Type::Future` or `Type::Stream`).
    pub ty: &'a Type,
    /// The value the source gave for it.
    pub value: &'a S,
}

/// Appends the tuple `values` (a function's parameters or results), typed
/// by `types`, to `out`; returns its futures and streams.
///
/// # Errors
///
/// [`EncodeError`] naming where a value does not fit its type (`[1].name:
/// expected string, got 3`); `out` then holds a partial encoding.
pub fn encode_tuple<'a, S: Source + ?Sized>(
    types: &'a [Type],
    values: &[&'a S],
    out: &mut Vec<u8>,
) -> Result<Vec<Deferred<'a, S>>, EncodeError> {
    if types.len() != values.len() {
        return Err(EncodeError::new(format!(
            "expected {} values, got {}",
            types.len(),
            values.len()
        )));
    }
    let mut enc = Encoder {
        out,
        path: Vec::new(),
        deferred: Vec::new(),
    };
    for (i, (ty, value)) in types.iter().zip(values).enumerate() {
        enc.path.push(i);
        enc.value(ty, *value)
            .map_err(|e| e.within(Step::Index(i)))?;
        enc.path.pop();
    }
    Ok(enc.deferred)
}

/// Appends one `value` of type `ty` to `out` (a future's value on its
/// path, a stream's element); returns its futures and streams, their paths
/// relative to the value.
///
/// # Errors
///
/// As [`encode_tuple`].
pub fn encode_value<'a, S: Source + ?Sized>(
    ty: &'a Type,
    value: &'a S,
    out: &mut Vec<u8>,
) -> Result<Vec<Deferred<'a, S>>, EncodeError> {
    let mut enc = Encoder {
        out,
        path: Vec::new(),
        deferred: Vec::new(),
    };
    enc.value(ty, value)?;
    Ok(enc.deferred)
}

/// Unsigned LEB128, shortest form.
fn put_uleb(out: &mut Vec<u8>, mut n: u64) {
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
fn put_sleb(out: &mut Vec<u8>, mut n: i64) {
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

struct Encoder<'a, 'o, S: ?Sized> {
    out: &'o mut Vec<u8>,
    /// The path of the value being written, for its futures and streams.
    path: Vec<usize>,
    deferred: Vec<Deferred<'a, S>>,
}

fn count(n: usize) -> Result<u32, EncodeError> {
    u32::try_from(n)
        .map_err(|_| EncodeError::new(format!("{n} elements are more than wRPC can carry")))
}

impl<'a, S: Source + ?Sized> Encoder<'a, '_, S> {
    fn bytes(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        put_uleb(self.out, count(data.len())?.into());
        self.out.extend_from_slice(data);
        Ok(())
    }

    /// Writes members `items` of types `tys` back to back, each at its
    /// index on the path.
    fn members(
        &mut self,
        tys: impl ExactSizeIterator<Item = (Step, &'a Type)>,
        items: Vec<&'a S>,
        ty: &Type,
    ) -> Result<(), EncodeError> {
        if tys.len() != items.len() {
            return Err(EncodeError::new(format!(
                "expected {ty} of {} members, got {}",
                tys.len(),
                items.len()
            )));
        }
        for (i, ((step, ty), item)) in tys.zip(items).enumerate() {
            self.path.push(i);
            self.value(ty, item).map_err(|e| e.within(step))?;
            self.path.pop();
        }
        Ok(())
    }

    fn value(&mut self, ty: &'a Type, value: &'a S) -> Result<(), EncodeError> {
        let view = value.view(ty)?;
        match (ty, view) {
            (Type::Bool, View::Bool(b)) => self.out.push(u8::from(b)),
            (Type::U8, View::U8(n)) => self.out.push(n),
            (Type::U16, View::U16(n)) => put_uleb(self.out, n.into()),
            (Type::U32, View::U32(n)) => put_uleb(self.out, n.into()),
            (Type::U64, View::U64(n)) => put_uleb(self.out, n),
            (Type::S8, View::S8(n)) => self.out.push(n.to_le_bytes()[0]),
            (Type::S16, View::S16(n)) => put_sleb(self.out, n.into()),
            (Type::S32, View::S32(n)) => put_sleb(self.out, n.into()),
            (Type::S64, View::S64(n)) => put_sleb(self.out, n),
            (Type::F32, View::F32(x)) => self.out.extend_from_slice(&x.to_le_bytes()),
            (Type::F64, View::F64(x)) => self.out.extend_from_slice(&x.to_le_bytes()),
            (Type::Char, View::Char(c)) => {
                let mut buf = [0; 4];
                self.out
                    .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            (Type::String, View::String(s)) => self.bytes(s.as_bytes())?,
            (Type::List(elem), View::Bytes(b)) if **elem == Type::U8 => self.bytes(&b)?,
            (Type::FixedList(elem, n), View::Bytes(b)) if **elem == Type::U8 => {
                if b.len() != *n as usize {
                    return Err(EncodeError::new(format!(
                        "expected {ty}, got {} bytes",
                        b.len()
                    )));
                }
                self.out.extend_from_slice(&b);
            }
            (Type::List(elem), View::Items(items)) => {
                put_uleb(self.out, count(items.len())?.into());
                let n = items.len();
                let tys = (0..n).map(|i| (Step::Index(i), &**elem));
                self.members(tys, items, ty)?;
            }
            (Type::FixedList(elem, n), View::Items(items)) => {
                let n = *n as usize;
                let tys = (0..n).map(|i| (Step::Index(i), &**elem));
                self.members(tys, items, ty)?;
            }
            (Type::Tuple(tys), View::Items(items)) => {
                let tys = tys.iter().enumerate().map(|(i, t)| (Step::Index(i), t));
                self.members(tys, items, ty)?;
            }
            (Type::Record(r), View::Items(items)) => {
                let tys = r
                    .fields
                    .iter()
                    .map(|(name, t)| (Step::Name(name.clone()), t));
                self.members(tys, items, ty)?;
            }
            (Type::Variant(v), View::Case(i, payload)) => {
                let (name, case_ty) = v
                    .cases
                    .get(i as usize)
                    .ok_or_else(|| EncodeError::new(format!("{ty} has no case {i}")))?;
                put_uleb(self.out, i.into());
                self.payload(case_ty.as_ref(), payload)
                    .map_err(|e| e.within(Step::Name(name.clone())))?;
            }
            (Type::Enum(e), View::Case(i, None)) if (i as usize) < e.cases.len() => {
                put_uleb(self.out, i.into());
            }
            (Type::Option(_), View::Case(0, None)) => self.out.push(0),
            (Type::Option(inner), View::Case(1, Some(payload))) => {
                self.out.push(1);
                self.value(inner, payload)?;
            }
            (Type::Result { ok, err }, View::Case(tag @ (0 | 1), payload)) => {
                let (side, payload_ty) = if tag == 0 { ("ok", ok) } else { ("err", err) };
                self.out.push(tag as u8);
                self.payload(payload_ty.as_deref(), payload)
                    .map_err(|e| e.within(Step::Name(side.into())))?;
            }
            (Type::Flags(f), View::Flags(bits)) => {
                let width = f.width();
                if bits.len() > width {
                    return Err(EncodeError::new(format!(
                        "{ty} has {} flags, got {} bytes of them",
                        f.flags.len(),
                        bits.len()
                    )));
                }
                let start = self.out.len();
                self.out.extend_from_slice(&bits);
                self.out.resize(start + width, 0);
                let used = f.flags.len() % 8;
                if let (Some(last), true) = (self.out.last(), used != 0) {
                    if last >> used != 0 {
                        return Err(EncodeError::new(format!("{ty} has no flag above {used}")));
                    }
                }
            }
            (Type::Own(_) | Type::Borrow(_), View::Handle(repr)) => self.bytes(&repr)?,
            (Type::Future(_) | Type::Stream(_), View::Async) => {
                // Pending: the contents follow on this value's path.
                self.out.push(0);
                self.deferred.push(Deferred {
                    path: self.path.clone(),
                    ty,
                    value,
                });
            }
            (ty, view) => {
                return Err(EncodeError::new(format!(
                    "expected {ty}, got {}",
                    view_kind(&view)
                )))
            }
        }
        Ok(())
    }

    /// A case payload: required when the case has a type, else absent.
    fn payload(&mut self, ty: Option<&'a Type>, payload: Option<&'a S>) -> Result<(), EncodeError> {
        match (ty, payload) {
            (Some(ty), Some(value)) => self.value(ty, value),
            (None, None) => Ok(()),
            (Some(ty), None) => Err(EncodeError::new(format!("expected a payload of type {ty}"))),
            (None, Some(_)) => Err(EncodeError::new("this case has no payload")),
        }
    }
}

/// What a view is, for the message of a mismatch.
fn view_kind<S: ?Sized>(view: &View<'_, S>) -> &'static str {
    match view {
        View::Bool(_) => "a bool",
        View::U8(_) => "a u8",
        View::U16(_) => "a u16",
        View::U32(_) => "a u32",
        View::U64(_) => "a u64",
        View::S8(_) => "an s8",
        View::S16(_) => "an s16",
        View::S32(_) => "an s32",
        View::S64(_) => "an s64",
        View::F32(_) => "an f32",
        View::F64(_) => "an f64",
        View::Char(_) => "a char",
        View::String(_) => "a string",
        View::Bytes(_) => "bytes",
        View::Items(_) => "a sequence",
        View::Case(..) => "a case",
        View::Flags(_) => "flags",
        View::Handle(_) => "a handle",
        View::Async => "a future or stream",
    }
}
