//! Round trips for every kind of type, and byte-exactness against the
//! encoders and decoders `wit-bindgen-wrpc` 0.11 generates.

use std::sync::LazyLock;

use bytes::Bytes;

use super::*;
use crate::schema::codec::DecodeError;
use crate::schema::{Function, Record, Signatures, ValueLimits, WireType};
use crate::Limits;

mod generated {
    wit_bindgen_wrpc::generate!({
        world: "codec",
        path: "src/schema/json/codec.wit",
    });
}

use generated::test::codec::types::{Color, Item, Many, Perms, Shape};

const WIT: &str = include_str!("codec.wit");
const TYPES: &str = "test:codec/types@0.1.0";

/// The limits `wrpc-ext` decodes results with.
static LIMITS: LazyLock<ValueLimits> = LazyLock::new(|| Limits::DEFAULT.value());

fn signatures() -> Signatures {
    Signatures::from_wit(&[&[("codec.wit", WIT)]]).expect("test WIT parses")
}

/// `func` of `instance`.
fn function(instance: &str, func: &str) -> Function {
    signatures()
        .function(instance, func)
        .cloned()
        .unwrap_or_else(|| panic!("no {instance}#{func}"))
}

/// Parameter `param` of `func` in the types interface (shared with the
/// WIT-syntax tests).
pub(super) fn param(func: &str, param: &str) -> Type {
    function(TYPES, func)
        .params
        .iter()
        .find(|(n, _)| n == param)
        .map(|(_, ty)| ty.clone())
        .expect("known parameter")
}

/// The bytes argument `json` encodes to as a parameter of type `ty`.
pub(super) fn enc(ty: &Type, json: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_arg(ty, json, &mut out).unwrap_or_else(|e| panic!("{json}: {e}"));
    out
}

/// Why argument `json` does not encode as a parameter of type `ty`.
pub(super) fn enc_err(ty: &Type, json: &str) -> String {
    let mut out = Vec::new();
    encode_arg(ty, json, &mut out)
        .expect_err("must not encode")
        .to_string()
}

fn dec(ty: &Type, bytes: &[u8]) -> serde_json::Value {
    let mut values = decode_all(core::slice::from_ref(ty), bytes, &LIMITS)
        .unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"));
    serde_json::to_value(values.pop().expect("one value")).expect("serializable")
}

/// `json` encodes, and decodes back to `printed`.
#[track_caller]
fn roundtrip_as(ty: &Type, json: &str, printed: &str) -> Vec<u8> {
    let bytes = enc(ty, json);
    let expected: serde_json::Value = serde_json::from_str(printed).expect("valid JSON");
    assert_eq!(dec(ty, &bytes), expected, "{ty}: {json}");
    bytes
}

#[track_caller]
fn roundtrip(ty: &Type, json: &str) -> Vec<u8> {
    roundtrip_as(ty, json, json)
}

use crate::schema::upstream::{decode as upstream_decode, encode as upstream, Null};

/// Our encoding of `json` is upstream's of `v`; upstream decodes all of
/// ours (to a value it encodes back to the same bytes); we decode
/// upstream's to `json`.
#[track_caller]
fn same<T>(ty: &Type, json: &str, v: T)
where
    T: wrpc_transport::Encode<Null> + wrpc_transport::Decode<Null>,
    <T::Encoder as tokio_util::codec::Encoder<T>>::Error: core::fmt::Debug,
    <T::Decoder as tokio_util::codec::Decoder>::Error: core::fmt::Debug,
{
    let ours = enc(ty, json);
    let theirs = upstream(v);
    assert_eq!(ours, theirs, "{ty}: {json}");
    assert_eq!(upstream(upstream_decode::<T>(&ours)), ours, "{ty}: {json}");
    let expected: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    assert_eq!(dec(ty, &theirs), expected, "{ty}: {json}");
}

#[test]
fn records_match_upstream() {
    let items = param("compound", "items");
    let Type::List(item) = &items else {
        panic!("{items}")
    };
    let v = Item {
        name: "bolt".into(),
        qty: 300,
        tags: vec!["a".into(), "€".into()],
        data: Bytes::from_static(b"hi"),
        note: Some(-2),
    };
    same(
        item,
        r#"{"name":"bolt","qty":300,"tags":["a","€"],"data":"hi","note":-2}"#,
        v.clone(),
    );
    let none = Item {
        note: None,
        tags: vec![],
        data: Bytes::from_static(&[0, 0xff]),
        ..v
    };
    same(
        item,
        r#"{"name":"bolt","qty":300,"tags":[],"data":{"base64":"AP8="},"note":null}"#,
        none.clone(),
    );
    // The same bytes from an array, in any member order.
    assert_eq!(
        enc(
            item,
            r#"{"note":null,"data":[0,255],"tags":[],"qty":300,"name":"bolt"}"#
        ),
        upstream(none.clone())
    );
    same(
        &items,
        r#"[{"name":"bolt","qty":300,"tags":[],"data":{"base64":"AP8="},"note":null}]"#,
        vec![none],
    );
}

#[test]
fn variants_enums_and_flags_match_upstream() {
    let shape = param("compound", "s");
    same(&shape, r#""none""#, Shape::None);
    same(&shape, r#"{"circle":1.5}"#, Shape::Circle(1.5));
    same(
        &shape,
        r#"{"poly":[[1,-2],[2147483647,-2147483648]]}"#,
        Shape::Poly(vec![(1, -2), (i32::MAX, i32::MIN)]),
    );
    // A case without a payload also as an object with null.
    assert_eq!(enc(&shape, r#"{"none":null}"#), upstream(Shape::None));

    let color = param("compound", "c");
    same(&color, r#""red""#, Color::Red);
    same(&color, r#""blue""#, Color::Blue);

    let perms = param("compound", "p");
    same(&perms, "[]", Perms::empty());
    same(&perms, r#"["read","exec"]"#, Perms::READ | Perms::EXEC);
    let many = param("compound", "m");
    same(&many, r#"["f0","f9"]"#, Many::F0 | Many::F9);
    same(&many, r#"["f7","f8"]"#, Many::F7 | Many::F8);
    // Flags print in declaration order, whatever order they came in.
    roundtrip_as(&many, r#"["f9","f0","f0"]"#, r#"["f0","f9"]"#);
}

#[test]
fn options_and_results_match_upstream() {
    let o = param("compound", "o");
    same(&o, "null", None::<String>);
    same(&o, r#""x""#, Some("x".to_string()));
    let oo = param("compound", "oo");
    same(&oo, "null", None::<Option<u8>>);
    same(&oo, r#"{"some":null}"#, Some(None::<u8>));
    same(&oo, r#"{"some":3}"#, Some(Some(3u8)));
    let r = param("compound", "r");
    same(
        &r,
        r#"{"ok":18446744073709551615}"#,
        Ok::<u64, String>(u64::MAX),
    );
    same(&r, r#"{"err":"bad"}"#, Err::<u64, String>("bad".into()));
    let u = param("compound", "u");
    same(&u, r#"{"ok":null}"#, Ok::<(), ()>(()));
    same(&u, r#"{"err":null}"#, Err::<(), ()>(()));
    assert_eq!(enc(&u, r#""err""#), upstream(Err::<(), ()>(())));
}

#[test]
fn integers_and_bytes_match_upstream() {
    let f = function(TYPES, "scalars");
    let ty = |name: &str| {
        f.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    for v in [0i8, -1, 63, 64, -64, -65, i8::MIN, i8::MAX] {
        same(&ty("f"), &v.to_string(), v);
    }
    for v in [0i16, -1, 63, 64, -64, -65, 8191, -8193, i16::MIN, i16::MAX] {
        same(&ty("g"), &v.to_string(), v);
    }
    for v in [0i32, -1, 64, -65, i32::MIN, i32::MAX] {
        same(&ty("h"), &v.to_string(), v);
    }
    for v in [0i64, -1, 64, -65, i64::MIN, i64::MAX] {
        same(&ty("i"), &v.to_string(), v);
    }
    for v in [0u8, 127, 128, u8::MAX] {
        same(&ty("b"), &v.to_string(), v);
    }
    for v in [0u16, 127, 128, 16384, u16::MAX] {
        same(&ty("c"), &v.to_string(), v);
    }
    for v in [0u32, 300, u32::MAX] {
        same(&ty("d"), &v.to_string(), v);
    }
    for v in [0u64, 1 << 35, u64::MAX] {
        same(&ty("e"), &v.to_string(), v);
    }
    same(&ty("a"), "true", true);
    same(&ty("j"), "0.1", 0.1f32);
    same(&ty("k"), "-2.5e300", -2.5e300f64);
    same(&ty("l"), r#""€""#, '€');
    same(&ty("l"), r#""😀""#, '😀');
    same(&ty("m"), r#""tab\tquote\"""#, "tab\tquote\"".to_string());

    let bytes = param("compound", "b");
    same(&bytes, r#""hello""#, Bytes::from_static(b"hello"));
    same(
        &bytes,
        r#"{"base64":"/wA="}"#,
        Bytes::from_static(&[0xff, 0]),
    );
    same(&bytes, r#""""#, Bytes::new());
    let t = param("compound", "t");
    same(&t, r#"[7,"x"]"#, (7u8, "x".to_string()));
}

#[test]
fn round_trips() {
    let f = function(TYPES, "scalars");
    let args = [
        "false",
        "255",
        "65535",
        "4294967295",
        "0",
        "-128",
        "-32768",
        "-2147483648",
        "-9223372036854775808",
        "-1.5",
        "1e-300",
        r#""x""#,
        r#""""#,
    ];
    for ((_, ty), arg) in f.params.iter().zip(args) {
        roundtrip(ty, arg);
    }
    for (json, printed) in [
        ("\"NaN\"", "\"NaN\""),
        ("\"-inf\"", "\"-Infinity\""),
        ("3", "3.0"),
    ] {
        roundtrip_as(&Type::F32, json, printed);
        roundtrip_as(&Type::F64, json, printed);
    }
    // Bare words for strings and byte lists only.
    roundtrip_as(&Type::String, "hello", r#""hello""#);
    roundtrip_as(&param("compound", "b"), "hi there", r#""hi there""#);
    roundtrip_as(&param("compound", "b"), "[104, 105]", r#""hi""#);
    // One result, a tuple; values of several types decode back to back.
    let pair = function(TYPES, "pair");
    assert_eq!(pair.results, [Type::Tuple(vec![Type::U32, Type::String])]);
    let values = decode_all(&pair.results, &[5, 2, b'o', b'k'], &LIMITS).unwrap();
    assert_eq!(
        values,
        [Json::Array(vec![
            Json::Number(5.into()),
            Json::String("ok".into())
        ])]
    );
    let values = decode_all(&[Type::U32, Type::String], &[5, 2, b'o', b'k'], &LIMITS).unwrap();
    assert_eq!(values, [Json::Number(5.into()), Json::String("ok".into())]);
}

#[test]
fn errors_name_the_path() {
    let items = param("compound", "items");
    let good = r#"{"name":"a","qty":1,"tags":[],"data":"","note":null}"#;
    let bad = r#"{"name":"a","qty":-1,"tags":[],"data":"","note":null}"#;
    assert_eq!(
        enc_err(&items, &format!("[{good},{good},{good},{bad}]")),
        "[3].qty: expected u32, got -1"
    );
    assert_eq!(
        enc_err(&items, r#"[{"name":"a","qty":1,"tags":[],"data":""}]"#),
        "[0]: missing field `note` of record item"
    );
    assert_eq!(
        enc_err(
            &items,
            r#"[{"name":"a","qty":1,"tags":[],"data":"","note":null,"x":1}]"#
        ),
        "[0]: unknown field `x` of record item (fields: name, qty, tags, data, note)"
    );
    assert_eq!(
        enc_err(
            &items,
            r#"[{"name":"a","qty":1,"tags":["a",2],"data":"","note":null}]"#
        ),
        "[0].tags[1]: expected string, got 2"
    );
    assert_eq!(
        enc_err(
            &items,
            r#"[{"name":"a","qty":1,"tags":[],"data":[1,256],"note":null}]"#
        ),
        "[0].data[1]: expected u8, got 256"
    );
    assert_eq!(
        enc_err(
            &items,
            r#"[{"name":"a","qty":1,"tags":[],"data":{"base64":"!"},"note":null}]"#
        ),
        "[0].data.base64: not base64: Invalid symbol 33, offset 0."
    );
    let shape = param("compound", "s");
    assert_eq!(
        enc_err(&shape, r#""square""#),
        r#"unknown case `square` of variant shape ("case" or {"case": …}; cases: none, circle, poly)"#
    );
    assert_eq!(
        enc_err(&shape, r#""circle""#),
        "circle: expected a payload of type f64"
    );
    assert_eq!(
        enc_err(&shape, r#"{"poly":[[1,"x"]]}"#),
        "poly[0][1]: expected s32, got \"x\""
    );
    assert_eq!(
        enc_err(&param("compound", "c"), r#""pink""#),
        "unknown case `pink` of enum color (one of: red, green, blue)"
    );
    assert_eq!(
        enc_err(&param("compound", "p"), r#"["read","all"]"#),
        "[1]: unknown flag \"all\" of flags perms (an array of: read, write, exec)"
    );
    assert_eq!(
        enc_err(&param("compound", "r"), r#"{"ok":1,"err":"x"}"#),
        r#"expected result<u64, string> ({"ok": …} or {"err": …}), got {"err":"x","ok":1}"#
    );
    assert_eq!(
        enc_err(&param("compound", "u"), r#"{"ok":1}"#),
        "ok: this case has no payload (use null), got 1"
    );
    assert_eq!(
        enc_err(&param("compound", "oo"), "3"),
        r#"expected option<option<u8>> (null or {"some": …}), got 3"#
    );
    assert_eq!(
        enc_err(&param("compound", "t"), "[1]"),
        "expected tuple<u8, string> (an array of 2), got [1]"
    );
    assert_eq!(enc_err(&Type::U8, "256"), "expected u8, got 256");
    assert_eq!(enc_err(&Type::S8, "-129"), "expected s8, got -129");
    assert_eq!(enc_err(&Type::U64, "1.5"), "expected u64, got 1.5");
    assert_eq!(
        enc_err(&Type::F32, "1e39"),
        "expected f32, got 1e+39 (out of range)"
    );
    assert_eq!(
        enc_err(&Type::Char, r#""ab""#),
        r#"expected char (a one-character string), got "ab""#
    );
    assert_eq!(enc_err(&Type::String, "42"), "expected string, got 42");
    assert_eq!(enc_err(&Type::U32, "nope"), "expected u32, got nope");
    assert!(enc_err(&Type::U32, "{\"a\": 1,}").starts_with("not valid JSON"));
    let long = format!("\"{}\"", "x".repeat(100));
    assert_eq!(
        enc_err(&Type::U32, &long),
        format!("expected u32, got \"{}…", "x".repeat(39))
    );
}

#[test]
fn unsupported_types_are_named() {
    let api = "test:codec/unsupported@0.1.0";
    let upload = function(api, "upload");
    assert_eq!(
        first_unsupported(&upload.params[1].1).as_deref(),
        Some("stream<u8>")
    );
    assert_eq!(
        first_unsupported(&upload.results[0]).as_deref(),
        Some("future<result<_, string>>")
    );
    let nested = function(api, "nested");
    assert_eq!(
        first_unsupported(&nested.params[0].1).as_deref(),
        Some("stream<string>")
    );
    let get = function(api, "bucket.get");
    assert_eq!(
        first_unsupported(&get.params[0].1).as_deref(),
        Some("borrow<bucket>")
    );
    let open = function(api, "open");
    assert_eq!(
        first_unsupported(&open.results[0]).as_deref(),
        Some("own<bucket>")
    );
    assert_eq!(first_unsupported(&param("compound", "items")), None);
    let mut out = Vec::new();
    assert_eq!(
        encode_arg(&upload.params[1].1, "[]", &mut out)
            .unwrap_err()
            .to_string(),
        "stream<u8> is not supported by `call` yet (no streams, futures or resources)"
    );
}

#[test]
fn types_carry_their_names() {
    let compound = function(TYPES, "compound");
    let shown: Vec<String> = compound
        .params
        .iter()
        .map(|(name, ty)| format!("{name}: {ty}"))
        .collect();
    assert_eq!(
        shown,
        [
            "items: list<record item>",
            "s: variant shape",
            "p: flags perms",
            "m: flags many",
            "c: enum color",
            "r: result<u64, string>",
            "o: option<string>",
            "oo: option<option<u8>>",
            "b: list<u8>",
            "u: result",
            "t: tuple<u8, string>",
        ]
    );
    assert_eq!(compound.results[0].to_string(), "result<_, variant shape>");
    let Type::List(item) = &compound.params[0].1 else {
        panic!("not a list")
    };
    let Type::Record(Record { name, fields }) = &**item else {
        panic!("not a record")
    };
    assert_eq!(name.as_deref(), Some("item"));
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["name", "qty", "tags", "data", "note"]);
    // The wire shape the transport checks is derived from the same types.
    assert_eq!(
        compound.signature().params,
        compound
            .params
            .iter()
            .map(|(_, t)| t.wire())
            .collect::<Vec<WireType>>()
    );
}

#[test]
fn decoding_bad_bytes_fails_without_panicking() {
    let items = param("compound", "items");
    let good = enc(
        &items,
        r#"[{"name":"a","qty":1,"tags":["x"],"data":"yz","note":5}]"#,
    );
    let types = [items];
    for n in 0..good.len() {
        let err = decode_all(&types, &good[..n], &LIMITS).unwrap_err();
        assert_eq!(err, DecodeError::Incomplete, "{n}: {err}");
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        decode_all(&types, &long, &LIMITS).unwrap_err().to_string(),
        "1 bytes after the value"
    );
    // Claims a huge list, has nothing: over the limit, or (without one)
    // incomplete; either way nothing big is allocated.
    let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(
        decode_all(&types, &huge, &LIMITS).unwrap_err(),
        DecodeError::Invalid(crate::schema::ValueError::ListTooLong { .. })
    ));
    let unlimited = ValueLimits {
        max_list: u32::MAX,
        ..*LIMITS
    };
    assert_eq!(
        decode_all(&types, &huge, &unlimited).unwrap_err(),
        DecodeError::Incomplete
    );
    let bad = |types: &[Type], bytes: &[u8]| decode_all(types, bytes, &LIMITS).is_err();
    assert!(bad(&[Type::U16], &[0xff, 0xff, 0x7f]));
    assert!(bad(&[Type::S8, Type::Bool], &[0, 2]));
    assert!(bad(&[param("compound", "c")], &[3]));
    assert!(bad(&[Type::Char], &[0xff]));
    assert!(bad(&[Type::String], &[1, 0xff]));
}
