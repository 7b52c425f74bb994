//! The endpoint URL grammar (`nats://`, `tcp://`, `unix://`, `ws://`,
//! `wss://`), on arbitrary text.
//!
//! Asserts: an endpoint prints as text that parses to the same endpoint
//! (where it shows no secret: a password or token prints as `***`), and
//! `Debug` shows the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use transport::Endpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let endpoint = match text.parse::<Endpoint>() {
        Ok(endpoint) => endpoint,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let printed = endpoint.to_string();
    assert_eq!(format!("{endpoint:?}"), format!("Endpoint({printed})"));
    if printed.contains("***") {
        return;
    }
    let again: Endpoint = printed
        .parse()
        .unwrap_or_else(|e| panic!("`{text}` prints as `{printed}`, which does not parse: {e}"));
    assert_eq!(
        again, endpoint,
        "`{text}` prints as `{printed}`, another endpoint"
    );
});
