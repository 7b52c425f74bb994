//! `wrpc-ext`'s JSON face from the wire side: arbitrary bytes decoded
//! against an arbitrary type to JSON (as `call` prints results), the JSON
//! printed and read back as an argument.
//!
//! Asserts: the JSON decoder accepts what the codec's checking decoder
//! accepts (refusing only futures, streams and handles, and bytes after
//! the value); its JSON, printed and parsed back, encodes to the codec's
//! own encoding of the same value.
#![no_main]

use arbitrary::Unstructured;
use fuzz_targets::{split_input, ty, value_limits};
use libfuzzer_sys::fuzz_target;
use transport::schema::codec::{decode_tuple, encode_tuple, Check, DecodeError, ToValue, Value};
use transport::schema::json::{decode_all, encode_arg, first_unsupported};
use transport::schema::Type;

fuzz_target!(|data: &[u8]| {
    let (spec, payload) = split_input(data);
    let mut u = Unstructured::new(spec);
    let Ok(ty) = ty(&mut u, 4) else { return };
    let Ok(limits) = value_limits(&mut u) else {
        return;
    };
    let types = [ty];
    let checked = decode_tuple(&types, payload, &limits, &mut Check).map(|(_, n)| n);
    let json = decode_all(&types, payload, &limits);
    let json = match (checked, json) {
        (Ok(n), Ok(json)) => {
            assert_eq!(
                n,
                payload.len(),
                "decode_all took a value followed by bytes"
            );
            json
        }
        (Ok(n), Err(DecodeError::Refused(_))) => {
            assert!(n < payload.len() || first_unsupported(&types[0]).is_some());
            return;
        }
        (Ok(_), Err(err)) => panic!("Check accepts, JSON fails: {err} ({})", types[0]),
        // The JSON face may refuse a value (a handle) before the bytes fail.
        (Err(_), Err(DecodeError::Refused(_))) => return,
        (Err(a), Err(b)) => return assert_eq!(a, b, "different errors"),
        (Err(err), Ok(_)) => panic!("JSON accepts, Check fails: {err} ({})", types[0]),
    };
    let expected = canonical(&types, payload);

    let printed = serde_json::to_string(&json[0]).expect("JSON prints");
    let mut parsed = Vec::new();
    encode_arg(&types[0], &printed, &mut parsed)
        .unwrap_or_else(|e| panic!("printed `{printed}` does not parse as {}: {e}", types[0]));
    assert_eq!(
        canonical(&types, &parsed),
        expected,
        "`{printed}` encodes differently"
    );
});

/// The codec's own encoding of the value in `bytes`, every NaN made the
/// same (JSON has one `"NaN"`, not its payloads).
fn canonical(types: &[Type], bytes: &[u8]) -> Vec<u8> {
    let limits = transport::Limits::DEFAULT.value();
    let (mut values, _) = decode_tuple(types, bytes, &limits, &mut ToValue).expect("decodes");
    values.iter_mut().for_each(one_nan);
    let refs: Vec<&Value> = values.iter().collect();
    let mut out = Vec::new();
    encode_tuple(types, &refs, &mut out).expect("a decoded value encodes");
    out
}

fn one_nan(value: &mut Value) {
    match value {
        Value::F32(x) if x.is_nan() => *x = f32::NAN,
        Value::F64(x) if x.is_nan() => *x = f64::NAN,
        Value::Items(items) => items.iter_mut().for_each(one_nan),
        Value::Case(_, Some(payload)) | Value::Ready(Some(payload)) => one_nan(payload),
        _ => {}
    }
}
