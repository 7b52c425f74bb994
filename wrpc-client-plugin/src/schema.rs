//! Wire types of a component's imports, from wasmtime's component types, so
//! the router can check results before they are decoded.

use transport::schema::{Signature, WireType};
use wasmtime::component::types::{ComponentFunc, Type};

/// The wire type of `ty`, or `None` for what wRPC cannot carry (maps, error contexts).
pub(crate) fn wire_type(ty: &Type) -> Option<WireType> {
    Some(match ty {
        Type::Bool => WireType::Bool,
        Type::S8 => WireType::S8,
        Type::U8 => WireType::U8,
        Type::S16 => WireType::S16,
        Type::U16 => WireType::U16,
        Type::S32 => WireType::S32,
        Type::U32 => WireType::U32,
        Type::S64 => WireType::S64,
        Type::U64 => WireType::U64,
        Type::Float32 => WireType::F32,
        Type::Float64 => WireType::F64,
        Type::Char => WireType::Char,
        Type::String => WireType::String,
        Type::List(l) => WireType::List(Box::new(wire_type(&l.ty())?)),
        Type::Record(r) => WireType::Record(
            r.fields()
                .map(|f| wire_type(&f.ty))
                .collect::<Option<_>>()?,
        ),
        Type::Tuple(t) => WireType::Tuple(t.types().map(|t| wire_type(&t)).collect::<Option<_>>()?),
        Type::Variant(v) => WireType::Variant(
            v.cases()
                .map(|c| match &c.ty {
                    Some(t) => wire_type(t).map(Some),
                    None => Some(None),
                })
                .collect::<Option<_>>()?,
        ),
        Type::Enum(e) => WireType::Enum(u32::try_from(e.names().len()).ok()?),
        Type::Option(o) => WireType::Option(Box::new(wire_type(&o.ty())?)),
        Type::Result(r) => WireType::Result {
            ok: match r.ok() {
                Some(t) => Some(Box::new(wire_type(&t)?)),
                None => None,
            },
            err: match r.err() {
                Some(t) => Some(Box::new(wire_type(&t)?)),
                None => None,
            },
        },
        Type::Flags(f) => WireType::Flags(u32::try_from(f.names().len()).ok()?),
        Type::Own(_) | Type::Borrow(_) => WireType::Resource,
        Type::Future(f) => WireType::Future(match f.ty() {
            Some(t) => Some(Box::new(wire_type(&t)?)),
            None => None,
        }),
        Type::Stream(s) => WireType::Stream(match s.ty() {
            Some(t) => Some(Box::new(wire_type(&t)?)),
            None => None,
        }),
        Type::Map(_) | Type::ErrorContext => return None,
    })
}

/// The wire signature of a component function (an import to route, or an
/// export to serve), if every type can travel.
pub fn signature(func: &ComponentFunc) -> Option<Signature> {
    Some(Signature {
        params: func
            .params()
            .map(|(_, t)| wire_type(&t))
            .collect::<Option<_>>()?,
        results: func
            .results()
            .map(|t| wire_type(&t))
            .collect::<Option<_>>()?,
    })
}
