use core::future::Future;
use core::pin::Pin;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::upstream::Null;
use bytes::Bytes;
use wrpc_transport::{Decode, Encode, ResourceBorrow, ResourceOwn};

use super::codec::{decode_chunk, decode_tuple, decode_value, Check, Chunk, DecodeError};
use super::*;
use WireType as W;

/// A named type of the shape `w` (names made up), for the decoder.
fn named(w: &WireType) -> Type {
    let boxed = |t: &Option<Box<WireType>>| t.as_deref().map(|t| Box::new(named(t)));
    match w {
        W::Bool => Type::Bool,
        W::U8 => Type::U8,
        W::U16 => Type::U16,
        W::U32 => Type::U32,
        W::U64 => Type::U64,
        W::S8 => Type::S8,
        W::S16 => Type::S16,
        W::S32 => Type::S32,
        W::S64 => Type::S64,
        W::F32 => Type::F32,
        W::F64 => Type::F64,
        W::Char => Type::Char,
        W::String => Type::String,
        W::List(t) => Type::List(Box::new(named(t))),
        W::FixedList(t, n) => Type::FixedList(Box::new(named(t)), *n),
        W::Tuple(ts) => Type::Tuple(ts.iter().map(named).collect()),
        W::Record(ts) => Type::Record(Record {
            name: None,
            fields: ts
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("f{i}"), named(t)))
                .collect(),
        }),
        W::Variant(cs) => Type::Variant(Variant {
            name: None,
            cases: cs
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("c{i}"), t.as_ref().map(named)))
                .collect(),
        }),
        W::Enum(n) => Type::Enum(Enum {
            name: None,
            cases: (0..*n).map(|i| format!("c{i}")).collect(),
        }),
        W::Flags(n) => Type::Flags(Flags {
            name: None,
            flags: (0..*n).map(|i| format!("f{i}")).collect(),
        }),
        W::Option(t) => Type::Option(Box::new(named(t))),
        W::Result { ok, err } => Type::Result {
            ok: boxed(ok),
            err: boxed(err),
        },
        W::Resource => Type::Own("r".into()),
        W::Future(t) => Type::Future(boxed(t)),
        W::Stream(t) => Type::Stream(boxed(t)),
    }
}

/// The decoder's verdict on `buf` in the scanner's terms: the independent
/// oracle every scan below is checked against.
fn oracle(types: &[WireType], buf: &[u8], limits: &ValueLimits) -> Result<Scanned, ValueError> {
    let types: Vec<Type> = types.iter().map(named).collect();
    match decode_tuple(&types, buf, limits, &mut Check) {
        Ok((_, n)) => Ok(Scanned::Complete(n)),
        Err(DecodeError::Incomplete) => Ok(Scanned::Incomplete),
        Err(DecodeError::Invalid(err)) => Err(err),
        Err(err) => panic!("the check sink refused: {err}"),
    }
}

/// Shadows [`super::scan`] in these tests: the decoder's verdict, which the
/// scanner must reach fed whole and fed in pieces (see [`check_stream`]).
fn scan(types: &[WireType], buf: &[u8], limits: &ValueLimits) -> Result<Scanned, ValueError> {
    let expected = oracle(types, buf, limits);
    assert_eq!(super::scan(types, buf, limits), expected, "scanner, whole");
    check_stream(types, buf, limits, &expected);
    expected
}

/// Feeds `pieces` to a new scanner and maps its outcome to `scan`'s terms, checking that
/// the outcome is sticky and `consumed` agrees.
fn feed_pieces<'a>(
    types: &[WireType],
    limits: &ValueLimits,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Scanned, ValueError> {
    let mut scanner = Scanner::new(Arc::from(types), *limits);
    let mut offset = 0;
    for piece in pieces {
        match scanner.feed(piece) {
            Ok(None) => offset += piece.len(),
            Ok(Some(k)) => {
                assert!(k <= piece.len());
                assert_eq!(scanner.feed(&[0xff]), Ok(Some(0)));
                assert_eq!(scanner.consumed(), (offset + k) as u64);
                return Ok(Scanned::Complete(offset + k));
            }
            Err(err) => {
                assert_eq!(scanner.feed(&[0]), Err(err.clone()));
                return Err(err);
            }
        }
    }
    let last = scanner.feed(&[]);
    assert_eq!(last, Ok(None), "an empty piece completed nothing");
    assert_eq!(scanner.consumed(), offset as u64);
    Ok(Scanned::Incomplete)
}

/// The scanner agrees with `expected` (`scan` of the whole `buf`) fed whole, byte by byte
/// (small inputs: also against `scan` of every prefix), in pieces of several sizes, with
/// empty pieces interleaved, and split at every point (every pair of points when tiny).
fn check_stream(
    types: &[WireType],
    buf: &[u8],
    limits: &ValueLimits,
    expected: &Result<Scanned, ValueError>,
) {
    let n = buf.len();
    let ctx = |how: &str| format!("{how}, {n} bytes, types {types:?}");
    assert_eq!(
        &feed_pieces(types, limits, [buf]),
        expected,
        "{}",
        ctx("whole")
    );
    assert_eq!(
        &feed_pieces(types, limits, buf.chunks(1)),
        expected,
        "{}",
        ctx("byte by byte")
    );
    for size in [2, 3, 7, 64, 4099] {
        if size < n {
            let got = feed_pieces(types, limits, buf.chunks(size));
            assert_eq!(&got, expected, "{}", ctx(&format!("pieces of {size}")));
        }
    }
    if n > 1024 {
        return;
    }
    let gaps = buf.chunks(1).flat_map(|b| [&[][..], b]);
    assert_eq!(
        &feed_pieces(types, limits, gaps),
        expected,
        "{}",
        ctx("gaps")
    );
    // After each byte, the scanner's state is `scan`'s verdict on that prefix.
    let mut scanner = Scanner::new(Arc::from(types), *limits);
    for i in 0..=n {
        let got = match scanner.feed(buf.get(i.wrapping_sub(1)..i).unwrap_or_default()) {
            Ok(None) => Ok(Scanned::Incomplete),
            Ok(Some(_)) => Ok(Scanned::Complete(scanner.consumed() as usize)),
            Err(err) => Err(err),
        };
        assert_eq!(got, oracle(types, &buf[..i], limits), "prefix {i}");
        if got != Ok(Scanned::Incomplete) {
            break;
        }
    }
    for i in 0..=n {
        let (a, b) = buf.split_at(i);
        assert_eq!(
            &feed_pieces(types, limits, [a, b]),
            expected,
            "split at {i}"
        );
        if n <= 48 {
            for j in 0..=b.len() {
                let (b, c) = b.split_at(j);
                assert_eq!(
                    &feed_pieces(types, limits, [a, b, c]),
                    expected,
                    "split {i}+{j}"
                );
            }
        }
    }
}

const LIMITS: ValueLimits = ValueLimits {
    max_list: 1 << 20,
    max_bytes: 1 << 20,
    max_depth: 32,
};

fn list(ty: WireType) -> WireType {
    W::List(Box::new(ty))
}
fn option(ty: WireType) -> WireType {
    W::Option(Box::new(ty))
}
fn result(ok: Option<WireType>, err: Option<WireType>) -> WireType {
    W::Result {
        ok: ok.map(Box::new),
        err: err.map(Box::new),
    }
}
fn stream(ty: Option<WireType>) -> WireType {
    W::Stream(ty.map(Box::new))
}
fn future(ty: Option<WireType>) -> WireType {
    W::Future(ty.map(Box::new))
}

/// Encodes `v` with the upstream `wrpc-transport` encoder.
fn encode<T: Encode<Null>>(v: T) -> Vec<u8>
where
    <T::Encoder as tokio_util::codec::Encoder<T>>::Error: std::fmt::Debug,
{
    super::upstream::encode(v)
}

/// How many bytes the upstream decoder consumes from `bytes` (`None`: needs more).
fn upstream_len<T: Decode<Null>>(bytes: &[u8]) -> Result<Option<usize>, String>
where
    <T::Decoder as tokio_util::codec::Decoder>::Error: std::fmt::Debug,
{
    super::upstream::decoded_len::<T>(bytes)
}

/// Whole buffer is `Complete`, strict prefixes `Incomplete`, trailing bytes ignored.
fn check_delimits(types: &[WireType], buf: &[u8]) {
    let n = buf.len();
    assert_eq!(
        scan(types, buf, &LIMITS),
        Ok(Scanned::Complete(n)),
        "{buf:02x?}"
    );
    let prefixes: Vec<usize> = if n <= 4096 {
        (0..n).collect()
    } else {
        (0..256)
            .chain((0..n).step_by(40_961))
            .chain(n - 256..n)
            .collect()
    };
    for i in prefixes {
        assert_eq!(
            scan(types, &buf[..i], &LIMITS),
            Ok(Scanned::Incomplete),
            "prefix {i} of {n}"
        );
    }
    let mut long = buf.to_vec();
    long.extend_from_slice(&[0xff, 0xff, 0x80, 0x02]);
    assert_eq!(scan(types, &long, &LIMITS), Ok(Scanned::Complete(n)));
}

/// Encodes `$v: $t` upstream, checks the scanner delimits it like the upstream decoder.
macro_rules! check {
    ($t:ty, $v:expr, $types:expr) => {{
        let buf = encode::<$t>($v);
        check_delimits(AsRef::<[WireType]>::as_ref(&$types), &buf);
        let mut long = buf.to_vec();
        long.extend_from_slice(&[0xff, 0xff, 0x80, 0x02]);
        assert_eq!(upstream_len::<$t>(&long), Ok(Some(buf.len())));
        buf
    }};
}

#[test]
fn primitives_match_upstream() {
    let tys = [
        W::U8,
        W::S8,
        W::U16,
        W::S64,
        W::F32,
        W::F64,
        W::Char,
        W::Bool,
    ];
    type T = (u8, i8, u16, i64, f32, f64, char, bool);
    check!(T, (0, 0, 0, 0, 0.0, 0.0, 'a', false), tys);
    for v in [
        (
            u8::MAX,
            i8::MIN,
            u16::MAX,
            i64::MIN,
            f32::NAN,
            -0.0,
            '\u{7f}',
            true,
        ),
        (7, -1, 128, i64::MAX, 1.5, f64::INFINITY, 'é', true),
        (1, 1, 16383, -1, -1.0, f64::NAN, '€', false),
        (2, 64, 16384, -64, f32::MIN, f64::MAX, '😀', true),
        (3, -65, 300, -65, 0.1, 0.2, '\u{10ffff}', false),
    ] {
        let buf = check!(T, v, tys);
        // u8/s8 are raw bytes; u16 is LEB128; bool one byte; char UTF-8.
        assert_eq!(buf[0], v.0);
        assert_eq!(buf[1], v.1 as u8);
    }
    type U = (u32, i32, i16, i16, i32, u64, u64, i64);
    let tys = [
        W::U32,
        W::S32,
        W::S16,
        W::S16,
        W::S32,
        W::U64,
        W::U64,
        W::S64,
    ];
    for v in [
        (
            u32::MAX,
            i32::MIN,
            i16::MIN,
            i16::MAX,
            i32::MAX,
            u64::MAX,
            0,
            0,
        ),
        (0, -1, -1, 0, 1, 1 << 63, 127, 63),
        (
            1 << 28,
            -(1 << 27),
            -8192,
            8191,
            1 << 27,
            (1 << 63) - 1,
            128,
            -8193,
        ),
    ] {
        check!(U, v, tys);
    }
}

#[test]
fn compound_values_match_upstream() {
    let tys = [W::String, list(W::String), option(W::U64), list(W::U8)];
    type T = (String, Vec<String>, Option<u64>, Bytes);
    check!(
        T,
        (
            "héllo".into(),
            vec!["a".into(), String::new(), "ƒ𐍈Ő".into()],
            Some(u64::MAX),
            Bytes::from_static(b"\x00\x01\xff"),
        ),
        tys
    );
    check!(T, (String::new(), vec![], None, Bytes::new()), tys);

    let ty = [result(
        Some(option(list(W::Tuple(vec![W::String, list(W::U8)])))),
        Some(W::String),
    )];
    type R = Result<Option<Vec<(String, Bytes)>>, String>;
    check!(
        R,
        Ok(Some(vec![
            ("k1".into(), Bytes::from_static(b"v1")),
            (String::new(), Bytes::new()),
        ])),
        ty
    );
    check!(R, Ok(Some(vec![])), ty);
    check!(R, Ok(None), ty);
    check!(R, Err("boom".into()), ty);

    // Nested options and results; `()` payloads occupy no bytes like `_`.
    let ty = [option(option(result(
        Some(option(W::U8)),
        Some(result(None, Some(W::String))),
    )))];
    type N = Option<Option<Result<Option<u8>, Result<(), String>>>>;
    for v in [
        None,
        Some(None),
        Some(Some(Ok(None))),
        Some(Some(Ok(Some(9)))),
        Some(Some(Err(Ok(())))),
        Some(Some(Err(Err("e".into())))),
    ] {
        check!(N, v, ty);
    }

    // Empty lists of every flavour, lists of fixed-size and zero-size elements.
    type E = (
        Vec<String>,
        Bytes,
        String,
        Vec<Vec<u8>>,
        Vec<f32>,
        Vec<f64>,
        Vec<i8>,
        Vec<()>,
    );
    let ty = [
        list(W::String),
        list(W::U8),
        W::String,
        list(list(W::U8)),
        list(W::F32),
        list(W::F64),
        list(W::S8),
        list(W::Tuple(vec![])),
    ];
    check!(E, Default::default(), ty);
    check!(
        E,
        (
            vec!["x".into()],
            Bytes::from_static(b"abc"),
            "s".into(),
            vec![vec![], vec![1, 2]],
            vec![1.0, f32::NAN],
            vec![2.0],
            vec![-1, 0, 1],
            vec![(), (), ()],
        ),
        ty
    );
    check!(
        Vec<Vec<u16>>,
        vec![vec![1, 300], vec![], vec![u16::MAX]],
        [list(list(W::U16))]
    );

    // Resources are opaque byte strings.
    type H = (ResourceOwn<()>, ResourceBorrow<()>);
    let buf = encode::<H>((
        ResourceOwn::new(Bytes::from_static(&[7; 16])),
        ResourceBorrow::new(Bytes::from_static(b"")),
    ));
    check_delimits(&[W::Resource, W::Resource], &buf);

    // 3 MiB of bytes.
    let big = Bytes::from(vec![0xa5; 3 << 20]);
    let limits = ValueLimits {
        max_list: 4 << 20,
        max_bytes: 4 << 20,
        max_depth: 4,
    };
    let buf = encode::<(String, Bytes)>(("big".into(), big));
    let ty = [W::String, list(W::U8)];
    assert_eq!(scan(&ty, &buf, &limits), Ok(Scanned::Complete(buf.len())));
    for i in (0..buf.len())
        .step_by(65_537)
        .chain(buf.len() - 3..buf.len())
    {
        assert_eq!(scan(&ty, &buf[..i], &limits), Ok(Scanned::Incomplete));
    }
    assert!(matches!(
        scan(&ty, &buf, &LIMITS),
        Err(ValueError::TooManyBytes { len, max: 1_048_576 }) if len == 3 << 20
    ));
}

#[test]
fn variants_enums_flags() {
    // `wit-bindgen-wrpc` writes variant and enum case indices as LEB128 u32 (the same bytes
    // as upstream's `u32` encoder), then the payload; flags as ceil(n / 8) raw bytes.
    let err = W::Variant(vec![None, None, Some(W::String)]);
    check!((u32,), (0,), std::slice::from_ref(&err));
    check!(
        (u32, String),
        (2, "other".into()),
        std::slice::from_ref(&err)
    );
    let big = W::Variant((0..200).map(|i| (i == 150).then_some(W::U8)).collect());
    check!((u32, u8), (150, 9), std::slice::from_ref(&big));
    check!((u32,), (199,), [big]);
    check!((u32,), (2,), [W::Enum(3)]);
    check!((u8,), (0b101,), [W::Flags(3)]);
    check!((u8, u8), (0xff, 0x03), [W::Flags(10)]);
    check!((u8, u8, u8, u8), (1, 2, 3, 0xff), [W::Flags(32)]);
    check_delimits(&[W::Flags(0), W::U8], &[5]);

    let e = |what, value| Err(ValueError::BadDiscriminant { what, value });
    assert_eq!(
        scan(std::slice::from_ref(&err), &[3], &LIMITS),
        e("variant case", 3)
    );
    assert_eq!(scan(&[err], &[12], &LIMITS), e("variant case", 12));
    assert_eq!(
        scan(&[W::Enum(3)], &[0x80, 0x01], &LIMITS),
        e("enum case", 128)
    );
    assert_eq!(
        scan(&[W::Flags(10)], &[0, 0x04], &LIMITS),
        e("flag bit", 10)
    );
    assert_eq!(scan(&[W::Flags(3)], &[0x80], &LIMITS), e("flag bit", 7));
}

#[test]
fn futures_and_streams_sync_part() {
    type Fut = Pin<Box<dyn Future<Output = String> + Send>>;
    // Upstream always sends a pending future or stream: a single 0 byte.
    let buf = encode::<(String, std::io::Cursor<Vec<u8>>)>((
        "name".into(),
        std::io::Cursor::new(vec![1, 2, 3]),
    ));
    assert_eq!(buf.last(), Some(&0));
    check_delimits(&[W::String, stream(Some(W::U8))], &buf);
    let buf = encode::<(Fut, u8)>((Box::pin(async { "later".to_string() }), 7));
    assert_eq!(buf.as_ref(), [0, 7]);
    check_delimits(&[future(Some(W::String)), W::U8], &buf);

    // Decoders also accept ready futures (tag 1 + value) and inline streams (non-empty list).
    check_delimits(&[future(Some(W::String))], &[1, 3, b'a', b'b', b'c']);
    check_delimits(&[future(None), W::U8], &[1, 9]);
    check_delimits(&[stream(Some(W::U8))], &[3, 1, 2, 3]);
    check_delimits(&[stream(Some(W::String))], &[2, 1, b'a', 0]);
    check_delimits(&[stream(None)], &[5]);
    assert_eq!(
        scan(&[future(Some(W::U8))], &[2], &LIMITS),
        Err(ValueError::BadDiscriminant {
            what: "future tag",
            value: 2
        })
    );
    assert!(matches!(
        scan(&[stream(None)], &[0xff, 0xff, 0xff, 0xff, 0x0f], &LIMITS),
        Err(ValueError::ListTooLong { .. })
    ));
}

#[test]
fn async_chunks() {
    let chunk = |elem: Option<Type>, buf: &[u8]| {
        decode_chunk(elem.as_ref(), 0, buf, &LIMITS, &mut Check).map(|(c, n)| (c.is_end(), n))
    };
    // `StreamEncoderBytes` writes each chunk as LEB128 length + bytes and ends with a 0 byte
    // (value.rs 1886-1898); the same bytes as upstream's `Bytes` encoder.
    let bytes = encode::<Bytes>(Bytes::from_static(b"hello"));
    let mut buf = bytes.to_vec();
    buf.push(0);
    assert_eq!(chunk(Some(Type::U8), &buf), Ok((false, 6)));
    assert_eq!(chunk(Some(Type::U8), &buf[6..]), Ok((true, 1)));
    for i in 0..6 {
        assert_eq!(
            chunk(Some(Type::U8), &buf[..i]),
            Err(DecodeError::Incomplete)
        );
    }
    assert_eq!(
        decode_chunk(Some(&Type::U8), 0, &buf, &LIMITS, &mut Check).map(|(c, _)| c),
        Ok(Chunk::Bytes(b"hello".to_vec()))
    );
    // `StreamEncoder` writes LEB128 count + elements (value.rs 1796-1811): a list<T>.
    let strings = encode::<Vec<String>>(vec!["a".into(), "bc".into()]);
    assert_eq!(
        chunk(Some(Type::String), &strings),
        Ok((false, strings.len()))
    );
    assert_eq!(
        chunk(Some(Type::String), &strings[..strings.len() - 1]),
        Err(DecodeError::Incomplete)
    );
    assert!(matches!(
        chunk(Some(Type::String), &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(DecodeError::Invalid(ValueError::ListTooLong { .. }))
    ));
    // `FutureEncoder` writes the bare value (value.rs 1608-1612).
    let value = encode::<String>("done".into());
    assert_eq!(
        decode_value(&Type::String, &value, &LIMITS, &mut Check),
        Ok(((), 5))
    );
    assert_eq!(
        decode_value(&Type::String, &value[..2], &LIMITS, &mut Check),
        Err(DecodeError::Incomplete)
    );
}

#[test]
fn hostile_lengths() {
    let lim = |len: u64| Err(ValueError::ListTooLong { len, max: 1 << 20 });
    let bytes = |len: u64| Err(ValueError::TooManyBytes { len, max: 1 << 20 });
    // 6 bytes declaring u32::MAX strings: upstream would `Vec::with_capacity` 96 GiB.
    let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert_eq!(
        scan(&[list(W::String)], &bomb, &LIMITS),
        lim(u32::MAX.into())
    );
    assert_eq!(scan(&[W::String], &bomb, &LIMITS), bytes(u32::MAX.into()));
    assert_eq!(scan(&[list(W::U8)], &bomb, &LIMITS), bytes(u32::MAX.into()));
    assert_eq!(scan(&[W::Resource], &bomb, &LIMITS), bytes(u32::MAX.into()));
    // 2^32 does not fit the u32 length at all.
    assert_eq!(
        scan(&[W::String], &[0x80, 0x80, 0x80, 0x80, 0x10], &LIMITS),
        Err(ValueError::BadLeb128)
    );
    // Zero-size elements still obey the limit ...
    let unit = list(W::Tuple(vec![]));
    assert_eq!(
        scan(
            std::slice::from_ref(&unit),
            &[0x80, 0x80, 0x80, 0x80, 0x08],
            &LIMITS
        ),
        lim(1 << 31)
    );
    assert_eq!(
        scan(std::slice::from_ref(&unit), &[0x81, 0x80, 0x40], &LIMITS),
        lim((1 << 20) + 1)
    );
    // ... and are not walked one by one: 2^20 lists of 2^20 units each, scanned at once.
    assert_eq!(
        scan(std::slice::from_ref(&unit), &[0x80, 0x80, 0x40], &LIMITS),
        Ok(Scanned::Complete(3))
    );
    let mut nested = vec![0x80, 0x80, 0x40];
    for _ in 0..1 << 20 {
        nested.extend_from_slice(&[0x80, 0x80, 0x40]);
    }
    // A decoder would build 2^40 values: the budget of zero-size elements
    // is the whole value's, in the scanner as in the decoder (found by
    // fuzzing; before, the scanner passed this on to an upstream decoder).
    let over = Err(ValueError::ListTooLong {
        len: 1 << 20,
        max: 1 << 20,
    });
    assert_eq!(super::scan(&[list(unit.clone())], &nested, &LIMITS), over);
    assert_eq!(oracle(&[list(unit)], &nested, &LIMITS), over);
    // Counts are checked before elements; a short list is incomplete, never complete.
    assert_eq!(
        scan(&[list(W::String)], &[3, 1, b'a'], &LIMITS),
        Ok(Scanned::Incomplete)
    );
    let tiny = ValueLimits {
        max_list: 2,
        max_bytes: 2,
        max_depth: 8,
    };
    assert!(matches!(
        scan(&[W::String], b"\x03abc", &tiny),
        Err(ValueError::TooManyBytes { len: 3, max: 2 })
    ));
    assert_eq!(
        scan(&[W::String], b"\x02ab", &tiny),
        Ok(Scanned::Complete(3))
    );
}

#[test]
fn hostile_depth() {
    let mut ty = W::U8;
    for _ in 0..200 {
        ty = option(ty);
    }
    let mut buf = vec![1; 200];
    buf.push(0x2a);
    assert_eq!(
        scan(std::slice::from_ref(&ty), &buf, &LIMITS),
        Err(ValueError::TooDeep { max: 32 })
    );
    let deep = ValueLimits {
        max_list: 16,
        max_bytes: 16,
        max_depth: 200,
    };
    assert_eq!(
        scan(std::slice::from_ref(&ty), &buf, &deep),
        Ok(Scanned::Complete(201))
    );
    // A shallow value of a deep type is fine.
    assert_eq!(scan(&[ty], &[0], &LIMITS), Ok(Scanned::Complete(1)));
    // Depth counts every compound level, including zero-size ones.
    let mut unit = W::Tuple(vec![]);
    for _ in 0..40 {
        unit = W::Tuple(vec![unit]);
    }
    assert_eq!(
        scan(&[list(unit)], &[1], &LIMITS),
        Err(ValueError::TooDeep { max: 32 })
    );
    let flat = ValueLimits {
        max_list: 16,
        max_bytes: 16,
        max_depth: 1,
    };
    assert_eq!(
        scan(&[list(W::U8)], &[1, 1], &flat),
        Ok(Scanned::Complete(2))
    );
    assert_eq!(
        scan(&[list(list(W::U8))], &[1, 0], &flat),
        Err(ValueError::TooDeep { max: 1 })
    );
}

#[test]
fn hostile_scalars() {
    let bad = |ty: WireType, buf: &[u8]| scan(&[ty], buf, &LIMITS);
    let tag = |what, value| Err(ValueError::BadDiscriminant { what, value });
    assert_eq!(bad(W::Bool, &[2]), Err(ValueError::BadBool(2)));
    assert_eq!(bad(option(W::U8), &[7]), tag("option tag", 7));
    assert_eq!(bad(result(None, None), &[2]), tag("result tag", 2));
    // char: UTF-8 structure, then the scalar value.
    assert_eq!(
        bad(W::Char, &[0xed, 0xa0, 0x80]),
        Err(ValueError::BadChar(0xd800))
    );
    assert_eq!(
        bad(W::Char, &[0xf4, 0x90, 0x80, 0x80]),
        Err(ValueError::BadChar(0x110000))
    );
    assert_eq!(bad(W::Char, &[0xc3, 0x28]), Err(ValueError::BadUtf8));
    assert_eq!(bad(W::Char, &[0xff]), Err(ValueError::BadUtf8));
    assert_eq!(bad(W::Char, &[0x80]), Err(ValueError::BadUtf8));
    assert_eq!(bad(W::Char, &[0xf0, 0x9f]), Ok(Scanned::Incomplete));
    // strings: invalid UTF-8 is refused even before the string is complete.
    assert_eq!(bad(W::String, &[2, 0xc3, 0x28]), Err(ValueError::BadUtf8));
    assert_eq!(bad(W::String, &[5, b'a', 0xff]), Err(ValueError::BadUtf8));
    assert_eq!(
        bad(W::String, &[5, b'a', 0xf0, 0x9f]),
        Ok(Scanned::Incomplete)
    );
    // LEB128: too long or overflowing for its width.
    assert_eq!(bad(W::U16, &[0xff, 0xff, 0x03]), Ok(Scanned::Complete(3)));
    assert_eq!(bad(W::U16, &[0x80, 0x80, 0x04]), Err(ValueError::BadLeb128));
    assert_eq!(
        bad(W::U32, &[0x80, 0x80, 0x80, 0x80, 0x80]),
        Err(ValueError::BadLeb128)
    );
    assert_eq!(
        bad(W::U32, &[0x80, 0x80, 0x80, 0x80]),
        Ok(Scanned::Incomplete)
    );
    let mut u64max = vec![0xff; 9];
    u64max.push(0x01);
    assert_eq!(bad(W::U64, &u64max), Ok(Scanned::Complete(10)));
    u64max[9] = 0x02;
    assert_eq!(bad(W::U64, &u64max), Err(ValueError::BadLeb128));
    let mut s64min = vec![0x80; 9];
    s64min.push(0x7f);
    assert_eq!(bad(W::S64, &s64min), Ok(Scanned::Complete(10)));
    s64min[9] = 0x01;
    assert_eq!(bad(W::S64, &s64min), Err(ValueError::BadLeb128));
    assert_eq!(
        bad(W::S32, &[0x80, 0x80, 0x80, 0x80, 0x78]),
        Ok(Scanned::Complete(5))
    );
    assert_eq!(
        bad(W::S32, &[0x80, 0x80, 0x80, 0x80, 0x08]),
        Err(ValueError::BadLeb128)
    );
    assert_eq!(bad(W::S16, &[0x80, 0x80, 0x7e]), Ok(Scanned::Complete(3)));
    assert_eq!(bad(W::S16, &[0x80, 0x80, 0x02]), Err(ValueError::BadLeb128));
    assert_eq!(bad(W::S16, &[0x80, 0x80, 0xfe]), Err(ValueError::BadLeb128));
    assert!(ValueError::ListTooLong { len: 9, max: 8 }
        .to_string()
        .contains("list of 9 elements exceeds the max-list limit of 8"));
}

#[test]
fn upstream_rejects_what_scanner_rejects() {
    // Spot-check that the faults named above are faults for the upstream decoders too.
    assert!(upstream_len::<bool>(&[2]).is_err());
    assert!(upstream_len::<Option<u8>>(&[7]).is_err());
    assert!(upstream_len::<Result<(), ()>>(&[2]).is_err());
    assert!(upstream_len::<char>(&[0xed, 0xa0, 0x80]).is_err());
    assert!(upstream_len::<char>(&[0xc3, 0x28]).is_err());
    assert!(upstream_len::<String>(&[2, 0xc3, 0x28]).is_err());
    assert!(upstream_len::<u16>(&[0x80, 0x80, 0x04]).is_err());
    assert!(upstream_len::<u32>(&[0x80, 0x80, 0x80, 0x80, 0x80]).is_err());
    assert!(
        upstream_len::<u64>(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).is_err()
    );
    assert!(
        upstream_len::<i64>(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).is_err()
    );
    assert!(upstream_len::<i32>(&[0x80, 0x80, 0x80, 0x80, 0x08]).is_err());
    assert!(upstream_len::<i16>(&[0x80, 0x80, 0x02]).is_err());
    // ... and that what it accepts, they accept.
    assert_eq!(upstream_len::<char>(&[0xc0, 0x80]), Ok(Some(2)));
    assert_eq!(
        scan(&[W::Char], &[0xc0, 0x80], &LIMITS),
        Ok(Scanned::Complete(2))
    );
    assert_eq!(upstream_len::<i16>(&[0x80, 0x80, 0x7e]), Ok(Some(3)));
    assert_eq!(
        upstream_len::<u32>(&[0x80, 0x80, 0x80, 0x80, 0x00]),
        Ok(Some(5))
    );
    assert_eq!(
        scan(&[W::U32], &[0x80, 0x80, 0x80, 0x80, 0x00], &LIMITS),
        Ok(Scanned::Complete(5))
    );
}

/// Feeds `buf` one byte per call; the offset within the completing call.
fn feed_bytewise(scanner: &mut Scanner, buf: &[u8]) -> Result<Option<usize>, ValueError> {
    for (offset, byte) in buf.chunks(1).enumerate() {
        if let Some(k) = scanner.feed(byte)? {
            return Ok(Some(offset + k));
        }
    }
    Ok(None)
}

#[test]
fn scanner_large_inputs_bytewise() {
    // 16 MiB of `list<u8>`, one byte per call.
    let limits = ValueLimits {
        max_list: 16 << 20,
        max_bytes: 16 << 20,
        max_depth: 4,
    };
    let buf = encode::<Bytes>(Bytes::from(vec![0x5a; 16 << 20]));
    let start = std::time::Instant::now();
    let mut scanner = Scanner::new(Arc::from([list(W::U8)]), limits);
    assert_eq!(feed_bytewise(&mut scanner, &buf), Ok(Some(buf.len())));
    assert_eq!(scanner.consumed(), buf.len() as u64);
    println!("list<u8> of 16 MiB fed byte by byte: {:?}", start.elapsed());

    // 100,000 one-byte strings, one byte per call.
    let strings = vec!["a".to_string(); 100_000];
    let buf = encode::<Vec<String>>(strings);
    assert_eq!(buf.len(), 3 + 200_000);
    let start = std::time::Instant::now();
    let mut scanner = Scanner::new(Arc::from([list(W::String)]), limits);
    assert_eq!(feed_bytewise(&mut scanner, &buf), Ok(Some(buf.len())));
    println!(
        "list<string> of 100,000 strings fed byte by byte: {:?}",
        start.elapsed()
    );
}

#[test]
fn scanner_trailing_bytes_and_edges() {
    let types: Arc<[WireType]> = Arc::from([W::U8, W::String]);
    let buf = [7, 2, b'h', b'i', 0xff, 0xff, 0x80];
    let mut scanner = Scanner::new(types.clone(), LIMITS);
    assert_eq!(scanner.feed(&buf), Ok(Some(4)));
    assert_eq!(scanner.consumed(), 4);
    assert_eq!(scanner.feed(&buf), Ok(Some(0)));
    let mut scanner = Scanner::new(types.clone(), LIMITS);
    assert_eq!(scanner.feed(&buf[..3]), Ok(None));
    assert_eq!(scanner.feed(&[]), Ok(None));
    assert_eq!(scanner.feed(&buf[3..]), Ok(Some(1)));
    assert_eq!(scanner.consumed(), 4);
    // Nothing to read: complete at once, whatever is fed.
    let mut empty = Scanner::new(Arc::from([]), LIMITS);
    assert_eq!(empty.feed(&buf), Ok(Some(0)));
    assert_eq!(empty.consumed(), 0);
    let zero: Arc<[WireType]> = Arc::from([W::Tuple(vec![]), W::Flags(0)]);
    assert_eq!(Scanner::new(zero, LIMITS).feed(&[]), Ok(Some(0)));
    // A code point split across pieces, then a bad byte in a later piece.
    let mut scanner = Scanner::new(Arc::from([W::String]), LIMITS);
    for piece in [&[6, 0xf0][..], &[0x9f], &[0x98, 0x80, b'a']] {
        assert_eq!(scanner.feed(piece), Ok(None));
    }
    assert_eq!(scanner.feed(&[0xc3]), Err(ValueError::BadUtf8));
    assert_eq!(scanner.feed(&[0xa9]), Err(ValueError::BadUtf8));
    // Errors on bytes past the end of the tuple are not the tuple's.
    let mut scanner = Scanner::new(Arc::from([W::Bool]), LIMITS);
    assert_eq!(scanner.feed(&[1, 2]), Ok(Some(1)));
}

#[test]
fn scanner_string_utf8_edges() {
    // Every boundary of Unicode table 3-7 (as `std::str::from_utf8` applies it), complete
    // and cut short, at every split point: `scan` and the scanner agree on each.
    let bodies: [&[u8]; 16] = [
        b"\xc2\x80",
        b"\xc1\xbf",
        b"\xe0\xa0\x80",
        b"\xe0\x9f\xbf",
        b"\xed\x9f\xbf",
        b"\xed\xa0\x80",
        b"\xee\x80\x80",
        b"\xf0\x90\x80\x80",
        b"\xf0\x8f\xbf\xbf",
        b"\xf4\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xe1\x80\x41",
        b"\x80",
        b"a\xf3\xbf\xbf\xbfb",
        b"\xef\xbf\xbf\xdf\xbf\x7f",
    ];
    let mut outcomes = Vec::new();
    for body in bodies {
        for cut in 0..=body.len() {
            let mut buf = vec![body.len() as u8];
            buf.extend_from_slice(&body[..cut]);
            outcomes.push(scan(&[W::String], &buf, &LIMITS));
        }
        // A string ending inside a code point is invalid even if more bytes follow.
        let mut buf = vec![body.len().saturating_sub(1) as u8];
        buf.extend_from_slice(body);
        outcomes.push(scan(&[W::String, W::U8], &buf, &LIMITS));
    }
    assert!(outcomes.contains(&Err(ValueError::BadUtf8)));
    assert!(outcomes.contains(&Ok(Scanned::Incomplete)));
}

/// A small deterministic generator for the differential test below.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn scanner_matches_decoder_on_random_bytes() {
    let types = [
        W::String,
        W::Char,
        W::S16,
        W::U64,
        W::Flags(11),
        list(option(W::String)),
        list(result(Some(W::Char), Some(list(W::F32)))),
        W::Variant(vec![None, Some(W::S32), Some(list(W::Tuple(vec![])))]),
        W::Record(vec![W::Enum(3), W::Bool, future(Some(W::U16)), W::Resource]),
        stream(Some(list(list(W::U8)))),
        list(list(list(list(W::Bool)))),
    ];
    let limits = ValueLimits {
        max_list: 6,
        max_bytes: 6,
        max_depth: 4,
    };
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = BTreeMap::new();
    for round in 0..20_000 {
        let n = (rng.next() % 24) as usize;
        let buf: Vec<u8> = (0..n)
            .map(|_| match rng.next() % 8 {
                // Mostly small numbers, so that lengths and tags are often valid.
                0..=4 => (rng.next() % 4) as u8,
                5 => 0x80 | (rng.next() % 4) as u8,
                _ => rng.next() as u8,
            })
            .collect();
        let k = rng.next() as usize % types.len();
        let tys = &types[k..=(k + round % 2).min(types.len() - 1)];
        let expected = oracle(tys, &buf, &limits);
        *outcomes
            .entry(format!("{expected:?}").chars().take(12).collect::<String>())
            .or_insert(0) += 1;
        check_stream(tys, &buf, &limits, &expected);
    }
    println!("outcomes: {outcomes:?}");
}

fn paths(p: &[&[Option<usize>]]) -> Vec<Box<[Option<usize>]>> {
    p.iter().map(|p| Box::from(*p)).collect()
}

#[test]
fn async_paths_follow_wrpc() {
    let bytes = || stream(Some(W::U8));
    let sig = Signature {
        params: vec![W::String, bytes()],
        results: vec![],
    };
    assert!(sig.has_async_params() && !sig.has_async_results());
    assert_eq!(sig.param_paths(), paths(&[&[Some(1)]]));
    assert_eq!(sig.result_paths(), paths(&[]));

    let sig = Signature {
        params: vec![list(bytes())],
        results: vec![result(
            Some(W::Tuple(vec![
                bytes(),
                future(Some(result(None, Some(W::String)))),
            ])),
            Some(W::String),
        )],
    };
    assert_eq!(sig.param_paths(), paths(&[&[Some(0), None]]));
    assert_eq!(
        sig.result_paths(),
        paths(&[&[Some(0), Some(0)], &[Some(0), Some(1)]])
    );
    assert!(sig.has_async_results());

    let rec = W::Record(vec![W::String, future(Some(W::U32))]);
    let sig = Signature {
        params: vec![W::U8, rec],
        results: vec![option(stream(None))],
    };
    assert_eq!(sig.param_paths(), paths(&[&[Some(1), Some(1)]]));
    assert_eq!(sig.result_paths(), paths(&[&[Some(0)]]));

    let sync = Signature {
        params: vec![W::String, list(W::Tuple(vec![W::U8, W::Resource]))],
        results: vec![result(Some(W::Variant(vec![None, Some(W::U8)])), None)],
    };
    assert!(!sync.has_async_params() && !sync.has_async_results());
    assert!(sync.param_paths().is_empty() && sync.result_paths().is_empty());

    // Futures keep their value's paths unprefixed, streams prefix theirs with `None`, and
    // the order is that of the generated source text, not numeric.
    let mut params = vec![W::U8; 11];
    params[1] = future(Some(W::Tuple(vec![bytes()])));
    params[2] = stream(Some(future(None)));
    params[10] = bytes();
    let sig = Signature {
        params,
        results: vec![],
    };
    assert_eq!(
        sig.param_paths(),
        // `)` < `,` < `0` < `]` in ASCII.
        paths(&[
            &[Some(1), Some(0)],
            &[Some(1)],
            &[Some(10)],
            &[Some(2), None],
            &[Some(2)],
        ])
    );
}

#[test]
fn types_at_paths() {
    let bytes = stream(Some(W::U8));
    let fut = future(Some(result(None, Some(W::String))));
    let params = [
        W::String,
        bytes.clone(),
        list(bytes.clone()),
        result(
            Some(W::Tuple(vec![bytes.clone(), fut.clone()])),
            Some(W::String),
        ),
        W::Record(vec![W::U8, option(fut.clone())]),
        stream(Some(future(Some(W::U8)))),
    ];
    assert_eq!(type_at_path(&params, &[1]), Some(&bytes));
    assert_eq!(type_at_path(&params, &[0]), None);
    assert_eq!(type_at_path(&params, &[]), None);
    assert_eq!(type_at_path(&params, &[2, 17]), Some(&bytes));
    assert_eq!(type_at_path(&params, &[2]), None);
    assert_eq!(type_at_path(&params, &[3, 0]), Some(&bytes));
    assert_eq!(type_at_path(&params, &[3, 1]), Some(&fut));
    assert_eq!(type_at_path(&params, &[3, 2]), None);
    assert_eq!(type_at_path(&params, &[4, 1]), Some(&fut));
    assert_eq!(type_at_path(&params, &[5]), Some(&params[5]));
    assert_eq!(type_at_path(&params, &[5, 3]), Some(&future(Some(W::U8))));
    assert_eq!(type_at_path(&params, &[6]), None);
    // Every registered path resolves to a future or a stream.
    let sig = Signature {
        params: params.to_vec(),
        results: vec![],
    };
    for path in sig.param_paths() {
        let path: Vec<usize> = path.iter().map(|i| i.unwrap_or(3)).collect();
        let ty = type_at_path(&params, &path);
        assert!(matches!(ty, Some(W::Future(_) | W::Stream(_))), "{path:?}");
    }
}
