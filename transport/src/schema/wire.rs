//! The wire shape of values: enough to validate and delimit them, not to
//! decode them. Derived from the named [`Type`](super::Type) by
//! [`Type::wire`](super::Type::wire); the scanner walks it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Scanner;

/// The shape of a value on the wire: enough to validate and delimit it, not to decode it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WireType {
    /// `bool`: one byte, 0 or 1.
    Bool,
    /// `u8`: one raw byte.
    U8,
    /// `u16`: unsigned LEB128, at most 3 bytes.
    U16,
    /// `u32`: unsigned LEB128, at most 5 bytes.
    U32,
    /// `u64`: unsigned LEB128, at most 10 bytes.
    U64,
    /// `s8`: one raw byte.
    S8,
    /// `s16`: signed LEB128, at most 3 bytes.
    S16,
    /// `s32`: signed LEB128, at most 5 bytes.
    S32,
    /// `s64`: signed LEB128, at most 10 bytes.
    S64,
    /// `f32`: 4 bytes, little-endian.
    F32,
    /// `f64`: 8 bytes, little-endian.
    F64,
    /// `char`: the UTF-8 encoding of a Unicode scalar value (1 to 4 bytes).
    Char,
    /// `string`: LEB128 `u32` byte length, then UTF-8 bytes.
    String,
    /// `list<T>`: LEB128 `u32` element count, then the elements.
    List(Box<WireType>),
    /// `list<T, N>`: exactly `N` elements back to back, no count.
    FixedList(Box<WireType>, u32),
    /// `record`: the fields in declaration order, back to back.
    Record(Vec<WireType>),
    /// `tuple`: the elements back to back.
    Tuple(Vec<WireType>),
    /// `variant`: LEB128 `u32` case index, then the case payload if any (one entry per case).
    Variant(Vec<Option<WireType>>),
    /// `enum` with this many cases: LEB128 `u32` case index.
    Enum(u32),
    /// `option<T>`: tag byte 0 (none) or 1 (some, then the value).
    Option(Box<WireType>),
    /// `result<T, E>`: tag byte 0 (ok) or 1 (err), then the payload of that side if any.
    Result {
        /// The `ok` payload, if any.
        ok: Option<Box<WireType>>,
        /// The `err` payload, if any.
        err: Option<Box<WireType>>,
    },
    /// `flags` with this many flags: `ceil(n / 8)` bytes, little-endian bit order.
    Flags(u32),
    /// An `own<T>` or `borrow<T>` handle: an opaque byte string (like `list<u8>`).
    Resource,
    /// `future<T>`: tag byte 0 (pending, value on the async path) or 1 (ready, then the value).
    Future(Option<Box<WireType>>),
    /// `stream<T>`: a `list<T>`; empty means pending (chunks on the async path).
    Stream(Option<Box<WireType>>),
}

impl WireType {
    /// Whether this type contains a future or a stream anywhere.
    pub fn is_async(&self) -> bool {
        match self {
            Self::Future(_) | Self::Stream(_) => true,
            Self::List(ty) | Self::FixedList(ty, _) | Self::Option(ty) => ty.is_async(),
            Self::Record(tys) | Self::Tuple(tys) => tys.iter().any(Self::is_async),
            Self::Variant(cases) => cases.iter().flatten().any(Self::is_async),
            Self::Result { ok, err } => {
                ok.as_deref().is_some_and(Self::is_async)
                    || err.as_deref().is_some_and(Self::is_async)
            }
            Self::Bool
            | Self::U8
            | Self::U16
            | Self::U32
            | Self::U64
            | Self::S8
            | Self::S16
            | Self::S32
            | Self::S64
            | Self::F32
            | Self::F64
            | Self::Char
            | Self::String
            | Self::Enum(_)
            | Self::Flags(_)
            | Self::Resource => false,
        }
    }
}

/// A function's parameter and result types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signature {
    /// Parameter types, in order.
    pub params: Vec<WireType>,
    /// Result types, in order.
    pub results: Vec<WireType>,
}

impl Signature {
    /// Whether any parameter contains a future or a stream.
    pub fn has_async_params(&self) -> bool {
        self.params.iter().any(WireType::is_async)
    }

    /// Whether any result contains a future or a stream.
    pub fn has_async_results(&self) -> bool {
        self.results.iter().any(WireType::is_async)
    }

    /// Async paths of the parameters, in the exact form and order wRPC registers them
    /// (`Serve::serve` `paths` argument): `None` = any index (list element).
    pub fn param_paths(&self) -> Vec<Box<[Option<usize>]>> {
        tuple_paths(&self.params)
    }

    /// Same for the results (`Invoke::invoke` `paths` argument).
    pub fn result_paths(&self) -> Vec<Box<[Option<usize>]>> {
        tuple_paths(&self.results)
    }
}

/// Paths of a function's parameters or results, as `wit-bindgen-wrpc` 0.11 emits them:
/// a `BTreeSet` of their Rust source text (`[Some(0), None]`), hence that text's order.
fn tuple_paths(types: &[WireType]) -> Vec<Box<[Option<usize>]>> {
    let mut out: BTreeMap<String, Vec<Option<usize>>> = BTreeMap::new();
    for (i, ty) in types.iter().enumerate() {
        let (nested, fut) = async_paths(ty);
        for path in nested {
            let mut full = Vec::with_capacity(path.len().saturating_add(1));
            full.push(Some(i));
            full.extend(path);
            out.insert(path_source(&full), full);
        }
        if fut {
            let full = vec![Some(i)];
            out.insert(path_source(&full), full);
        }
    }
    out.into_values().map(Vec::into_boxed_slice).collect()
}

/// The Rust source text of a path, the sort key `wit-bindgen-wrpc` uses.
fn path_source(path: &[Option<usize>]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|p| match p {
            Some(i) => format!("Some({i})"),
            None => "None".to_string(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Mirrors `wrpc_introspect::async_paths_ty` (0.7): nested async paths relative to a value of
/// type `ty`, and whether the value itself is a future or stream.
fn async_paths(ty: &WireType) -> (BTreeSet<Vec<Option<usize>>>, bool) {
    fn prefixed(
        prefix: Option<usize>,
        (nested, fut): (BTreeSet<Vec<Option<usize>>>, bool),
        out: &mut BTreeSet<Vec<Option<usize>>>,
    ) {
        for mut path in nested {
            path.insert(0, prefix);
            out.insert(path);
        }
        if fut {
            out.insert(vec![prefix]);
        }
    }
    fn union<'a>(
        tys: impl IntoIterator<Item = &'a WireType>,
    ) -> (BTreeSet<Vec<Option<usize>>>, bool) {
        let mut paths = BTreeSet::new();
        let mut is_fut = false;
        for ty in tys {
            let (nested, fut) = async_paths(ty);
            paths.extend(nested);
            is_fut |= fut;
        }
        (paths, is_fut)
    }
    match ty {
        WireType::List(elem) | WireType::FixedList(elem, _) => {
            let mut paths = BTreeSet::new();
            prefixed(None, async_paths(elem), &mut paths);
            (paths, false)
        }
        WireType::Option(ty) => async_paths(ty),
        WireType::Result { ok, err } => union(ok.as_deref().into_iter().chain(err.as_deref())),
        WireType::Variant(cases) => union(cases.iter().flatten()),
        WireType::Tuple(tys) | WireType::Record(tys) => {
            let mut paths = BTreeSet::new();
            for (i, ty) in tys.iter().enumerate() {
                prefixed(Some(i), async_paths(ty), &mut paths);
            }
            (paths, false)
        }
        WireType::Future(ty) => {
            let paths = ty
                .as_deref()
                .map(|ty| async_paths(ty).0)
                .unwrap_or_default();
            (paths, true)
        }
        WireType::Stream(elem) => {
            let mut paths = BTreeSet::new();
            if let Some(elem) = elem {
                prefixed(None, async_paths(elem), &mut paths);
            }
            (paths, true)
        }
        _ => (BTreeSet::new(), false),
    }
}

/// The type of the value that travels on an async path (what a child stream at `path` carries),
/// e.g. for params `(string, stream<u8>)` the path `[1]` carries `stream<u8>` chunks.
///
/// `option`, `result` and `variant` are transparent, as in wRPC; where several branches have an
/// async value at `path`, the first one in declaration order is returned.
pub fn type_at_path<'a>(types: &'a [WireType], path: &[usize]) -> Option<&'a WireType> {
    let (first, rest) = path.split_first()?;
    at_path(types.get(*first)?, rest)
}

fn at_path<'a>(ty: &'a WireType, path: &[usize]) -> Option<&'a WireType> {
    match ty {
        WireType::Option(inner) => at_path(inner, path),
        WireType::Result { ok, err } => ok
            .as_deref()
            .and_then(|ty| at_path(ty, path))
            .or_else(|| err.as_deref().and_then(|ty| at_path(ty, path))),
        WireType::Variant(cases) => cases.iter().flatten().find_map(|ty| at_path(ty, path)),
        WireType::Future(_) | WireType::Stream(_) if path.is_empty() => Some(ty),
        // The value a future resolves to is written on the future's own path.
        WireType::Future(inner) => at_path(inner.as_deref()?, path),
        WireType::Stream(elem) => at_path(elem.as_deref()?, path.split_first()?.1),
        WireType::List(elem) | WireType::FixedList(elem, _) => at_path(elem, path.split_first()?.1),
        WireType::Tuple(tys) | WireType::Record(tys) => {
            let (i, rest) = path.split_first()?;
            at_path(tys.get(*i)?, rest)
        }
        _ => None,
    }
}

/// Limits applied while scanning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueLimits {
    /// Most elements in any list whose elements are not single bytes or floats.
    pub max_list: u32,
    /// Most bytes in any string, resource handle or list of bytes or floats.
    pub max_bytes: u32,
    /// Deepest nesting of compound types.
    pub max_depth: u32,
}

impl ValueLimits {
    /// Enters a compound type at nesting `depth`, returning the depth of its contents.
    pub(crate) fn enter(&self, depth: u32) -> Result<u32, ValueError> {
        let depth = depth.saturating_add(1);
        if depth > self.max_depth {
            return Err(ValueError::TooDeep {
                max: self.max_depth,
            });
        }
        Ok(depth)
    }

    /// Checks a declared byte count (a string, or a list of bytes or floats).
    pub(crate) fn check_bytes(&self, len: u64) -> Result<(), ValueError> {
        if len > u64::from(self.max_bytes) {
            return Err(ValueError::TooManyBytes {
                len,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Checks a declared element count of any other list.
    pub(crate) fn check_len(&self, len: u64) -> Result<(), ValueError> {
        if len > u64::from(self.max_list) {
            return Err(ValueError::ListTooLong {
                len,
                max: self.max_list,
            });
        }
        Ok(())
    }
}

/// The outcome of scanning a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// A whole value (or tuple of values) occupies the first `n` bytes.
    Complete(usize),
    /// The buffer holds a valid prefix; more bytes are needed.
    Incomplete,
}

/// Why encoded bytes are not an acceptable value. Messages are short and name the limit or the fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// A list or stream chunk declares more elements than allowed.
    #[error("list of {len} elements exceeds the max-list limit of {max}")]
    ListTooLong {
        /// The declared length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A string, byte list or resource handle declares more bytes than allowed.
    #[error("a value of {len} bytes exceeds the max-frame limit of {max}")]
    TooManyBytes {
        /// The declared length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// Compound types nest deeper than allowed.
    #[error("value nests deeper than the limit of {max}")]
    TooDeep {
        /// The limit.
        max: u32,
    },
    /// A tag, case index or flag bit is out of range.
    #[error("invalid {what} {value}")]
    BadDiscriminant {
        /// What was being read, e.g. `option tag` or `variant case`.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A LEB128 integer is too long or overflows its width.
    #[error("malformed LEB128 integer")]
    BadLeb128,
    /// A `bool` byte is neither 0 nor 1.
    #[error("invalid bool byte {0}")]
    BadBool(u8),
    /// A `char` is not a Unicode scalar value.
    #[error("invalid char {0:#x}")]
    BadChar(u32),
    /// A `string` or `char` is not valid UTF-8.
    #[error("invalid UTF-8")]
    BadUtf8,
}

/// Scans the tuple `types` (a function's parameters or results, encoded
/// back to back) at the start of `buf`: the [`Scanner`] fed the whole buffer.
pub fn scan(types: &[WireType], buf: &[u8], limits: &ValueLimits) -> Result<Scanned, ValueError> {
    let mut scanner = Scanner::new(Arc::from(types), *limits);
    Ok(match scanner.feed(buf)? {
        Some(n) => Scanned::Complete(n),
        None => Scanned::Incomplete,
    })
}
