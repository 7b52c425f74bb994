//! What a `future<T>` or `stream<T>` may carry between a guest and the
//! wire. Wasmtime 48 reads and writes futures and streams only with a
//! Rust type fixed at compile time (`StreamAny::try_into_stream_reader::<T>`),
//! so the payloads are a fixed set: every scalar, `string`, `list<u8>`,
//! `list<string>`, and the results and options of those a future typically
//! resolves to. `stream<u8>` has a path of its own that moves bytes without
//! a `Val` per byte.

use transport::schema::Type;
use wasmtime::component::{ComponentType, Lift, Lower, Val};

/// A payload type: converts to and from the `Val` the codec reads and writes.
pub(crate) trait Payload:
    ComponentType + Lift + Lower + Send + Sync + Unpin + Sized + 'static
{
    fn into_val(self) -> Val;
    fn from_val(v: Val) -> Option<Self>;
}

macro_rules! scalar {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl Payload for $t {
            fn into_val(self) -> Val {
                Val::$v(self)
            }
            fn from_val(v: Val) -> Option<Self> {
                match v {
                    Val::$v(x) => Some(x),
                    _ => None,
                }
            }
        }
    )*};
}

scalar! {
    bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => S8, i16 => S16, i32 => S32, i64 => S64,
    f32 => Float32, f64 => Float64, char => Char, String => String,
}

impl Payload for () {
    fn into_val(self) -> Val {
        Val::Tuple(Vec::new())
    }
    fn from_val(_: Val) -> Option<Self> {
        Some(())
    }
}

impl<T: Payload> Payload for Vec<T> {
    fn into_val(self) -> Val {
        Val::List(self.into_iter().map(T::into_val).collect())
    }
    fn from_val(v: Val) -> Option<Self> {
        match v {
            Val::List(items) => items.into_iter().map(T::from_val).collect(),
            _ => None,
        }
    }
}

impl<T: Payload> Payload for Option<T> {
    fn into_val(self) -> Val {
        Val::Option(self.map(|v| Box::new(v.into_val())))
    }
    fn from_val(v: Val) -> Option<Self> {
        match v {
            Val::Option(None) => Some(None),
            Val::Option(Some(v)) => T::from_val(*v).map(Some),
            _ => None,
        }
    }
}

/// `result<_, E>` (`T = ()` for a side without a type).
impl<T: Payload, E: Payload> Payload for Result<T, E> {
    fn into_val(self) -> Val {
        Val::Result(match self {
            Ok(v) => Ok(side(v)),
            Err(e) => Err(side(e)),
        })
    }
    fn from_val(v: Val) -> Option<Self> {
        match v {
            Val::Result(Ok(v)) => T::from_val(v.map_or(Val::Tuple(Vec::new()), |v| *v)).map(Ok),
            Val::Result(Err(e)) => E::from_val(e.map_or(Val::Tuple(Vec::new()), |e| *e)).map(Err),
            _ => None,
        }
    }
}

/// A result side: `None` for `()`.
fn side<T: Payload>(v: T) -> Option<Box<Val>> {
    match v.into_val() {
        Val::Tuple(items) if items.is_empty() => None,
        v => Some(Box::new(v)),
    }
}

/// Something done with the Rust type of a payload.
pub(crate) trait Visit {
    type Out;
    fn visit<T: Payload>(self) -> Self::Out;
}

/// `visit` called with the Rust type of `ty` (the payload of a future or
/// stream; `None` for one without a type), or `None` when it is not one of
/// the payloads Wasmtime's dynamic API can carry here.
pub(crate) fn dispatch<V: Visit>(ty: Option<&Type>, v: V) -> Option<V::Out> {
    macro_rules! result {
        ($ok:ty, $err:ty) => {
            Some(v.visit::<Result<$ok, $err>>())
        };
    }
    let is = |t: &Option<Box<Type>>, want: &Type| t.as_deref() == Some(want);
    let list_u8 = Type::List(Box::new(Type::U8));
    let list_string = Type::List(Box::new(Type::String));
    match ty {
        None => Some(v.visit::<()>()),
        Some(Type::Bool) => Some(v.visit::<bool>()),
        Some(Type::U8) => Some(v.visit::<u8>()),
        Some(Type::U16) => Some(v.visit::<u16>()),
        Some(Type::U32) => Some(v.visit::<u32>()),
        Some(Type::U64) => Some(v.visit::<u64>()),
        Some(Type::S8) => Some(v.visit::<i8>()),
        Some(Type::S16) => Some(v.visit::<i16>()),
        Some(Type::S32) => Some(v.visit::<i32>()),
        Some(Type::S64) => Some(v.visit::<i64>()),
        Some(Type::F32) => Some(v.visit::<f32>()),
        Some(Type::F64) => Some(v.visit::<f64>()),
        Some(Type::Char) => Some(v.visit::<char>()),
        Some(Type::String) => Some(v.visit::<String>()),
        Some(t) if *t == list_u8 => Some(v.visit::<Vec<u8>>()),
        Some(t) if *t == list_string => Some(v.visit::<Vec<String>>()),
        Some(Type::Option(t)) if **t == Type::String => Some(v.visit::<Option<String>>()),
        Some(Type::Option(t)) if **t == list_u8 => Some(v.visit::<Option<Vec<u8>>>()),
        Some(Type::Result {
            ok: None,
            err: None,
        }) => result!((), ()),
        Some(Type::Result { ok: None, err }) if is(err, &Type::String) => result!((), String),
        Some(Type::Result { ok, err }) if is(ok, &Type::String) && is(err, &Type::String) => {
            result!(String, String)
        }
        Some(Type::Result { ok, err }) if is(ok, &list_u8) && is(err, &Type::String) => {
            result!(Vec<u8>, String)
        }
        Some(Type::Result { ok, err }) if is(ok, &Type::U64) && is(err, &Type::String) => {
            result!(u64, String)
        }
        _ => None,
    }
}

/// What the payloads are, for the message refusing another.
pub(crate) const SUPPORTED: &str = "scalars, string, list<u8>, list<string>, option<string>, \
option<list<u8>>, result, result<_, string>, result<string, string>, result<list<u8>, string>, \
result<u64, string>";

/// The first future or stream in `ty` whose payload cannot be carried, as
/// WIT writes it.
pub(crate) fn unsupported(ty: &Type) -> Option<String> {
    struct Nothing;
    impl Visit for Nothing {
        type Out = ();
        fn visit<T: Payload>(self) {}
    }
    match ty {
        Type::Future(p) | Type::Stream(p) => match dispatch(p.as_deref(), Nothing) {
            Some(()) => None,
            None => Some(ty.to_string()),
        },
        Type::List(t) | Type::FixedList(t, _) | Type::Option(t) => unsupported(t),
        Type::Tuple(tys) => tys.iter().find_map(unsupported),
        Type::Record(r) => r.fields.iter().find_map(|(_, t)| unsupported(t)),
        Type::Variant(v) => v.cases.iter().flat_map(|(_, t)| t).find_map(unsupported),
        Type::Result { ok, err } => ok
            .as_deref()
            .and_then(unsupported)
            .or_else(|| err.as_deref().and_then(unsupported)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use transport::schema::{Function, Record};

    use super::*;

    #[test]
    fn payloads_outside_the_set_are_named() {
        let stream = |t: Type| Type::Stream(Some(Box::new(t)));
        let future = |t: Type| Type::Future(Some(Box::new(t)));
        let point = Type::Record(Record {
            name: Some("point".into()),
            fields: vec![("x".into(), Type::S32)],
        });
        for ok in [
            stream(Type::U8),
            stream(Type::String),
            Type::Stream(None),
            future(Type::U64),
            future(Type::Result {
                ok: None,
                err: Some(Box::new(Type::String)),
            }),
            Type::List(Box::new(stream(Type::U32))),
        ] {
            assert_eq!(unsupported(&ok), None, "{ok}");
        }
        assert_eq!(
            unsupported(&stream(point.clone())).as_deref(),
            Some("stream<record point>")
        );
        let nested = Type::Option(Box::new(future(Type::List(Box::new(Type::U64)))));
        assert_eq!(unsupported(&nested).as_deref(), Some("future<list<u64>>"));
        let f = Function::new(vec![("p".into(), stream(point))], Vec::new(), true);
        let why = crate::values::refusal(&f).unwrap();
        assert!(
            why.starts_with("it passes stream<record point>, whose payload"),
            "{why}"
        );
        let handle = Function::new(Vec::new(), vec![Type::Own("bucket".into())], false);
        assert!(crate::values::refusal(&handle)
            .unwrap()
            .contains("resource handle (own<bucket>)"));
    }
}
