//! What the `wit_value` and `json_value` fuzz targets found (see
//! docs/RELIABILITY.md, "Fuzzing"): each input that failed, kept.

use super::*;
use crate::Limits;

/// `text` as an argument of type `ty`, then the JSON `wrpc-ext` prints for
/// the value, and that JSON as an argument again: both encodings.
fn printed_and_parsed(ty: &Type, text: &str) -> (Vec<u8>, String, Vec<u8>) {
    let mut first = Vec::new();
    encode_arg(ty, text, &mut first).unwrap_or_else(|e| panic!("{text}: {e}"));
    let json = decode_all(core::slice::from_ref(ty), &first, &Limits::DEFAULT.value())
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let printed = serde_json::to_string(&json[0]).expect("prints");
    let mut again = Vec::new();
    encode_arg(ty, &printed, &mut again).unwrap_or_else(|e| panic!("{printed}: {e}"));
    (first, printed, again)
}

#[test]
fn a_long_float_argument_is_read_exactly_so_its_printed_form_reads_the_same() {
    // serde_json's default float parsing may be one unit in the last place
    // off; the shortest form printed then read back as another float.
    let text = "666666666666666666666666666666666666666666666";
    let (first, printed, again) = printed_and_parsed(&Type::F64, text);
    assert_eq!(first, text.parse::<f64>().expect("a float").to_le_bytes());
    assert_eq!(first, again, "{text} printed as {printed}");
}

#[test]
fn the_largest_f32_as_printed_reads_back_as_json_and_as_wit() {
    // `f32::MAX` prints as `3.4028235e+38`, a little over it as an f64:
    // it was refused as out of range (found by the `json_value` target).
    let max = f32::MAX.to_le_bytes().to_vec();
    let (first, printed, again) = printed_and_parsed(&Type::F32, "3.4028235e+38");
    assert_eq!((&first, &again), (&max, &max), "{printed}");
    // The WIT syntax (a trailing comma is not JSON) reads it the same.
    let list = Type::List(Box::new(Type::F32));
    let mut wit = Vec::new();
    encode_arg(&list, "[-3.4028235e38, 3.4028235e38,]", &mut wit).expect("in range");
    assert_eq!(wit[1..5], f32::MIN.to_le_bytes());
    assert_eq!(wit[5..], max[..]);
    // What rounds to infinity is still out of range.
    for text in ["3.5e38", "[3.5e38,]"] {
        let ty = if text.starts_with('[') {
            &list
        } else {
            &Type::F32
        };
        let err = encode_arg(ty, text, &mut Vec::new()).expect_err("out of range");
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
