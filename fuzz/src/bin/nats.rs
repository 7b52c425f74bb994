//! What a NATS peer sends besides values: a message's headers (the
//! caller's identity and trace, the credit window), as a server and a
//! caller read them, and credit messages' payloads. The lean form's value
//! (`RootValue`) is fuzzed by the `scanner` target.
//!
//! The headers come as NATS writes them (`Name: value` lines), read into
//! an `async_nats::HeaderMap` the way its parser keeps them (invalid names
//! or values dropped).
//!
//! Asserts: the caller context keeps at most `MAX_HEADERS` headers, named in
//! lower case, each once, and finds each by any case; a `traceparent` that
//! parses prints as one that parses to the same context; a window is in
//! range; a credit that parses prints as one that parses the same, and
//! no credit lets a writer exceed its window.
#![no_main]

use std::str::FromStr;

use async_nats::header::{HeaderName, HeaderValue};
use async_nats::HeaderMap;
use libfuzzer_sys::fuzz_target;
use transport::caller::MAX_HEADERS;
use transport::fuzzing::{nats_credit, nats_credit_payload, nats_window, Flow};
use transport::nats::{CREDIT_HEADER, STREAM_WINDOW};
use transport::{CallerContext, TraceContext};

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let subject = lines.next().unwrap_or_default();
    let mut map = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_str(name),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        map.append(name, value);
    }

    let cx = CallerContext::nats(subject, Some(&map));
    let headers: Vec<(&str, &str)> = cx.headers().collect();
    assert!(
        headers.len() <= MAX_HEADERS,
        "{} headers kept",
        headers.len()
    );
    for (i, (name, value)) in headers.iter().enumerate() {
        assert!(
            !name.bytes().any(|b| b.is_ascii_uppercase()),
            "`{name}` kept in upper case"
        );
        assert!(
            headers[..i].iter().all(|(seen, _)| seen != name),
            "`{name}` kept twice"
        );
        assert_eq!(cx.header(&name.to_ascii_uppercase()), Some(*value));
    }
    if let Some(trace) = cx.traceparent().and_then(TraceContext::parse) {
        let printed = trace.to_string();
        assert_eq!(printed.len(), 55, "{printed}");
        assert_eq!(TraceContext::parse(&printed), Some(trace), "{printed}");
    }
    if let Some(window) = map.get(CREDIT_HEADER).and_then(|v| nats_window(v.as_str())) {
        assert!((1024..=1 << 30).contains(&window), "window {window}");
    }

    // A credit message, as a writer under the default window reads it.
    if let Some((path, consumed)) = nats_credit(body) {
        let printed = nats_credit_payload(&path, consumed);
        assert_eq!(
            nats_credit(printed.as_bytes()),
            Some((path.clone(), consumed))
        );
        let mut flow = Flow::writer(STREAM_WINDOW);
        let sent = usize::from(body.len() as u16);
        flow.sent(&path, sent);
        assert!(flow.credit(body));
        let room = flow.room(&path).unwrap_or_default();
        assert!(room <= STREAM_WINDOW, "room {room} over the window");
        let acked = consumed.min(sent as u64);
        assert_eq!(
            room,
            STREAM_WINDOW - (sent as u64 - acked),
            "credit beyond what was sent"
        );
    }
});
