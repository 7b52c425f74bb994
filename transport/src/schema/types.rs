//! The one model of WIT types: [`Type`], with the names values need
//! (record fields, variant and enum cases, flags). Everything else is
//! derived from it: the wire shape the scanner checks ([`Type::wire`]), the
//! codec's walk, and the WIT text shown in errors (`Display`).

use core::fmt;

use super::WireType;

/// A WIT type as values of it travel: structural, with member names.
///
/// Built from WIT by [`Signatures`](super::Signatures) (one walk of
/// `wit-parser`'s `Resolve`) or, in the host, from Wasmtime's component
/// types; both give the same tree for the same WIT.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
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
    List(Box<Type>),
    /// `list<T, N>`: exactly `N` elements.
    FixedList(Box<Type>, u32),
    /// `tuple<…>`.
    Tuple(Vec<Type>),
    /// A record.
    Record(Record),
    /// A variant.
    Variant(Variant),
    /// An enum.
    Enum(Enum),
    /// Flags.
    Flags(Flags),
    /// `option<T>`.
    Option(Box<Type>),
    /// `result<T, E>`, either side possibly without a type.
    Result {
        /// The `ok` payload.
        ok: Option<Box<Type>>,
        /// The `err` payload.
        err: Option<Box<Type>>,
    },
    /// `own<R>`: a handle, travelling as the opaque bytes its server chose.
    Own(String),
    /// `borrow<R>`: the same on the wire.
    Borrow(String),
    /// `future<T>`.
    Future(Option<Box<Type>>),
    /// `stream<T>`.
    Stream(Option<Box<Type>>),
}

/// A record's name (if it has one) and fields in declaration order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The type's name, when known.
    pub name: Option<String>,
    /// `(name, type)` of each field.
    pub fields: Vec<(String, Type)>,
}

/// A variant's name and cases in declaration order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    /// The type's name, when known.
    pub name: Option<String>,
    /// `(name, payload)` of each case.
    pub cases: Vec<(String, Option<Type>)>,
}

/// An enum's name and cases in declaration order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Enum {
    /// The type's name, when known.
    pub name: Option<String>,
    /// The cases.
    pub cases: Vec<String>,
}

/// Flags: their type's name and flag names in declaration order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flags {
    /// The type's name, when known.
    pub name: Option<String>,
    /// The flags; flag `i` is bit `i % 8` of byte `i / 8`.
    pub flags: Vec<String>,
}

impl Flags {
    /// How many bytes a value takes on the wire: `ceil(n / 8)`.
    pub fn width(&self) -> usize {
        self.flags.len().div_ceil(8)
    }

    /// How many zero bytes a `wit-bindgen-wrpc` 0.11 peer writes after the
    /// value: it writes its Rust representation (`u8`, `u16`, `u32` or
    /// `u64`) whole but reads only [`Flags::width`] bytes. 1 for 17–24
    /// flags, 3 to 1 for 33–56, 0 otherwise.
    pub fn upstream_padding(&self) -> usize {
        flags_upstream_padding(self.flags.len())
    }
}

/// [`Flags::upstream_padding`] of `n` flags.
pub(crate) fn flags_upstream_padding(n: usize) -> usize {
    let repr = match n {
        0..=8 => 1,
        9..=16 => 2,
        17..=32 => 4,
        _ => 8,
    };
    usize::saturating_sub(repr, n.div_ceil(8))
}

impl Type {
    /// The wire shape of values of this type.
    pub fn wire(&self) -> WireType {
        let boxed = |ty: &Option<Box<Type>>| ty.as_deref().map(|ty| Box::new(ty.wire()));
        match self {
            Self::Bool => WireType::Bool,
            Self::U8 => WireType::U8,
            Self::U16 => WireType::U16,
            Self::U32 => WireType::U32,
            Self::U64 => WireType::U64,
            Self::S8 => WireType::S8,
            Self::S16 => WireType::S16,
            Self::S32 => WireType::S32,
            Self::S64 => WireType::S64,
            Self::F32 => WireType::F32,
            Self::F64 => WireType::F64,
            Self::Char => WireType::Char,
            Self::String => WireType::String,
            Self::List(elem) => WireType::List(Box::new(elem.wire())),
            Self::FixedList(elem, n) => WireType::FixedList(Box::new(elem.wire()), *n),
            Self::Tuple(tys) => WireType::Tuple(tys.iter().map(Self::wire).collect()),
            Self::Record(r) => WireType::Record(r.fields.iter().map(|(_, t)| t.wire()).collect()),
            Self::Variant(v) => WireType::Variant(
                v.cases
                    .iter()
                    .map(|(_, t)| t.as_ref().map(Self::wire))
                    .collect(),
            ),
            Self::Enum(e) => WireType::Enum(u32::try_from(e.cases.len()).unwrap_or(u32::MAX)),
            Self::Flags(f) => WireType::Flags(u32::try_from(f.flags.len()).unwrap_or(u32::MAX)),
            Self::Option(t) => WireType::Option(Box::new(t.wire())),
            Self::Result { ok, err } => WireType::Result {
                ok: boxed(ok),
                err: boxed(err),
            },
            Self::Own(_) | Self::Borrow(_) => WireType::Resource,
            Self::Future(t) => WireType::Future(boxed(t)),
            Self::Stream(t) => WireType::Stream(boxed(t)),
        }
    }

    /// Whether a future or stream occurs anywhere in this type.
    pub fn is_async(&self) -> bool {
        match self {
            Self::Future(_) | Self::Stream(_) => true,
            Self::List(t) | Self::FixedList(t, _) | Self::Option(t) => t.is_async(),
            Self::Tuple(tys) => tys.iter().any(Self::is_async),
            Self::Record(r) => r.fields.iter().any(|(_, t)| t.is_async()),
            Self::Variant(v) => v.cases.iter().flat_map(|(_, t)| t).any(Self::is_async),
            Self::Result { ok, err } => {
                ok.as_deref().is_some_and(Self::is_async)
                    || err.as_deref().is_some_and(Self::is_async)
            }
            _ => false,
        }
    }

    /// The first resource handle in this type, as WIT writes it (`own<r>`).
    pub fn handle(&self) -> Option<String> {
        match self {
            Self::Own(_) | Self::Borrow(_) => Some(self.to_string()),
            Self::List(t) | Self::FixedList(t, _) | Self::Option(t) => t.handle(),
            Self::Future(t) | Self::Stream(t) => t.as_deref().and_then(Self::handle),
            Self::Tuple(tys) => tys.iter().find_map(Self::handle),
            Self::Record(r) => r.fields.iter().find_map(|(_, t)| t.handle()),
            Self::Variant(v) => v.cases.iter().flat_map(|(_, t)| t).find_map(Self::handle),
            Self::Result { ok, err } => ok
                .as_deref()
                .and_then(Self::handle)
                .or_else(|| err.as_deref().and_then(Self::handle)),
            _ => None,
        }
    }

    /// A named type's name, for messages.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Record(r) => r.name.as_deref(),
            Self::Variant(v) => v.name.as_deref(),
            Self::Enum(e) => e.name.as_deref(),
            Self::Flags(f) => f.name.as_deref(),
            _ => None,
        }
    }
}

/// The type as WIT writes it; named types by name (`record point`), or
/// their shape when they have none.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |f: &mut fmt::Formatter<'_>, ty: &Option<Box<Type>>| match ty {
            Some(ty) => write!(f, "{ty}"),
            None => f.write_str("_"),
        };
        let named = |f: &mut fmt::Formatter<'_>, kind: &str, name: &Option<String>| match name {
            Some(name) => write!(f, "{kind} {name}"),
            None => f.write_str(kind),
        };
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
            Self::List(t) => write!(f, "list<{t}>"),
            Self::FixedList(t, n) => write!(f, "list<{t}, {n}>"),
            Self::Tuple(tys) => {
                f.write_str("tuple<")?;
                for (i, t) in tys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(">")
            }
            Self::Record(r) => named(f, "record", &r.name),
            Self::Variant(v) => named(f, "variant", &v.name),
            Self::Enum(e) => named(f, "enum", &e.name),
            Self::Flags(x) => named(f, "flags", &x.name),
            Self::Option(t) => write!(f, "option<{t}>"),
            Self::Result {
                ok: None,
                err: None,
            } => f.write_str("result"),
            Self::Result { ok, err: None } => {
                f.write_str("result<")?;
                opt(f, ok)?;
                f.write_str(">")
            }
            Self::Result { ok, err } => {
                f.write_str("result<")?;
                opt(f, ok)?;
                f.write_str(", ")?;
                opt(f, err)?;
                f.write_str(">")
            }
            Self::Own(r) => write!(f, "own<{r}>"),
            Self::Borrow(r) => write!(f, "borrow<{r}>"),
            Self::Future(None) => f.write_str("future"),
            Self::Future(Some(t)) => write!(f, "future<{t}>"),
            Self::Stream(None) => f.write_str("stream"),
            Self::Stream(Some(t)) => write!(f, "stream<{t}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(n: usize) -> Flags {
        Flags {
            name: None,
            flags: (0..n).map(|i| format!("f{i}")).collect(),
        }
    }

    #[test]
    fn flags_widths_and_upstream_padding() {
        let cases = [
            (0, 0, 1),
            (1, 1, 0),
            (8, 1, 0),
            (9, 2, 0),
            (16, 2, 0),
            (17, 3, 1),
            (24, 3, 1),
            (25, 4, 0),
            (32, 4, 0),
            (33, 5, 3),
            (40, 5, 3),
            (48, 6, 2),
            (56, 7, 1),
            (57, 8, 0),
            (64, 8, 0),
        ];
        for (n, width, pad) in cases {
            assert_eq!(flags(n).width(), width, "{n} flags");
            assert_eq!(flags(n).upstream_padding(), pad, "{n} flags");
        }
    }

    #[test]
    fn shown_as_wit() {
        let ty = Type::Result {
            ok: Some(Box::new(Type::List(Box::new(Type::Option(Box::new(
                Type::FixedList(Box::new(Type::U8), 4),
            )))))),
            err: None,
        };
        assert_eq!(ty.to_string(), "result<list<option<list<u8, 4>>>>");
        let ty = Type::Result {
            ok: None,
            err: Some(Box::new(Type::Own("bucket".into()))),
        };
        assert_eq!(ty.to_string(), "result<_, own<bucket>>");
        assert_eq!(ty.handle().as_deref(), Some("own<bucket>"));
        assert_eq!(
            Type::Stream(Some(Box::new(Type::Tuple(vec![Type::String, Type::Bool])))).to_string(),
            "stream<tuple<string, bool>>"
        );
        let point = Type::Record(Record {
            name: Some("point".into()),
            fields: vec![("x".into(), Type::S32), ("y".into(), Type::S32)],
        });
        assert_eq!(point.to_string(), "record point");
        assert_eq!(point.wire(), WireType::Record(vec![WireType::S32; 2]));
        assert_eq!(
            Type::FixedList(Box::new(Type::U16), 3).wire(),
            WireType::FixedList(Box::new(WireType::U16), 3)
        );
    }
}
