//! The decoder: wRPC bytes of a known [`Type`] to values built by a
//! [`Sink`]. It checks what the scanner checks, with the same errors, and
//! allocates nothing in proportion to a declared length that the bytes do
//! not back: a list's elements are only made as they are read.

use super::DecodeError;
use crate::schema::scanner::Leb;
use crate::schema::{Type, ValueError, ValueLimits};

/// What the decoder found, for a [`Sink`] to build a value of.
#[derive(Debug)]
pub enum Decoded<'b, V> {
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
    String(&'b str),
    /// `list<u8>` or `list<u8, N>`.
    Bytes(&'b [u8]),
    /// Elements of any other list or fixed-length list, a tuple's elements,
    /// or a record's fields in declaration order.
    Items(Vec<V>),
    /// A variant's or enum's case index, `option` (0 `none`, 1 `some`) or
    /// `result` (0 `ok`, 1 `err`), with the payload if any.
    Case(u32, Option<V>),
    /// Flags: `ceil(n / 8)` bytes, flag `i` at bit `i % 8` of byte `i / 8`.
    Flags(&'b [u8]),
    /// An `own` or `borrow` handle's bytes.
    Handle(&'b [u8]),
    /// A future or stream whose contents follow on `path` (relative to the
    /// decoded tuple or value).
    Pending(Vec<usize>),
    /// A future whose value came with it (`None` for `future` without a type).
    Ready(Option<V>),
    /// A stream whose elements all came with it: the value is their list
    /// (built as for `list<T>`).
    Inline(V),
}

/// Builds values from what the decoder found.
pub trait Sink {
    /// The values built.
    type Value;

    /// A value of type `ty`.
    ///
    /// # Errors
    ///
    /// A message when this sink cannot hold such a value (e.g. a handle it
    /// has no resource for); decoding stops with [`DecodeError::Refused`].
    fn value(
        &mut self,
        ty: &Type,
        decoded: Decoded<'_, Self::Value>,
    ) -> Result<Self::Value, String>;
}

/// A sink that builds nothing: decoding with it only checks the bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Check;

impl Sink for Check {
    type Value = ();

    fn value(&mut self, _: &Type, _: Decoded<'_, ()>) -> Result<(), String> {
        Ok(())
    }
}

/// Decodes the tuple `types` (a function's parameters or results) at the
/// start of `buf`; returns the values and the bytes they took.
///
/// # Errors
///
/// [`DecodeError::Incomplete`] when `buf` ends first, [`DecodeError::Invalid`]
/// for bytes that are no such value (the scanner's errors), and what the
/// sink refuses.
pub fn decode_tuple<S: Sink>(
    types: &[Type],
    buf: &[u8],
    limits: &ValueLimits,
    sink: &mut S,
) -> Result<(Vec<S::Value>, usize), DecodeError> {
    let mut dec = Decoder::new(buf, limits, sink);
    let mut values = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        dec.path.push(i);
        values.push(dec.value(ty, 0)?);
        dec.path.pop();
    }
    Ok((values, dec.pos))
}

/// Decodes one value of type `ty` at the start of `buf` (a future's value,
/// read on its path); returns it and the bytes it took.
///
/// # Errors
///
/// As [`decode_tuple`].
pub fn decode_value<S: Sink>(
    ty: &Type,
    buf: &[u8],
    limits: &ValueLimits,
    sink: &mut S,
) -> Result<(S::Value, usize), DecodeError> {
    let mut dec = Decoder::new(buf, limits, sink);
    let value = dec.value(ty, 0)?;
    Ok((value, dec.pos))
}

/// Decodes one chunk of a pending `stream<elem>` at the start of `buf`: a
/// count, then that many elements (for `stream<u8>` the bytes). An empty
/// chunk ends the stream. Element `i` of the chunk has the async path
/// `[first + i]`, `first` being how many elements came before it.
///
/// # Errors
///
/// As [`decode_tuple`].
pub fn decode_chunk<S: Sink>(
    elem: Option<&Type>,
    first: u64,
    buf: &[u8],
    limits: &ValueLimits,
    sink: &mut S,
) -> Result<(Chunk<S::Value>, usize), DecodeError> {
    let mut dec = Decoder::new(buf, limits, sink);
    let depth = limits.enter(0)?;
    let len = dec.count(elem)?;
    let chunk = match elem {
        None => {
            dec.zero_size(len)?;
            Chunk::Units(len)
        }
        Some(Type::U8) => {
            let n = usize::try_from(len).map_err(|_| DecodeError::Incomplete)?;
            Chunk::Bytes(dec.take(n)?.to_vec())
        }
        Some(elem) => {
            if is_zero_size(elem) {
                dec.zero_size(len)?;
            }
            let mut items = Vec::with_capacity(dec.capacity(len));
            for i in 0..len {
                dec.path
                    .push(usize::try_from(first.saturating_add(i)).unwrap_or(usize::MAX));
                items.push(dec.value(elem, depth)?);
                dec.path.pop();
            }
            Chunk::Items(items)
        }
    };
    Ok((chunk, dec.pos))
}

/// One chunk of a stream's contents.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<V> {
    /// Bytes of a `stream<u8>`.
    Bytes(Vec<u8>),
    /// Elements of any other `stream<T>`.
    Items(Vec<V>),
    /// This many elements of a `stream` without a type.
    Units(u64),
}

impl<V> Chunk<V> {
    /// Whether this chunk ends its stream.
    pub fn is_end(&self) -> bool {
        match self {
            Self::Bytes(b) => b.is_empty(),
            Self::Items(v) => v.is_empty(),
            Self::Units(n) => *n == 0,
        }
    }
}

struct Decoder<'b, 's, S> {
    buf: &'b [u8],
    pos: usize,
    limits: ValueLimits,
    sink: &'s mut S,
    /// The path of the value being read, for its futures and streams.
    path: Vec<usize>,
    /// How many more elements of zero-size types (`list<tuple<>>`) may be
    /// built: they take no bytes, so the input does not bound them.
    zero_size_left: u64,
    /// Inside zero-size elements already counted against `zero_size_left`
    /// (with everything nested in them).
    counted: bool,
}

type Step<T> = Result<T, DecodeError>;

impl<'b, 's, S: Sink> Decoder<'b, 's, S> {
    fn new(buf: &'b [u8], limits: &ValueLimits, sink: &'s mut S) -> Self {
        Self {
            buf,
            pos: 0,
            limits: *limits,
            sink,
            path: Vec::new(),
            zero_size_left: limits.max_list.into(),
            counted: false,
        }
    }

    /// Takes `len` from the budget of zero-size elements.
    fn zero_size(&mut self, len: u64) -> Step<()> {
        if len > self.zero_size_left {
            return Err(ValueError::ListTooLong {
                len,
                max: self.limits.max_list,
            }
            .into());
        }
        self.zero_size_left -= len;
        Ok(())
    }

    fn build(&mut self, ty: &Type, decoded: Decoded<'b, S::Value>) -> Step<S::Value> {
        self.sink.value(ty, decoded).map_err(DecodeError::Refused)
    }

    fn take(&mut self, n: usize) -> Step<&'b [u8]> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Incomplete)?;
        let taken = self.buf.get(self.pos..end).ok_or(DecodeError::Incomplete)?;
        self.pos = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Step<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// How many elements to reserve room for: no more than the bytes left
    /// could hold (each element takes at least one).
    fn capacity(&self, len: u64) -> usize {
        let left = self.buf.len().saturating_sub(self.pos);
        usize::try_from(len).unwrap_or(usize::MAX).min(left)
    }

    /// Unsigned LEB128 of `width`, as `Leb128DecoderU{16,32,64}` read it.
    fn uleb(&mut self, width: Leb) -> Step<u64> {
        let (last, last_max, _) = width.shape();
        let mut x = 0u64;
        for (i, shift) in (0..=last).zip((0u32..).step_by(7)) {
            let b = self.byte()?;
            if i == last && b > last_max {
                return Err(ValueError::BadLeb128.into());
            }
            x |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(ValueError::BadLeb128.into())
    }

    /// Signed LEB128 of `width`, as `Leb128DecoderI{16,32,64}` read it.
    fn sleb(&mut self, width: Leb) -> Step<i64> {
        let (last, _, shift) = width.shape();
        let mut x = 0i64;
        for (i, bits) in (0..=last).zip((0u32..).step_by(7)) {
            let b = self.byte()?;
            if i == last {
                let rest = (b & 0x7f) >> shift;
                if b & 0x80 != 0 || (rest != 0 && rest != 0x7f >> shift) {
                    return Err(ValueError::BadLeb128.into());
                }
            }
            x |= i64::from(b & 0x7f).checked_shl(bits).unwrap_or(0);
            if b & 0x80 == 0 {
                let used = bits.saturating_add(7);
                if used < 64 && b & 0x40 != 0 {
                    x |= -1i64 << used;
                }
                return Ok(x);
            }
        }
        Err(ValueError::BadLeb128.into())
    }

    /// A case index below `cases`.
    fn case(&mut self, cases: usize, what: &'static str) -> Step<u32> {
        let disc = self.uleb(Leb::W32)?;
        match usize::try_from(disc) {
            Ok(i) if i < cases => Ok(disc as u32),
            _ => Err(ValueError::BadDiscriminant { what, value: disc }.into()),
        }
    }

    fn tag(&mut self, what: &'static str) -> Step<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(ValueError::BadDiscriminant {
                what,
                value: u64::from(b),
            }
            .into()),
        }
    }

    /// A byte string's length and bytes; for `utf8`, invalid UTF-8 is
    /// refused even when the bytes end before the string does.
    fn byte_string(&mut self, utf8: bool) -> Step<&'b [u8]> {
        let len = self.uleb(Leb::W32)?;
        self.limits.check_bytes(len)?;
        let n = usize::try_from(len).map_err(|_| DecodeError::Incomplete)?;
        let start = self.pos;
        match self.take(n) {
            Ok(bytes) => {
                if utf8 && std::str::from_utf8(bytes).is_err() {
                    return Err(ValueError::BadUtf8.into());
                }
                Ok(bytes)
            }
            Err(incomplete) => {
                if utf8 {
                    let avail = self.buf.get(start..).unwrap_or_default();
                    if let Err(err) = std::str::from_utf8(avail) {
                        if err.error_len().is_some() {
                            return Err(ValueError::BadUtf8.into());
                        }
                    }
                }
                Err(incomplete)
            }
        }
    }

    fn char(&mut self) -> Step<char> {
        let b0 = self.byte()?;
        let (len, init) = if b0 & 0x80 == 0 {
            return Ok(char::from(b0));
        } else if b0 & 0b1110_0000 == 0b1100_0000 {
            (2, b0 & 0b0001_1111)
        } else if b0 & 0b1111_0000 == 0b1110_0000 {
            (3, b0 & 0b0000_1111)
        } else if b0 & 0b1111_1000 == 0b1111_0000 {
            (4, b0 & 0b0000_0111)
        } else {
            return Err(ValueError::BadUtf8.into());
        };
        let mut c = u32::from(init);
        for _ in 1..len {
            let b = self.byte()?;
            if b & 0b1100_0000 != 0b1000_0000 {
                return Err(ValueError::BadUtf8.into());
            }
            c = c << 6 | u32::from(b & 0b0011_1111);
        }
        // Overlong forms are accepted, as by `utf8-tokio`; the scalar value must be valid.
        char::from_u32(c).ok_or_else(|| ValueError::BadChar(c).into())
    }

    fn flags(&mut self, n: usize) -> Step<&'b [u8]> {
        let bytes = self.take(n.div_ceil(8))?;
        // Bits at and above `n` in the last byte must be clear (`bitflags::from_bits`).
        let used = (n % 8) as u32;
        if let (Some(last), true) = (bytes.last(), used != 0) {
            let unknown = last & u8::MAX.checked_shl(used).unwrap_or(0);
            if unknown != 0 {
                let bit = (n as u64 & !7) | u64::from(unknown.trailing_zeros());
                return Err(ValueError::BadDiscriminant {
                    what: "flag bit",
                    value: bit,
                }
                .into());
            }
        }
        Ok(bytes)
    }

    /// A list's (or stream chunk's) element count, checked against the
    /// limits: byte-sized and float elements count as bytes.
    fn count(&mut self, elem: Option<&Type>) -> Step<u64> {
        let len = self.uleb(Leb::W32)?;
        match elem {
            Some(Type::U8 | Type::S8 | Type::F32 | Type::F64) => self.limits.check_bytes(len)?,
            _ => self.limits.check_len(len)?,
        }
        Ok(len)
    }

    /// `len` elements of `elem` at `depth`, each at its index on the path.
    fn elements(&mut self, elem: &Type, len: u64, depth: u32) -> Step<Vec<S::Value>> {
        let width = match elem {
            Type::U8 | Type::S8 => Some(1),
            Type::F32 => Some(4),
            Type::F64 => Some(8),
            _ => None,
        };
        if let Some(width) = width {
            // The scanner skips these at once: so must a truncated list fail.
            let n = len.checked_mul(width).and_then(|n| usize::try_from(n).ok());
            let end = n.and_then(|n| self.pos.checked_add(n));
            if end.is_none_or(|end| end > self.buf.len()) {
                return Err(DecodeError::Incomplete);
            }
        }
        let zero = is_zero_size(elem);
        if zero && !self.counted && len > 0 {
            // Every zero-size element these hold, at once, as the scanner counts them.
            self.zero_size(len.saturating_mul(zero_cost(elem).saturating_add(1)))?;
        }
        let outer = self.counted;
        self.counted |= zero;
        let items = self.items(elem, len, depth);
        self.counted = outer;
        items
    }

    fn items(&mut self, elem: &Type, len: u64, depth: u32) -> Step<Vec<S::Value>> {
        let mut items = Vec::with_capacity(self.capacity(len));
        for i in 0..len {
            self.path.push(usize::try_from(i).unwrap_or(usize::MAX));
            items.push(self.value(elem, depth)?);
            self.path.pop();
        }
        Ok(items)
    }

    /// Members `tys` back to back at `depth`, each at its index on the path.
    fn members<'t>(
        &mut self,
        tys: impl Iterator<Item = &'t Type>,
        depth: u32,
    ) -> Step<Vec<S::Value>> {
        let mut items = Vec::new();
        for (i, ty) in tys.enumerate() {
            self.path.push(i);
            items.push(self.value(ty, depth)?);
            self.path.pop();
        }
        Ok(items)
    }

    /// One value of type `ty` inside `depth` enclosing compound types.
    fn value(&mut self, ty: &Type, depth: u32) -> Step<S::Value> {
        let decoded = match ty {
            Type::Bool => match self.byte()? {
                b @ (0 | 1) => Decoded::Bool(b == 1),
                b => return Err(ValueError::BadBool(b).into()),
            },
            Type::U8 => Decoded::U8(self.byte()?),
            Type::S8 => Decoded::S8(i8::from_le_bytes([self.byte()?])),
            Type::U16 => Decoded::U16(self.uleb(Leb::W16)? as u16),
            Type::U32 => Decoded::U32(self.uleb(Leb::W32)? as u32),
            Type::U64 => Decoded::U64(self.uleb(Leb::W64)?),
            Type::S16 => Decoded::S16(self.sleb(Leb::W16)? as i16),
            Type::S32 => Decoded::S32(self.sleb(Leb::W32)? as i32),
            Type::S64 => Decoded::S64(self.sleb(Leb::W64)?),
            Type::F32 => Decoded::F32(f32::from_le_bytes(self.array()?)),
            Type::F64 => Decoded::F64(f64::from_le_bytes(self.array()?)),
            Type::Char => Decoded::Char(self.char()?),
            Type::String => {
                let bytes = self.byte_string(true)?;
                // Checked by `byte_string`.
                Decoded::String(std::str::from_utf8(bytes).map_err(|_| ValueError::BadUtf8)?)
            }
            Type::Own(_) | Type::Borrow(_) => Decoded::Handle(self.byte_string(false)?),
            Type::Enum(e) => Decoded::Case(self.case(e.cases.len(), "enum case")?, None),
            Type::Flags(f) => Decoded::Flags(self.flags(f.flags.len())?),
            Type::List(elem) => {
                let depth = self.limits.enter(depth)?;
                let len = self.count(Some(elem))?;
                self.list(elem, len, depth)?
            }
            Type::FixedList(elem, n) => {
                let depth = self.limits.enter(depth)?;
                if **elem == Type::U8 {
                    Decoded::Bytes(self.take(*n as usize)?)
                } else {
                    Decoded::Items(self.elements(elem, (*n).into(), depth)?)
                }
            }
            Type::Tuple(tys) => {
                let depth = self.limits.enter(depth)?;
                Decoded::Items(self.members(tys.iter(), depth)?)
            }
            Type::Record(r) => {
                let depth = self.limits.enter(depth)?;
                Decoded::Items(self.members(r.fields.iter().map(|(_, t)| t), depth)?)
            }
            Type::Variant(v) => {
                let depth = self.limits.enter(depth)?;
                let i = self.case(v.cases.len(), "variant case")?;
                let payload = match v.cases.get(i as usize) {
                    Some((_, Some(ty))) => Some(self.value(ty, depth)?),
                    _ => None,
                };
                Decoded::Case(i, payload)
            }
            Type::Option(inner) => {
                let depth = self.limits.enter(depth)?;
                if self.tag("option tag")? {
                    Decoded::Case(1, Some(self.value(inner, depth)?))
                } else {
                    Decoded::Case(0, None)
                }
            }
            Type::Result { ok, err } => {
                let depth = self.limits.enter(depth)?;
                let is_err = self.tag("result tag")?;
                let side = if is_err { err } else { ok };
                let payload = match side {
                    Some(ty) => Some(self.value(ty, depth)?),
                    None => None,
                };
                Decoded::Case(u32::from(is_err), payload)
            }
            Type::Future(inner) => {
                let depth = self.limits.enter(depth)?;
                match (self.tag("future tag")?, inner) {
                    (false, _) => Decoded::Pending(self.path.clone()),
                    (true, Some(ty)) => Decoded::Ready(Some(self.value(ty, depth)?)),
                    (true, None) => Decoded::Ready(None),
                }
            }
            Type::Stream(elem) => {
                let depth = self.limits.enter(depth)?;
                let len = self.count(elem.as_deref())?;
                if len == 0 {
                    Decoded::Pending(self.path.clone())
                } else {
                    let list = match elem.as_deref() {
                        Some(elem) => {
                            let items = self.list(elem, len, depth)?;
                            let list_ty = Type::List(Box::new(elem.clone()));
                            self.build(&list_ty, items)?
                        }
                        None => {
                            let units = Type::Tuple(Vec::new());
                            let list_ty = Type::List(Box::new(units.clone()));
                            self.zero_size(len)?;
                            let mut items = Vec::new();
                            for _ in 0..len {
                                items.push(self.build(&units, Decoded::Items(Vec::new()))?);
                            }
                            self.build(&list_ty, Decoded::Items(items))?
                        }
                    };
                    Decoded::Inline(list)
                }
            }
        };
        self.build(ty, decoded)
    }

    /// The elements of a `list<elem>` of `len`.
    fn list(&mut self, elem: &Type, len: u64, depth: u32) -> Step<Decoded<'b, S::Value>> {
        if *elem == Type::U8 {
            let n = usize::try_from(len).map_err(|_| DecodeError::Incomplete)?;
            return Ok(Decoded::Bytes(self.take(n)?));
        }
        Ok(Decoded::Items(self.elements(elem, len, depth)?))
    }
}

/// The zero-size list elements one value of the zero-size `ty` holds.
fn zero_cost(ty: &Type) -> u64 {
    match ty {
        Type::Tuple(tys) => tys.iter().fold(0, |n, t| n.saturating_add(zero_cost(t))),
        Type::Record(r) => (r.fields.iter()).fold(0, |n, (_, t)| n.saturating_add(zero_cost(t))),
        Type::FixedList(t, n) if *n > 0 => {
            u64::from(*n).saturating_mul(zero_cost(t).saturating_add(1))
        }
        _ => 0,
    }
}

/// Whether values of `ty` take no bytes (as the scanner's `is_zero_size`).
fn is_zero_size(ty: &Type) -> bool {
    match ty {
        Type::Tuple(tys) => tys.iter().all(is_zero_size),
        Type::Record(r) => r.fields.iter().all(|(_, t)| is_zero_size(t)),
        Type::FixedList(t, n) => *n == 0 || is_zero_size(t),
        Type::Flags(f) => f.flags.is_empty(),
        _ => false,
    }
}
