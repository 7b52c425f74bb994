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
