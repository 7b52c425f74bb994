//! The value codec: arbitrary bytes decoded against arbitrary types and
//! limits into `Value`s, then encoded again.
//!
//! Asserts: what decodes encodes (unless it holds a future or stream that
//! came ready, which is only ever received), never longer than it came
//! (the encoder writes shortest LEB128), and decoding that encoding gives
//! back the same bytes when encoded once more (a fixpoint). Run with
//! `-malloc_limit_mb`, so a declared length the bytes do not back cannot
//! allocate.
#![no_main]

use arbitrary::Unstructured;
use fuzz_targets::{split_input, types, value_limits};
use libfuzzer_sys::fuzz_target;
use transport::schema::codec::{decode_tuple, encode_tuple, DecodeError, ToValue, Value};
use transport::schema::Type;

fuzz_target!(|data: &[u8]| {
    let (spec, payload) = split_input(data);
    let mut u = Unstructured::new(spec);
    let Ok(types) = types(&mut u, 5) else { return };
    let Ok(limits) = value_limits(&mut u) else {
        return;
    };
    let (values, used) = match decode_tuple(&types, payload, &limits, &mut ToValue) {
        Ok(decoded) => decoded,
        Err(DecodeError::Refused(why)) => panic!("ToValue refuses nothing, yet: {why}"),
        Err(_) => return,
    };
    assert!(used <= payload.len());
    let Some(first) = encode(&types, &values) else {
        assert!(
            types.iter().any(|t| t.wire().is_async()),
            "a decoded value does not encode"
        );
        return;
    };
    assert!(
        first.len() <= used,
        "the encoding grew: {used} -> {}",
        first.len()
    );
    let (again, n) = decode_tuple(&types, &first, &limits, &mut ToValue)
        .unwrap_or_else(|e| panic!("an encoded value does not decode: {e}"));
    assert_eq!(n, first.len(), "the encoding is not all read back");
    let second = encode(&types, &again).expect("a re-decoded value does not encode");
    assert_eq!(first, second, "encode(decode(x)) is not a fixpoint");
});

fn encode(types: &[Type], values: &[Value]) -> Option<Vec<u8>> {
    let refs: Vec<&Value> = values.iter().collect();
    let mut out = Vec::new();
    encode_tuple(types, &refs, &mut out).ok()?;
    Some(out)
}
