//! The scanner that checks a call's synchronous value as it arrives,
//! against arbitrary types and limits, fed in pieces cut anywhere; and a
//! lean NATS call's value (`RootValue`), which wraps it.
//!
//! Asserts: the scanner gives the same outcome (length or error) however
//! the bytes are cut, the same as `scan` on the whole buffer and as the
//! decoder (which must agree with it error for error); `consumed` is the
//! value's length; `RootValue` passes on exactly the value's bytes.
#![no_main]

use std::sync::Arc;

use arbitrary::Unstructured;
use bytes::Bytes;
use fuzz_targets::{cuts, split_input, types, value_limits};
use libfuzzer_sys::fuzz_target;
use transport::fuzzing::RootValue;
use transport::schema::codec::{decode_tuple, Check, DecodeError};
use transport::schema::{scan, ScanPlan, Scanned, Scanner, ValueError, WireType};
use transport::Limits;

fuzz_target!(|data: &[u8]| {
    let (spec, payload) = split_input(data);
    let mut u = Unstructured::new(spec);
    let Ok(types) = types(&mut u, 4) else { return };
    let Ok(limits) = value_limits(&mut u) else {
        return;
    };
    let wire: Vec<WireType> = types.iter().map(|t| t.wire()).collect();

    let whole = scan(&wire, payload, &limits);
    let decoded = decode_tuple(&types, payload, &limits, &mut Check).map(|(_, n)| n);
    match (&whole, &decoded) {
        (Ok(Scanned::Complete(n)), Ok(m)) => assert_eq!(n, m, "scanner and decoder lengths"),
        (Ok(Scanned::Incomplete), Err(DecodeError::Incomplete)) => {}
        (Err(a), Err(DecodeError::Invalid(b))) => assert_eq!(a, b, "scanner and decoder errors"),
        _ => panic!("scanner {whole:?} but decoder {decoded:?} ({types:?}, {limits:?})"),
    }

    let plan = ScanPlan::new(&wire);
    let mut scanner = Scanner::with_plan(Arc::clone(&plan), limits);
    let pieces = cuts(&mut u, payload.len());
    let mut fed: Result<Scanned, ValueError> = Ok(Scanned::Incomplete);
    for piece in pieces.iter().cloned() {
        let start = piece.start;
        match scanner.feed(&payload[piece]) {
            Ok(Some(n)) => {
                fed = Ok(Scanned::Complete(start + n));
                break;
            }
            Ok(None) => {}
            Err(err) => {
                fed = Err(err);
                break;
            }
        }
    }
    if payload.is_empty() || plan.is_empty() {
        fed = scanner
            .feed(&[])
            .map(|n| n.map_or(Scanned::Incomplete, Scanned::Complete));
    }
    assert_eq!(whole, fed, "the outcome depends on where the bytes are cut");
    if let Ok(Scanned::Complete(n)) = whole {
        assert_eq!(
            scanner.consumed(),
            n as u64,
            "consumed is not the value's length"
        );
    }

    // The synchronous value as a transport takes it in (a lean NATS call's
    // first message, or pieces of frames), under limits that hold it.
    if plan.is_empty() || payload.is_empty() {
        return;
    }
    let transport = Limits {
        max_list: limits.max_list,
        max_value_depth: limits.max_depth,
        max_frame: limits.max_bytes,
        ..Limits::DEFAULT
    };
    let over = payload.len() > limits.max_bytes as usize;
    let mut root = RootValue::new(plan, &transport);
    let mut passed = Vec::new();
    let mut outcome = Ok(());
    for piece in pieces {
        match root.push(Bytes::copy_from_slice(&payload[piece])) {
            Ok(Some(bytes)) => passed.extend_from_slice(&bytes),
            Ok(None) => {}
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    match (whole, outcome) {
        (Ok(Scanned::Complete(n)), Ok(())) => {
            assert!(root.complete());
            assert_eq!(passed, payload[..n], "RootValue passed on other bytes");
            // Only a flags value's padding may follow, as zeros.
            assert!(
                payload[n..].iter().all(|b| *b == 0),
                "data after the value accepted"
            );
        }
        (Ok(Scanned::Complete(n)), Err(_)) => {
            assert!(over || n < payload.len(), "RootValue refused a value alone");
        }
        (Ok(Scanned::Incomplete), Ok(())) => {
            assert!(
                !root.complete() && passed.is_empty(),
                "an incomplete value passed"
            );
        }
        (Ok(Scanned::Incomplete), Err(err)) => assert!(over, "{err}"),
        (Err(_), outcome) => assert!(
            outcome.is_err(),
            "RootValue accepted what the scanner refused"
        ),
    }
});
