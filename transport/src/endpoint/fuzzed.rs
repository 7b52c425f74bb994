//! What the `endpoint` fuzz target found (see docs/RELIABILITY.md,
//! "Fuzzing"): endpoints whose printed form did not parse back to them.

use super::*;

/// `text` parsed, printed, and parsed again: the same endpoint.
fn prints_back(text: &str) -> String {
    let endpoint: Endpoint = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    let printed = endpoint.to_string();
    let again: Endpoint = printed
        .parse()
        .unwrap_or_else(|e| panic!("{text} prints as {printed}: {e}"));
    assert_eq!(again, endpoint, "{text} prints as {printed}");
    printed
}

#[test]
fn option_values_print_with_the_escapes_they_were_read_with() {
    // A decoded `%25` printed as `%` did not parse; a `&` split the option.
    let printed = prints_back("nats://h?queue_group=a%25b%26c");
    assert_eq!(printed, "nats://h:4222?queue_group=a%25b%26c");
    prints_back("wss://gw.example/kv?tls_ca=/etc/ca%26b%25.pem");
}

#[test]
fn unix_paths_print_with_their_escapes() {
    let printed = prints_back("unix:///run/a%3Fb%25c.sock");
    assert_eq!(printed, "unix:///run/a%3Fb%25c.sock");
}

#[test]
fn user_names_print_with_their_escapes() {
    // `PATH` is set wherever the tests run.
    prints_back("nats://a%3Ab%2Fc%40d@h?password_env=PATH");
}
