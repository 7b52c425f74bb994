//! What the fuzz targets share: WIT types and limits shaped by the input,
//! and the cuts that split a byte stream into the pieces a peer sends.

use arbitrary::{Result, Unstructured};
use transport::schema::{Enum, Flags, Record, Type, ValueLimits, Variant};

/// Splits a target's input: its first byte is the length of a spec that
/// shapes what is fed (types, limits, cuts), the rest is the payload.
pub fn split_input(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(len).min(rest.len()))
}

/// Joins a spec and a payload as [`split_input`] reads them (seeds).
pub fn join_input(spec: &[u8], payload: &[u8]) -> Vec<u8> {
    let spec = &spec[..spec.len().min(255)];
    let mut out = vec![spec.len() as u8];
    out.extend_from_slice(spec);
    out.extend_from_slice(payload);
    out
}

/// Member names, all valid WIT identifiers, distinct.
const NAMES: [&str; 8] = ["a", "b", "c", "d", "key", "value", "x-y", "z0"];

/// A WIT type nested at most `depth` deep, shaped by `u`.
pub fn ty(u: &mut Unstructured<'_>, depth: u32) -> Result<Type> {
    let top = if depth == 0 || u.is_empty() { 12 } else { 25 };
    let inner = depth.saturating_sub(1);
    Ok(match u.int_in_range(0..=top)? {
        0 => Type::Bool,
        1 => Type::U8,
        2 => Type::U16,
        3 => Type::U32,
        4 => Type::U64,
        5 => Type::S8,
        6 => Type::S16,
        7 => Type::S32,
        8 => Type::S64,
        9 => Type::F32,
        10 => Type::F64,
        11 => Type::Char,
        12 => Type::String,
        13 => Type::List(Box::new(ty(u, inner)?)),
        14 => Type::FixedList(Box::new(ty(u, inner)?), fixed_len(u)?),
        15 => Type::Tuple(types(u, inner)?),
        16 => {
            let n = u.int_in_range(0..=4)?;
            let mut fields = Vec::with_capacity(n);
            for name in &NAMES[..n] {
                fields.push((name.to_string(), ty(u, inner)?));
            }
            Type::Record(Record { name: None, fields })
        }
        17 => {
            let mut cases = Vec::new();
            for name in names(u)? {
                let payload = if u.arbitrary()? {
                    Some(ty(u, inner)?)
                } else {
                    None
                };
                cases.push((name, payload));
            }
            Type::Variant(Variant { name: None, cases })
        }
        18 => Type::Enum(Enum {
            name: None,
            cases: names(u)?,
        }),
        19 => {
            let n = u.int_in_range(0..=70)?;
            let flags = (0..n).map(|i| format!("f{i}")).collect();
            Type::Flags(Flags { name: None, flags })
        }
        20 => Type::Option(Box::new(ty(u, inner)?)),
        21 => Type::Result {
            ok: optional(u, inner)?,
            err: optional(u, inner)?,
        },
        22 => Type::Own("r".into()),
        23 => Type::Borrow("r".into()),
        24 => Type::Future(optional(u, inner)?),
        _ => Type::Stream(optional(u, inner)?),
    })
}

/// Up to four types: a tuple's elements, a function's parameters.
pub fn types(u: &mut Unstructured<'_>, depth: u32) -> Result<Vec<Type>> {
    let n = u.int_in_range(0..=4)?;
    (0..n).map(|_| ty(u, depth)).collect()
}

fn optional(u: &mut Unstructured<'_>, depth: u32) -> Result<Option<Box<Type>>> {
    Ok(if u.arbitrary()? {
        Some(Box::new(ty(u, depth)?))
    } else {
        None
    })
}

/// Case names: mostly a few, sometimes past 127 (a two-byte index).
fn names(u: &mut Unstructured<'_>) -> Result<Vec<String>> {
    let n = if u.ratio(1, 16)? {
        u.int_in_range(0..=300)?
    } else {
        u.int_in_range(0..=NAMES.len())?
    };
    Ok((0..n)
        .map(|i| match NAMES.get(i) {
            Some(name) if n <= NAMES.len() => name.to_string(),
            _ => format!("c{i}"),
        })
        .collect())
}

/// A fixed list's length: mostly small, sometimes large (the type is
/// trusted, but must not make the codec allocate ahead of the bytes).
fn fixed_len(u: &mut Unstructured<'_>) -> Result<u32> {
    if u.ratio(1, 32)? {
        u.int_in_range(0..=1 << 16)
    } else {
        u.int_in_range(0..=4)
    }
}

/// Value limits: the defaults, or small ones so each limit is reached.
pub fn value_limits(u: &mut Unstructured<'_>) -> Result<ValueLimits> {
    let defaults = transport::Limits::DEFAULT.value();
    if u.arbitrary()? {
        return Ok(defaults);
    }
    Ok(ValueLimits {
        max_list: *u.choose(&[0, 1, 3, 200, defaults.max_list])?,
        max_bytes: *u.choose(&[0, 1, 7, 64, defaults.max_bytes])?,
        max_depth: u.int_in_range(0..=8)?,
    })
}

/// Cuts `len` bytes into pieces whose sizes come from `u` (the rest in one
/// piece when `u` runs out): where a peer's writes may end.
pub fn cuts(u: &mut Unstructured<'_>, len: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let n = if u.is_empty() {
            len - at
        } else {
            u.int_in_range(1..=16usize)
                .unwrap_or(len - at)
                .min(len - at)
        };
        out.push(at..at + n);
        at += n;
    }
    out
}

#[cfg(test)]
mod seeds;
