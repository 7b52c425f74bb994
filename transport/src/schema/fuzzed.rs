//! What the `scanner` fuzz target found (see docs/RELIABILITY.md,
//! "Fuzzing"): inputs on which the scanner and the decoder disagreed.

use super::codec::{decode_tuple, Check, DecodeError};
use super::*;

/// The scanner's and the decoder's verdicts on `bytes` as `types`, which
/// must be the same.
fn agree(types: &[Type], bytes: &[u8], limits: ValueLimits) -> Result<usize, ValueError> {
    let wire: Vec<WireType> = types.iter().map(Type::wire).collect();
    let scanned = scan(&wire, bytes, &limits);
    let decoded = decode_tuple(types, bytes, &limits, &mut Check).map(|(_, n)| n);
    match (scanned, decoded) {
        (Ok(Scanned::Complete(n)), Ok(m)) if n == m => Ok(n),
        (Err(a), Err(DecodeError::Invalid(b))) if a == b => Err(a),
        (scanned, decoded) => panic!("scanner {scanned:?}, decoder {decoded:?}"),
    }
}

fn limits(max_list: u32) -> ValueLimits {
    ValueLimits {
        max_list,
        max_bytes: 1 << 20,
        max_depth: 16,
    }
}

fn unit() -> Type {
    Type::Tuple(Vec::new())
}

#[test]
fn zero_size_elements_of_a_fixed_list_count_against_max_list_in_the_scanner_too() {
    let ty = Type::FixedList(Box::new(unit()), 14);
    let refused = agree(core::slice::from_ref(&ty), &[], limits(13));
    assert_eq!(refused, Err(ValueError::ListTooLong { len: 14, max: 13 }));
    assert_eq!(agree(&[ty], &[], limits(14)), Ok(0));
}

#[test]
fn zero_size_elements_count_once_over_nested_lists_in_both() {
    // 5 inner lists of 3 units each: 5 + 15 elements built without a byte.
    let inner = Type::FixedList(Box::new(unit()), 3);
    let ty = Type::FixedList(Box::new(inner), 5);
    let refused = agree(core::slice::from_ref(&ty), &[], limits(19));
    assert_eq!(refused, Err(ValueError::ListTooLong { len: 20, max: 19 }));
    assert_eq!(agree(core::slice::from_ref(&ty), &[], limits(20)), Ok(0));
    // Read from the wire, the count is checked first, then the budget.
    let listed = Type::List(Box::new(Type::FixedList(Box::new(unit()), 3)));
    let refused = agree(core::slice::from_ref(&listed), &[5], limits(19));
    assert_eq!(refused, Err(ValueError::ListTooLong { len: 20, max: 19 }));
}

#[test]
fn zero_size_budget_is_shared_by_every_list_and_stream_of_a_value_in_both() {
    // A `stream` without an element type counts its units too (a second finding).
    for ty in [Type::List(Box::new(unit())), Type::Stream(None)] {
        let two = [ty.clone(), ty];
        // 600 + 600 units: each is within max-list, together they are not.
        let bytes = [0xd8, 0x04, 0xd8, 0x04];
        let refused = agree(&two, &bytes, limits(1000));
        assert_eq!(
            refused,
            Err(ValueError::ListTooLong {
                len: 600,
                max: 1000
            })
        );
        assert_eq!(agree(&two, &bytes, limits(1200)), Ok(4));
    }
}

#[test]
fn zero_size_elements_too_deep_are_refused_alike_without_walking_them() {
    let deep = Type::Tuple(vec![Type::Tuple(vec![Type::Tuple(Vec::new())])]);
    let ty = Type::FixedList(Box::new(deep), 1 << 20);
    let shallow = ValueLimits {
        max_depth: 3,
        ..limits(1 << 20)
    };
    let refused = agree(core::slice::from_ref(&ty), &[], shallow);
    assert_eq!(refused, Err(ValueError::TooDeep { max: 3 }));
}
