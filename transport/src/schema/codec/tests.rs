//! Conformance of the codec: byte-exact against the encoders and decoders
//! `wit-bindgen-wrpc` 0.11 generates, for a type of every kind; and
//! property tests (random types and values round-trip; truncated or
//! corrupted bytes are an error, never a panic).

use bytes::Bytes;
use proptest::prelude::*;
use wrpc_transport::{Decode, Encode, ResourceBorrow, ResourceOwn};

use super::*;
use crate::schema::upstream::Null;
use crate::schema::{scan, Enum, Flags, Record, Scanned, Signatures, Type, ValueLimits, Variant};

mod generated {
    wit_bindgen_wrpc::generate!({
        world: "conformance",
        path: "src/schema/codec/conformance.wit",
    });
}

use generated::test::conformance::types::{
    Color, Forty, Item, Point, Shape, Ten, ThirtyTwo, Three, Twenty,
};

const WIT: &str = include_str!("conformance.wit");
const TYPES: &str = "test:conformance/types@0.1.0";

const LIMITS: ValueLimits = ValueLimits {
    max_list: 1 << 16,
    max_bytes: 1 << 20,
    max_depth: 32,
};

use Value as V;

type Outgoing = Null;

fn upstream<T: Encode<Null>>(v: T) -> Vec<u8>
where
    <T::Encoder as tokio_util::codec::Encoder<T>>::Error: std::fmt::Debug,
{
    crate::schema::upstream::encode(v)
}

fn from_upstream<T: Decode<Null>>(bytes: &[u8]) -> T
where
    <T::Decoder as tokio_util::codec::Decoder>::Error: std::fmt::Debug,
{
    crate::schema::upstream::decode(bytes)
}

/// The type of parameter `param` of `func` in the conformance WIT.
fn param(func: &str, param: &str) -> Type {
    let sigs = Signatures::from_wit(&[&[("conformance.wit", WIT)]]).expect("WIT parses");
    let f = sigs.function(TYPES, func).expect("known function");
    f.params
        .iter()
        .find(|(n, _)| n == param)
        .map(|(_, t)| t.clone())
        .expect("known parameter")
}

/// Upstream's encoding of `value` is what ours is of the same value, which
/// upstream decodes back: returns the value as the decoder read it.
#[track_caller]
fn conforms<T>(ty: &Type, value: T) -> V
where
    T: Encode<Outgoing> + Decode<Outgoing> + Clone + std::fmt::Debug,
    <T::Encoder as tokio_util::codec::Encoder<T>>::Error: std::fmt::Debug,
    <T::Decoder as tokio_util::codec::Decoder>::Error: std::fmt::Debug,
{
    let up = upstream(value.clone());
    let (v, n) = decode_value(ty, &up, &LIMITS, &mut ToValue).expect("decodes upstream's bytes");
    assert_eq!(n, up.len(), "{ty}: took {n} of {} bytes", up.len());
    let mut ours = Vec::new();
    let deferred = encode_value(ty, &v, &mut ours).expect("encodes");
    assert!(deferred.is_empty());
    assert_eq!(ours, up, "{ty}: byte-exact with upstream's encoding");
    // Generated records and variants have no `PartialEq`: compare as shown.
    assert_eq!(
        format!("{:?}", from_upstream::<T>(&ours)),
        format!("{value:?}"),
        "{ty}: upstream decodes ours"
    );
    assert_eq!(
        scan(&[ty.wire()], &ours, &LIMITS),
        Ok(Scanned::Complete(ours.len()))
    );
    v
}

#[test]
fn scalars_conform() {
    for v in [false, true] {
        assert_eq!(conforms(&Type::Bool, v), V::Bool(v));
    }
    for v in [0, 1, 0x7f, 0x80, u8::MAX] {
        assert_eq!(conforms(&Type::U8, v), V::U8(v));
    }
    for v in [0, 127, 128, 16383, 16384, u16::MAX] {
        assert_eq!(conforms(&Type::U16, v), V::U16(v));
    }
    for v in [0, 1 << 7, 1 << 14, 1 << 21, 1 << 28, u32::MAX] {
        assert_eq!(conforms(&Type::U32, v), V::U32(v));
    }
    for v in [0, 1 << 35, 1 << 63, u64::MAX] {
        assert_eq!(conforms(&Type::U64, v), V::U64(v));
    }
    for v in [i8::MIN, -1, 0, 1, i8::MAX] {
        assert_eq!(conforms(&Type::S8, v), V::S8(v));
    }
    for v in [i16::MIN, -8193, -64, -1, 0, 63, 64, 8191, i16::MAX] {
        assert_eq!(conforms(&Type::S16, v), V::S16(v));
    }
    for v in [i32::MIN, -(1 << 27), -65, 0, 1 << 27, i32::MAX] {
        assert_eq!(conforms(&Type::S32, v), V::S32(v));
    }
    for v in [i64::MIN, -1, 0, i64::MAX] {
        assert_eq!(conforms(&Type::S64, v), V::S64(v));
    }
    for v in [0.0, -0.0, 1.5, f32::MIN, f32::INFINITY] {
        assert_eq!(conforms(&Type::F32, v), V::F32(v));
    }
    for v in [0.1, f64::MAX, f64::NEG_INFINITY] {
        assert_eq!(conforms(&Type::F64, v), V::F64(v));
    }
    // NaN is not equal to itself: compare its bits.
    let nan = upstream(f64::NAN);
    let (v, _) = decode_value(&Type::F64, &nan, &LIMITS, &mut ToValue).unwrap();
    assert!(matches!(v, V::F64(x) if x.to_bits() == f64::NAN.to_bits()));
    for c in ['a', '\0', 'é', '€', '😀', '\u{10ffff}'] {
        assert_eq!(conforms(&Type::Char, c), V::Char(c));
    }
    for s in ["", "héllo", "ƒ𐍈Ő"] {
        assert_eq!(conforms(&Type::String, s.to_string()), V::String(s.into()));
    }
}

#[test]
fn lists_and_tuples_conform() {
    let bytes = Type::List(Box::new(Type::U8));
    for b in [&b""[..], b"\x00\x01\xff", &[7; 300]] {
        assert_eq!(
            conforms(&bytes, Bytes::copy_from_slice(b)),
            V::Bytes(b.to_vec())
        );
    }
    let strings = param("compounds", "strings");
    let v = conforms(&strings, vec!["a".to_string(), String::new(), "xyz".into()]);
    assert_eq!(
        v,
        V::Items(vec![
            V::String("a".into()),
            V::String(String::new()),
            V::String("xyz".into())
        ])
    );
    conforms(&strings, Vec::<String>::new());
    let floats = Type::List(Box::new(Type::F32));
    conforms(&floats, vec![1.0f32, -2.5]);
    let nested = Type::List(Box::new(Type::List(Box::new(Type::U16))));
    conforms(&nested, vec![vec![1u16, 300], vec![], vec![u16::MAX]]);
    let t = param("compounds", "t");
    let v = conforms(&t, (7u8, "x".to_string(), Some('é')));
    assert_eq!(
        v,
        V::Items(vec![
            V::U8(7),
            V::String("x".into()),
            V::Case(1, Some(Box::new(V::Char('é'))))
        ])
    );
    conforms(&t, (0u8, String::new(), None::<char>));
}

#[test]
fn fixed_length_lists_travel_as_tuples() {
    // `wit-bindgen-wrpc` 0.11 has no fixed-length lists: ours are written
    // as a tuple of N, byte-exact with upstream's tuple encoding.
    let ty = Type::FixedList(Box::new(Type::U16), 3);
    let v = V::Items(vec![V::U16(1), V::U16(300), V::U16(u16::MAX)]);
    let mut ours = Vec::new();
    encode_value(&ty, &v, &mut ours).unwrap();
    assert_eq!(ours, upstream((1u16, 300u16, u16::MAX)));
    assert_eq!(
        decode_value(&ty, &ours, &LIMITS, &mut ToValue),
        Ok((v, ours.len()))
    );
    let bytes = Type::FixedList(Box::new(Type::U8), 4);
    let mut ours = Vec::new();
    encode_value(&bytes, &V::Bytes(vec![1, 2, 3, 4]), &mut ours).unwrap();
    assert_eq!(ours, [1, 2, 3, 4]);
    // The length is the type's: a list of another length does not encode.
    let err = encode_value(&bytes, &V::Bytes(vec![1]), &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "expected list<u8, 4>, got 1 bytes");
    let err = encode_value(&ty, &V::Items(vec![V::U16(1)]), &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "expected list<u16, 3> of 3 members, got 1");
    assert_eq!(
        scan(&[ty.wire()], &upstream((1u16, 2u16, 3u16)), &LIMITS),
        Ok(Scanned::Complete(3))
    );
}

#[test]
fn records_variants_enums_conform() {
    let item = param("compounds", "item");
    let value = Item {
        name: "pear".into(),
        qty: 3,
        tags: vec!["ripe".into()],
        data: Bytes::from_static(b"\x01\x02"),
        note: Some(-7),
        at: Point { x: -1, y: 2 },
    };
    let v = conforms(&item, value.clone());
    let V::Items(fields) = &v else {
        panic!("a record decodes to its fields: {v:?}")
    };
    assert_eq!(fields[0], V::String("pear".into()));
    assert_eq!(fields[5], V::Items(vec![V::S32(-1), V::S32(2)]));
    conforms(&param("compounds", "items"), vec![value.clone(), value]);
    let shape = param("compounds", "shape");
    assert_eq!(conforms(&shape, Shape::None), V::Case(0, None));
    assert_eq!(
        conforms(&shape, Shape::Circle(1.5)),
        V::Case(1, Some(Box::new(V::F64(1.5))))
    );
    conforms(
        &shape,
        Shape::Poly(vec![Point { x: 0, y: 0 }, Point { x: 5, y: -5 }]),
    );
    assert_eq!(
        conforms(&shape, Shape::Named("sq".into())),
        V::Case(3, Some(Box::new(V::String("sq".into()))))
    );
    let color = param("compounds", "color");
    assert_eq!(conforms(&color, Color::Blue), V::Case(2, None));
    let o = param("compounds", "o");
    assert_eq!(conforms(&o, None::<Option<u64>>), V::Case(0, None));
    assert_eq!(
        conforms(&o, Some(None::<u64>)),
        V::Case(1, Some(Box::new(V::Case(0, None))))
    );
    conforms(&o, Some(Some(u64::MAX)));
}

#[test]
fn results_of_every_shape_conform() {
    let (a, b, c, d) = (
        param("results", "a"),
        param("results", "b"),
        param("results", "c"),
        param("results", "d"),
    );
    assert_eq!(conforms(&a, Ok::<(), ()>(())), V::Case(0, None));
    assert_eq!(conforms(&a, Err::<(), ()>(())), V::Case(1, None));
    assert_eq!(
        conforms(&b, Ok::<String, ()>("x".into())),
        V::Case(0, Some(Box::new(V::String("x".into()))))
    );
    conforms(&b, Err::<String, ()>(()));
    conforms(&c, Ok::<(), String>(()));
    assert_eq!(
        conforms(&c, Err::<(), String>("no".into())),
        V::Case(1, Some(Box::new(V::String("no".into()))))
    );
    conforms(&d, Ok::<u64, Shape>(42));
    conforms(&d, Err::<u64, Shape>(Shape::Circle(2.0)));
}

#[test]
fn flags_conform_and_padding_is_upstream_s_alone() {
    let three = param("flag-sets", "a");
    assert_eq!(
        conforms(&three, Three::A0 | Three::A2),
        V::Flags(vec![0b101])
    );
    let ten = param("flag-sets", "b");
    assert_eq!(conforms(&ten, Ten::B9 | Ten::B0), V::Flags(vec![1, 2]));
    let thirty_two = param("flag-sets", "d");
    conforms(&thirty_two, ThirtyTwo::D31 | ThirtyTwo::D8);

    // 17–24 and 33–56 flags: upstream writes its Rust type whole (4 or 8
    // bytes) and reads ceil(n / 8). We write and read ceil(n / 8); the
    // transport drops upstream's zero padding at the end of a value.
    let twenty = param("flag-sets", "c");
    let value = Twenty::C19 | Twenty::C0;
    let up = upstream(value);
    assert_eq!(up, [1, 0, 0b1000, 0]);
    let (v, n) = decode_value(&twenty, &up, &LIMITS, &mut ToValue).unwrap();
    assert_eq!((v.clone(), n), (V::Flags(vec![1, 0, 0b1000]), 3));
    let mut ours = Vec::new();
    encode_value(&twenty, &v, &mut ours).unwrap();
    assert_eq!(ours, up[..3]);
    assert_eq!(from_upstream::<Twenty>(&ours), value);
    let forty = param("flag-sets", "e");
    let value = Forty::E39 | Forty::E1;
    let up = upstream(value);
    assert_eq!(up.len(), 8);
    let (v, n) = decode_value(&forty, &up, &LIMITS, &mut ToValue).unwrap();
    assert_eq!(n, 5);
    let mut ours = Vec::new();
    encode_value(&forty, &v, &mut ours).unwrap();
    assert_eq!(ours, up[..5]);
    assert_eq!(from_upstream::<Forty>(&ours), value);
    // A bit beyond the flags is refused both ways.
    assert!(encode_value(&three, &V::Flags(vec![0b1000]), &mut Vec::new()).is_err());
    assert_eq!(
        decode_value(&three, &[0b1000], &LIMITS, &mut ToValue),
        Err(DecodeError::Invalid(
            crate::schema::ValueError::BadDiscriminant {
                what: "flag bit",
                value: 3
            }
        ))
    );
}

#[test]
fn handles_conform() {
    let own = param("handles", "a");
    let borrowed = param("handles", "b");
    assert_eq!(own.to_string(), "own<bucket>");
    assert_eq!(borrowed.to_string(), "borrow<bucket>");
    let repr = Bytes::from_static(&[7; 16]);
    let up = upstream(ResourceOwn::<()>::new(repr.clone()));
    let (v, _) = decode_value(&own, &up, &LIMITS, &mut ToValue).unwrap();
    assert_eq!(v, V::Handle(repr.to_vec()));
    let mut ours = Vec::new();
    encode_value(&own, &v, &mut ours).unwrap();
    assert_eq!(ours, up);
    let up = upstream(ResourceBorrow::<()>::new(Bytes::new()));
    let (v, _) = decode_value(&borrowed, &up, &LIMITS, &mut ToValue).unwrap();
    assert_eq!(v, V::Handle(Vec::new()));
    let mut ours = Vec::new();
    encode_value(&borrowed, &v, &mut ours).unwrap();
    assert_eq!(ours, up);
}

#[test]
fn futures_and_streams_conform() {
    let (data, names, later, done) = (
        param("asyncs", "data"),
        param("asyncs", "names"),
        param("asyncs", "later"),
        param("asyncs", "done"),
    );
    // Upstream writes every future and stream pending (one 0 byte); so do we,
    // and each is handed back with its path.
    let params = [data.clone(), names.clone(), later.clone(), done.clone()];
    let values: Vec<V> = (0..4).map(|i| V::Pending(vec![i])).collect();
    let refs: Vec<&V> = values.iter().collect();
    let mut ours = Vec::new();
    let deferred = encode_tuple(&params, &refs, &mut ours).unwrap();
    assert_eq!(ours, [0, 0, 0, 0]);
    let paths: Vec<Vec<usize>> = deferred.iter().map(|d| d.path.clone()).collect();
    assert_eq!(paths, [[0], [1], [2], [3]]);
    type Fut = core::pin::Pin<Box<dyn core::future::Future<Output = u32> + Send>>;
    assert_eq!(upstream::<Fut>(Box::pin(async { 7 })), [0]);
    let stream = std::io::Cursor::new(vec![1u8, 2, 3]);
    assert_eq!(upstream(stream), [0]);
    let (decoded, n) = decode_tuple(&params, &ours, &LIMITS, &mut ToValue).unwrap();
    assert_eq!(n, 4);
    assert_eq!(decoded, values);
    // A ready future and an inline stream decode too (upstream reads them).
    assert_eq!(
        decode_value(&later, &[1, 7], &LIMITS, &mut ToValue),
        Ok((V::Ready(Some(Box::new(V::U32(7)))), 2))
    );
    assert_eq!(
        decode_value(&data, &[3, 1, 2, 3], &LIMITS, &mut ToValue),
        Ok((V::Bytes(vec![1, 2, 3]), 4))
    );
    assert_eq!(
        decode_value(&names, &[1, 1, b'a'], &LIMITS, &mut ToValue),
        Ok((V::Items(vec![V::String("a".into())]), 3))
    );
    // Chunks on a stream's path are upstream's lists; the end is an empty one.
    let chunk = upstream(Bytes::from_static(b"hey"));
    assert_eq!(
        decode_chunk(Some(&Type::U8), 0, &chunk, &LIMITS, &mut ToValue),
        Ok((Chunk::Bytes(b"hey".to_vec()), 4))
    );
    let chunk = upstream(vec!["a".to_string(), "bc".into()]);
    let (got, _) = decode_chunk(Some(&Type::String), 5, &chunk, &LIMITS, &mut ToValue).unwrap();
    assert_eq!(
        got,
        Chunk::Items(vec![V::String("a".into()), V::String("bc".into())])
    );
    assert!(
        decode_chunk(Some(&Type::String), 0, &[0], &LIMITS, &mut ToValue)
            .unwrap()
            .0
            .is_end()
    );
    // A future's value on its path is the bare value.
    assert_eq!(
        decode_value(&Type::U32, &upstream(9u32), &LIMITS, &mut ToValue),
        Ok((V::U32(9), 1))
    );
}

#[test]
fn nested_async_values_get_wrpc_paths() {
    // list<option<stream<u8>>>, then a record holding a future: paths go
    // through list elements and record fields; option adds none.
    let bytes = Type::Stream(Some(Box::new(Type::U8)));
    let list = Type::List(Box::new(Type::Option(Box::new(bytes))));
    let rec = Type::Record(Record {
        name: None,
        fields: vec![
            ("a".into(), Type::U8),
            ("b".into(), Type::Future(Some(Box::new(Type::String)))),
        ],
    });
    let values = [
        V::Items(vec![
            V::Case(1, Some(Box::new(V::Pending(vec![])))),
            V::Case(0, None),
            V::Case(1, Some(Box::new(V::Pending(vec![])))),
        ]),
        V::Items(vec![V::U8(1), V::Pending(vec![])]),
    ];
    let refs: Vec<&V> = values.iter().collect();
    let types = [list, rec];
    let mut out = Vec::new();
    let deferred = encode_tuple(&types, &refs, &mut out).unwrap();
    let paths: Vec<Vec<usize>> = deferred.iter().map(|d| d.path.clone()).collect();
    assert_eq!(paths, [vec![0, 0], vec![0, 2], vec![1, 1]]);
    let (decoded, _) = decode_tuple(&types, &out, &LIMITS, &mut ToValue).unwrap();
    let V::Items(items) = &decoded[0] else {
        panic!()
    };
    assert_eq!(items[2], V::Case(1, Some(Box::new(V::Pending(vec![0, 2])))));
    assert_eq!(decoded[1], V::Items(vec![V::U8(1), V::Pending(vec![1, 1])]));
}

#[test]
fn mismatches_name_where() {
    let item = param("compounds", "item");
    let bad = V::Items(vec![
        V::String("x".into()),
        V::String("not a number".into()),
        V::Items(vec![]),
        V::Bytes(vec![]),
        V::Case(0, None),
        V::Items(vec![V::S32(0), V::S32(0)]),
    ]);
    let err = encode_value(&item, &bad, &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "qty: expected u32, got a string");
    let shape = param("compounds", "shape");
    let err = encode_value(&shape, &V::Case(1, None), &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "circle: expected a payload of type f64");
    let err = encode_value(&shape, &V::Case(9, None), &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "variant shape has no case 9");
    let list = Type::List(Box::new(Type::Tuple(vec![Type::U8, Type::Bool])));
    let bad = V::Items(vec![
        V::Items(vec![V::U8(1), V::Bool(true)]),
        V::Items(vec![V::U8(1), V::U8(2)]),
    ]);
    let err = encode_value(&list, &bad, &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "[1][1]: expected bool, got a u8");
}

// ---- Property tests ----

/// Random types, a few levels deep.
fn any_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::Bool),
        Just(Type::U8),
        Just(Type::U16),
        Just(Type::U32),
        Just(Type::U64),
        Just(Type::S8),
        Just(Type::S16),
        Just(Type::S32),
        Just(Type::S64),
        Just(Type::F32),
        Just(Type::F64),
        Just(Type::Char),
        Just(Type::String),
        Just(Type::Own("r".into())),
        (0usize..8).prop_map(|n| Type::Enum(Enum {
            name: None,
            cases: (0..=n).map(|i| format!("c{i}")).collect(),
        })),
        (0usize..70).prop_map(|n| Type::Flags(Flags {
            name: None,
            flags: (0..n).map(|i| format!("f{i}")).collect(),
        })),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let boxed = |t: Option<Type>| t.map(Box::new);
        prop_oneof![
            inner.clone().prop_map(|t| Type::List(Box::new(t))),
            (inner.clone(), 0u32..4).prop_map(|(t, n)| Type::FixedList(Box::new(t), n)),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Type::Tuple),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|tys| Type::Record(Record {
                name: None,
                fields: tys
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (format!("f{i}"), t))
                    .collect(),
            })),
            prop::collection::vec(prop::option::of(inner.clone()), 1..4).prop_map(|cases| {
                Type::Variant(Variant {
                    name: None,
                    cases: cases
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| (format!("c{i}"), t))
                        .collect(),
                })
            }),
            inner.clone().prop_map(|t| Type::Option(Box::new(t))),
            (
                prop::option::of(inner.clone()),
                prop::option::of(inner.clone())
            )
                .prop_map(move |(ok, err)| Type::Result {
                    ok: boxed(ok),
                    err: boxed(err),
                }),
            prop::option::of(inner.clone()).prop_map(|t| Type::Future(t.map(Box::new))),
            prop::option::of(inner).prop_map(|t| Type::Stream(t.map(Box::new))),
        ]
    })
}

/// A random value of `ty` (futures and streams pending).
fn value_of(ty: &Type) -> BoxedStrategy<V> {
    let case = |cases: Vec<Option<Type>>| {
        (0..cases.len())
            .prop_flat_map(move |i| {
                let payload = match &cases[i] {
                    Some(t) => value_of(t).prop_map(|v| Some(Box::new(v))).boxed(),
                    None => Just(None).boxed(),
                };
                payload.prop_map(move |p| V::Case(i as u32, p))
            })
            .boxed()
    };
    match ty {
        Type::Bool => any::<bool>().prop_map(V::Bool).boxed(),
        Type::U8 => any::<u8>().prop_map(V::U8).boxed(),
        Type::U16 => any::<u16>().prop_map(V::U16).boxed(),
        Type::U32 => any::<u32>().prop_map(V::U32).boxed(),
        Type::U64 => any::<u64>().prop_map(V::U64).boxed(),
        Type::S8 => any::<i8>().prop_map(V::S8).boxed(),
        Type::S16 => any::<i16>().prop_map(V::S16).boxed(),
        Type::S32 => any::<i32>().prop_map(V::S32).boxed(),
        Type::S64 => any::<i64>().prop_map(V::S64).boxed(),
        // Floats compared by value: no NaN here (tested by bits above).
        Type::F32 => (-1e30f32..1e30).prop_map(V::F32).boxed(),
        Type::F64 => (-1e300f64..1e300).prop_map(V::F64).boxed(),
        Type::Char => any::<char>().prop_map(V::Char).boxed(),
        Type::String => ".{0,8}".prop_map(V::String).boxed(),
        Type::Own(_) | Type::Borrow(_) => prop::collection::vec(any::<u8>(), 0..20)
            .prop_map(V::Handle)
            .boxed(),
        Type::List(t) if **t == Type::U8 => prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(V::Bytes)
            .boxed(),
        Type::FixedList(t, n) if **t == Type::U8 => prop::collection::vec(any::<u8>(), *n as usize)
            .prop_map(V::Bytes)
            .boxed(),
        Type::List(t) => prop::collection::vec(value_of(t), 0..4)
            .prop_map(V::Items)
            .boxed(),
        Type::FixedList(t, n) => prop::collection::vec(value_of(t), *n as usize)
            .prop_map(V::Items)
            .boxed(),
        Type::Tuple(tys) => tys
            .iter()
            .map(value_of)
            .collect::<Vec<_>>()
            .prop_map(V::Items)
            .boxed(),
        Type::Record(r) => r
            .fields
            .iter()
            .map(|(_, t)| value_of(t))
            .collect::<Vec<_>>()
            .prop_map(V::Items)
            .boxed(),
        Type::Variant(v) => case(v.cases.iter().map(|(_, t)| t.clone()).collect()),
        Type::Enum(e) => case(vec![None; e.cases.len()]),
        Type::Option(t) => case(vec![None, Some((**t).clone())]),
        Type::Result { ok, err } => case(vec![ok.as_deref().cloned(), err.as_deref().cloned()]),
        Type::Flags(f) => {
            let n = f.flags.len();
            prop::collection::vec(any::<bool>(), n)
                .prop_map(move |set| {
                    let mut bits = vec![0u8; n.div_ceil(8)];
                    for (i, on) in set.into_iter().enumerate() {
                        if on {
                            bits[i / 8] |= 1 << (i % 8);
                        }
                    }
                    V::Flags(bits)
                })
                .boxed()
        }
        Type::Future(_) | Type::Stream(_) => Just(V::Pending(Vec::new())).boxed(),
    }
}

/// A type and a value of it.
fn typed_value() -> impl Strategy<Value = (Type, V)> {
    any_type().prop_flat_map(|ty| {
        let value = value_of(&ty);
        (Just(ty), value)
    })
}

/// `Pending` paths as the decoder reports them (the encoder's source gives none).
fn with_paths(ty: &Type, v: V, path: &mut Vec<usize>) -> V {
    match (ty, v) {
        (Type::Future(_) | Type::Stream(_), V::Pending(_)) => V::Pending(path.clone()),
        (Type::List(t) | Type::FixedList(t, _), V::Items(items)) => V::Items(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    path.push(i);
                    let v = with_paths(t, v, path);
                    path.pop();
                    v
                })
                .collect(),
        ),
        (Type::Tuple(tys), V::Items(items)) => V::Items(members(tys.iter(), items, path)),
        (Type::Record(r), V::Items(items)) => {
            V::Items(members(r.fields.iter().map(|(_, t)| t), items, path))
        }
        (Type::Variant(var), V::Case(i, Some(p))) => {
            let t = var.cases[i as usize].1.as_ref().unwrap();
            V::Case(i, Some(Box::new(with_paths(t, *p, path))))
        }
        (Type::Option(t), V::Case(1, Some(p))) => {
            V::Case(1, Some(Box::new(with_paths(t, *p, path))))
        }
        (Type::Result { ok, err }, V::Case(i, Some(p))) => {
            let t = if i == 0 { ok } else { err };
            V::Case(
                i,
                Some(Box::new(with_paths(t.as_deref().unwrap(), *p, path))),
            )
        }
        (_, v) => v,
    }
}

fn members<'t>(
    tys: impl Iterator<Item = &'t Type>,
    items: Vec<V>,
    path: &mut Vec<usize>,
) -> Vec<V> {
    tys.zip(items)
        .enumerate()
        .map(|(i, (t, v))| {
            path.push(i);
            let v = with_paths(t, v, path);
            path.pop();
            v
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any value of any type decodes to itself, taking all its bytes, and
    /// the scanner delimits it the same.
    #[test]
    fn random_values_round_trip((ty, v) in typed_value()) {
        let mut bytes = Vec::new();
        encode_value(&ty, &v, &mut bytes).unwrap();
        let expected = with_paths(&ty, v, &mut Vec::new());
        let limits = ValueLimits { max_list: 1 << 16, max_bytes: 1 << 20, max_depth: 64 };
        prop_assert_eq!(
            decode_value(&ty, &bytes, &limits, &mut ToValue),
            Ok((expected, bytes.len()))
        );
        prop_assert_eq!(scan(&[ty.wire()], &bytes, &limits), Ok(Scanned::Complete(bytes.len())));
    }

    /// A cut value is incomplete (never a value, never a panic); a
    /// corrupted one decodes or fails, and the decoder and the scanner agree.
    #[test]
    fn cut_or_corrupted_bytes_are_errors(
        (ty, v) in typed_value(),
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = Vec::new();
        encode_value(&ty, &v, &mut bytes).unwrap();
        let limits = ValueLimits { max_list: 1 << 16, max_bytes: 1 << 20, max_depth: 64 };
        if !bytes.is_empty() {
            let n = cut.index(bytes.len());
            prop_assert_eq!(
                decode_value(&ty, &bytes[..n], &limits, &mut ToValue),
                Err(DecodeError::Incomplete)
            );
            let mut bad = bytes.clone();
            let i = at.index(bad.len());
            bad[i] = byte;
            let decoded = decode_value(&ty, &bad, &limits, &mut Check).map(|(_, n)| n);
            let scanned = scan(&[ty.wire()], &bad, &limits);
            match (decoded, scanned) {
                (Ok(n), Ok(Scanned::Complete(m))) => prop_assert_eq!(n, m),
                (Err(DecodeError::Incomplete), Ok(Scanned::Incomplete)) => {}
                (Err(DecodeError::Invalid(a)), Err(b)) => prop_assert_eq!(a, b),
                (d, s) => prop_assert!(false, "decoder {:?} vs scanner {:?}", d, s),
            }
        }
    }
}
