//! The discovery document an extension answers `describe` with, as
//! `wrpc-ext` reads it: the JSON, then the WIT it carries.
//!
//! Asserts: a document that parses prints as JSON that parses to the same
//! document; its WIT is read by the same parser `wrpc-ext` uses, which may
//! refuse it but not fail otherwise.
//!
//! `Signatures::from_wit` catches a panic of wit-parser (it panics on some
//! malformed WIT) and returns an error. libfuzzer-sys's panic hook aborts
//! before anything can catch, so this target puts back the default hook:
//! a panic that our code does not catch still ends in libfuzzer-sys's
//! abort, and is still a crash.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use transport::discovery::Document;
use transport::schema::Signatures;

static DEFAULT_HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = Document::parse(text) else {
        return;
    };
    let printed = doc.to_json();
    assert_eq!(Document::parse(&printed).as_ref(), Ok(&doc), "`{printed}`");
    let _ = doc.instances().count();
    let files: Vec<Vec<(&str, &str)>> = doc
        .wit
        .iter()
        .map(|files| {
            files
                .iter()
                .map(|(n, c)| (n.as_str(), c.as_str()))
                .collect()
        })
        .collect();
    let packages: Vec<&[(&str, &str)]> = files.iter().map(Vec::as_slice).collect();
    if let Ok(signatures) = Signatures::from_wit(&packages) {
        for (instance, func, signature) in signatures.iter() {
            assert!(signatures.get(instance, func).is_some());
            let _ = signature.param_paths();
        }
    }
});
