//! Round trips for every kind of type, and byte-exactness against the
//! encoders and decoders `wit-bindgen-wrpc` 0.11 generates.

use core::pin::Pin;
use core::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder as _, Encoder as _};
use transport::schema::WireType;

use super::*;
use crate::wit_source::Catalog;

mod generated {
    wit_bindgen_wrpc::generate!({
        world: "codec",
        path: "src/value/codec.wit",
    });
}

use generated::test::codec::types::{Color, Item, Many, Perms, Shape};

const WIT: &str = include_str!("codec.wit");
const TYPES: &str = "test:codec/types@0.1.0";

fn catalog() -> Catalog {
    Catalog::from_packages(&[vec![("codec.wit".into(), WIT.into())]]).expect("test WIT parses")
}

/// Parameter `param` of `func` in the types interface (shared with the
/// WIT-syntax tests).
pub(super) fn param(func: &str, param: &str) -> Ty {
    let catalog = catalog();
    let (_, _, f) = catalog
        .lookup(&format!("{TYPES}.{func}"))
        .expect("known function");
    f.params
        .iter()
        .find(|(n, _)| n == param)
        .map(|(_, ty)| ty.clone())
        .expect("known parameter")
}

/// The bytes argument `json` encodes to as a parameter of type `ty`.
pub(super) fn enc(ty: &Ty, json: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_arg(ty, json, &mut out).unwrap_or_else(|e| panic!("{json}: {e}"));
    out
}

/// Why argument `json` does not encode as a parameter of type `ty`.
pub(super) fn enc_err(ty: &Ty, json: &str) -> String {
    let mut out = Vec::new();
    encode_arg(ty, json, &mut out)
        .expect_err("must not encode")
        .to_string()
}

fn dec(ty: &Ty, bytes: &[u8]) -> serde_json::Value {
    let mut values = decode_all(&[ty], bytes).unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"));
    serde_json::to_value(values.pop().expect("one value")).expect("serializable")
}

/// `json` encodes, and decodes back to `printed`.
#[track_caller]
fn roundtrip_as(ty: &Ty, json: &str, printed: &str) -> Vec<u8> {
    let bytes = enc(ty, json);
    let expected: serde_json::Value = serde_json::from_str(printed).expect("valid JSON");
    assert_eq!(dec(ty, &bytes), expected, "{ty}: {json}");
    bytes
}

#[track_caller]
fn roundtrip(ty: &Ty, json: &str) -> Vec<u8> {
    roundtrip_as(ty, json, json)
}

/// A reader and writer that carry nothing: the synchronous codecs never use it.
struct Null;

impl tokio::io::AsyncWrite for Null {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncRead for Null {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl wrpc_transport::Index<Null> for Null {
    fn index(&self, _: &[usize]) -> anyhow::Result<Null> {
        Ok(Null)
    }
}

/// `v` as wRPC's own encoder writes it.
fn upstream<T: wrpc_transport::Encode<Null>>(v: T) -> Vec<u8>
where
    <T::Encoder as tokio_util::codec::Encoder<T>>::Error: core::fmt::Debug,
{
    let mut buf = BytesMut::new();
    T::Encoder::default()
        .encode(v, &mut buf)
        .expect("upstream encodes");
    buf.to_vec()
}

/// `bytes` as wRPC's own decoder reads them, which must take all of them.
fn upstream_decode<T: wrpc_transport::Decode<Null>>(bytes: &[u8]) -> T
where
    <T::Decoder as tokio_util::codec::Decoder>::Error: core::fmt::Debug,
{
    let mut src = BytesMut::from(bytes);
    let v = T::Decoder::default()
        .decode(&mut src)
        .expect("upstream decodes")
        .expect("a whole value");
    assert!(src.is_empty(), "{} bytes left", src.len());
    v
}

/// Our encoding of `json` is upstream's of `v`; upstream decodes all of
/// ours (to a value it encodes back to the same bytes); we decode
/// upstream's to `json`.
#[track_caller]
fn same<T>(ty: &Ty, json: &str, v: T)
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
    let Ty::List(item) = &items else {
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
    let catalog = catalog();
    let (_, _, f) = catalog.lookup(&format!("{TYPES}.scalars")).unwrap();
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
    let catalog = catalog();
    let (_, _, f) = catalog.lookup(&format!("{TYPES}.scalars")).unwrap();
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
        roundtrip_as(&Ty::F32, json, printed);
        roundtrip_as(&Ty::F64, json, printed);
    }
    // Bare words for strings and byte lists only.
    roundtrip_as(&Ty::String, "hello", r#""hello""#);
    roundtrip_as(&param("compound", "b"), "hi there", r#""hi there""#);
    roundtrip_as(&param("compound", "b"), "[104, 105]", r#""hi""#);
    let (_, _, named) = catalog.lookup(&format!("{TYPES}.named")).unwrap();
    assert_eq!(named.results.len(), 2);
    assert_eq!(named.results[0], (Some("x".into()), Ty::U32));
    let values = decode_all(&[&Ty::U32, &Ty::String], &[5, 2, b'o', b'k']).unwrap();
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
    assert_eq!(enc_err(&Ty::U8, "256"), "expected u8, got 256");
    assert_eq!(enc_err(&Ty::S8, "-129"), "expected s8, got -129");
    assert_eq!(enc_err(&Ty::U64, "1.5"), "expected u64, got 1.5");
    assert_eq!(
        enc_err(&Ty::F32, "1e39"),
        "expected f32, got 1e+39 (out of range)"
    );
    assert_eq!(
        enc_err(&Ty::Char, r#""ab""#),
        r#"expected char (a one-character string), got "ab""#
    );
    assert_eq!(enc_err(&Ty::String, "42"), "expected string, got 42");
    assert_eq!(enc_err(&Ty::U32, "nope"), "expected u32, got nope");
    assert!(enc_err(&Ty::U32, "{\"a\": 1,}").starts_with("not valid JSON"));
    let long = format!("\"{}\"", "x".repeat(100));
    assert_eq!(
        enc_err(&Ty::U32, &long),
        format!("expected u32, got \"{}…", "x".repeat(39))
    );
}

#[test]
fn unsupported_types_are_named() {
    let catalog = catalog();
    let api = "test:codec/unsupported@0.1.0";
    let (_, _, upload) = catalog.lookup(&format!("{api}.upload")).unwrap();
    assert_eq!(upload.params[1].1.unsupported(), Some("stream<u8>"));
    assert_eq!(
        upload.results[0].1.unsupported(),
        Some("future<result<_, string>>")
    );
    let (_, _, nested) = catalog.lookup(&format!("{api}.nested")).unwrap();
    assert_eq!(nested.params[0].1.unsupported(), Some("stream<string>"));
    let (_, _, get) = catalog.lookup(&format!("{api}.bucket.get")).unwrap();
    assert_eq!(get.params[0].1.unsupported(), Some("borrow<bucket>"));
    let (_, _, open) = catalog.lookup(&format!("{api}.open")).unwrap();
    assert_eq!(open.results[0].1.unsupported(), Some("own<bucket>"));
    let mut out = Vec::new();
    assert_eq!(
        encode_arg(&upload.params[1].1, "[]", &mut out)
            .unwrap_err()
            .to_string(),
        "stream<u8> is not supported by `call` yet (no streams, futures or resources)"
    );
}

#[test]
fn lookup_names_what_is_known() {
    let catalog = catalog();
    let (instance, func, _) = catalog.lookup(&format!("{TYPES}.named")).unwrap();
    assert_eq!((instance, func), (TYPES, "named"));
    assert_eq!(
        catalog.lookup(&format!("{TYPES}.nope")).unwrap_err(),
        format!("`{TYPES}` has no function `nope` (it has: compound, named, scalars)")
    );
    assert_eq!(
        catalog.lookup("test:codec/other@0.1.0.f").unwrap_err(),
        "no interface `test:codec/other@0.1.0` in the WIT (it has: test:codec/types@0.1.0, test:codec/unsupported@0.1.0)"
    );
    assert_eq!(
        catalog.lookup(TYPES).unwrap_err(),
        format!("`{TYPES}` is an interface; name one of its functions as `{TYPES}.FUNC` (compound, named, scalars)")
    );
    assert!(catalog
        .lookup("nodots")
        .unwrap_err()
        .contains("is not INSTANCE.FUNC"));
}

/// What `Ty` carries on the wire: must be what the transport derives from the same WIT.
fn wire(ty: &Ty) -> WireType {
    let boxed = |ty: &Option<Box<Ty>>| ty.as_deref().map(|t| Box::new(wire(t)));
    match ty {
        Ty::Bool => WireType::Bool,
        Ty::U8 => WireType::U8,
        Ty::U16 => WireType::U16,
        Ty::U32 => WireType::U32,
        Ty::U64 => WireType::U64,
        Ty::S8 => WireType::S8,
        Ty::S16 => WireType::S16,
        Ty::S32 => WireType::S32,
        Ty::S64 => WireType::S64,
        Ty::F32 => WireType::F32,
        Ty::F64 => WireType::F64,
        Ty::Char => WireType::Char,
        Ty::String => WireType::String,
        Ty::List(t) => WireType::List(Box::new(wire(t))),
        Ty::Option(t) => WireType::Option(Box::new(wire(t))),
        Ty::Result { ok, err } => WireType::Result {
            ok: boxed(ok),
            err: boxed(err),
        },
        Ty::Tuple(tys) => WireType::Tuple(tys.iter().map(wire).collect()),
        Ty::Record { fields, .. } => {
            WireType::Record(fields.iter().map(|(_, t)| wire(t)).collect())
        }
        Ty::Variant { cases, .. } => {
            WireType::Variant(cases.iter().map(|(_, t)| t.as_ref().map(wire)).collect())
        }
        Ty::Enum { cases, .. } => WireType::Enum(cases.len() as u32),
        Ty::Flags { flags, .. } => WireType::Flags(flags.len() as u32),
        Ty::Unsupported(what) => panic!("{what}"),
    }
}

#[test]
fn named_types_match_the_transports() {
    let catalog = catalog();
    for func in ["scalars", "compound", "named"] {
        let (_, _, f) = catalog.lookup(&format!("{TYPES}.{func}")).unwrap();
        let params: Vec<WireType> = f.params.iter().map(|(_, t)| wire(t)).collect();
        let results: Vec<WireType> = f.results.iter().map(|(_, t)| wire(t)).collect();
        let sig = catalog.signatures().get(TYPES, func).unwrap();
        assert_eq!(params, sig.params, "{func}");
        assert_eq!(results, sig.results, "{func}");
        assert_eq!(f.wire, *sig);
    }
    // And for the keyvalue WIT, loaded from its directory as `--wit` does.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/wrpc-keyvalue");
    let kv = Catalog::from_paths(&[dir.into()]).expect("keyvalue WIT");
    let mut n = 0;
    for (instance, func, sig) in kv.signatures().iter() {
        let (_, _, f) = kv.lookup(&format!("{instance}.{func}")).unwrap();
        let params: Vec<WireType> = f.params.iter().map(|(_, t)| wire(t)).collect();
        assert_eq!(params, sig.params, "{func}");
        n += 1;
    }
    assert_eq!(n, 9);
}

#[test]
fn decoding_bad_bytes_fails_without_panicking() {
    let items = param("compound", "items");
    let good = enc(
        &items,
        r#"[{"name":"a","qty":1,"tags":["x"],"data":"yz","note":5}]"#,
    );
    for n in 0..good.len() {
        let err = decode_all(&[&items], &good[..n]).unwrap_err();
        assert!(err.ends_early(), "{n}: {err}");
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        decode_all(&[&items], &long).unwrap_err().to_string(),
        "1 bytes after the value"
    );
    // Claims a huge list, has nothing: fails, allocates nothing big.
    assert!(decode_all(&[&items], &[0xff, 0xff, 0xff, 0xff, 0x0f])
        .unwrap_err()
        .ends_early());
    assert!(decode_all(&[&Ty::U16], &[0xff, 0xff, 0x7f]).is_err());
    assert!(decode_all(&[&Ty::S8, &Ty::Bool], &[0, 2]).is_err());
    assert!(decode_all(&[&param("compound", "c")], &[3]).is_err());
    assert!(decode_all(&[&Ty::Char], &[0xff]).is_err());
    assert!(decode_all(&[&Ty::String], &[1, 0xff]).is_err());
}
