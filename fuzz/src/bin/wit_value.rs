//! `wrpc-ext call`'s argument parser: arbitrary text (JSON, WIT-style
//! values, bare words) encoded as a value of an arbitrary type.
//!
//! Asserts: what it encodes is one whole value of the type; printed as
//! `wrpc-ext` prints results (JSON), that value parses back to the same
//! bytes.
#![no_main]

use arbitrary::Unstructured;
use fuzz_targets::{split_input, ty};
use libfuzzer_sys::fuzz_target;
use transport::schema::json::{decode_all, encode_arg};
use transport::Limits;

fuzz_target!(|data: &[u8]| {
    let (spec, payload) = split_input(data);
    let Ok(ty) = ty(&mut Unstructured::new(spec), 4) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(payload) else {
        return;
    };
    let mut bytes = Vec::new();
    if encode_arg(&ty, text, &mut bytes).is_err() {
        return;
    }
    let types = [ty];
    let limits = Limits::DEFAULT.value();
    let json = decode_all(&types, &bytes, &limits).unwrap_or_else(|e| {
        panic!(
            "`{text}` encoded as {} to bytes that do not decode: {e}",
            types[0]
        )
    });
    let printed = serde_json::to_string(&json[0]).expect("JSON prints");
    let mut again = Vec::new();
    encode_arg(&types[0], &printed, &mut again)
        .unwrap_or_else(|e| panic!("printed `{printed}` does not parse as {}: {e}", types[0]));
    assert_eq!(
        bytes, again,
        "`{text}` printed as `{printed}` encodes differently"
    );
});
