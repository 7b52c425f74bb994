//! The stream transports' frame parser, both dialects and both roles: the
//! bytes a peer sends, in pieces cut anywhere.
//!
//! Asserts: the events do not depend on where the input is cut; every
//! declared length stayed within the limits; the events, encoded again
//! with the crate's own encoders, parse to the same events.
#![no_main]

use arbitrary::Unstructured;
use bytes::BytesMut;
use fuzz_targets::{cuts, split_input};
use libfuzzer_sys::fuzz_target;
use transport::frame::{self, Dialect, Event, FrameError, Parser, MAX_ERROR_TEXT};
use transport::Limits;

/// A whole event: data frames joined.
#[derive(Debug, PartialEq)]
enum Whole {
    Event(Event),
    Frame(Vec<usize>, Vec<u8>),
}

fuzz_target!(|data: &[u8]| {
    let (spec, payload) = split_input(data);
    let mut u = Unstructured::new(spec);
    let role = u.int_in_range(0..=2u8).unwrap_or(0);
    let limits = if u.arbitrary().unwrap_or(true) {
        Limits::DEFAULT
    } else {
        Limits {
            max_frame: 5,
            max_path_depth: 2,
            max_name: 4,
            max_list: 3,
            ..Limits::DEFAULT
        }
    };
    let parser = || match role {
        0 => Parser::server(limits),
        1 => Parser::client(limits, Dialect::Plain),
        _ => Parser::client(limits, Dialect::Pooled),
    };
    let whole = run(
        parser(),
        &limits,
        std::iter::once(0..payload.len()),
        payload,
    );
    let pieces = run(parser(), &limits, cuts(&mut u, payload.len()), payload);
    assert_eq!(whole, pieces, "the events depend on where the input is cut");

    let (events, _) = whole;
    let mut wire = BytesMut::new();
    let pooled = match role {
        0 => matches!(events.first(), Some(Whole::Event(Event::Preface))),
        1 => false,
        _ => true,
    };
    let dialect = if pooled {
        Dialect::Pooled
    } else {
        Dialect::Plain
    };
    for event in &events {
        match event {
            Whole::Event(Event::Preface) => frame::put_preface(&mut wire),
            Whole::Event(Event::Call(call)) if pooled => {
                let headers: Vec<(&str, &str)> = call
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                frame::put_call(&mut wire, &call.instance, &call.func, &headers);
            }
            Whole::Event(Event::Call(call)) => {
                frame::put_plain_header(&mut wire, &call.instance, &call.func);
            }
            Whole::Event(Event::End) => frame::put_end(&mut wire),
            Whole::Event(Event::GoAway) => frame::put_goaway(&mut wire),
            Whole::Event(Event::Error(text)) => frame::put_error(&mut wire, text),
            Whole::Event(Event::Data { .. }) => unreachable!("data is joined"),
            Whole::Frame(path, bytes) => frame::put_frame(&mut wire, dialect, path, bytes),
        }
    }
    let len = wire.len();
    let (again, err) = run(parser(), &limits, std::iter::once(0..len), &wire);
    assert_eq!(err, None, "re-encoded events do not parse");
    let expected: Vec<Whole> = events
        .into_iter()
        .map(|e| match e {
            // The encoder cuts an error's text to its limit.
            Whole::Event(Event::Error(text)) => Whole::Event(Event::Error(cut(&text))),
            e => e,
        })
        .collect();
    assert_eq!(again, expected, "re-encoded events parse differently");
});

/// Feeds `input` in `pieces`; returns the whole events, and the error that
/// ended the input, if any.
fn run(
    mut parser: Parser,
    limits: &Limits,
    pieces: impl IntoIterator<Item = std::ops::Range<usize>>,
    input: &[u8],
) -> (Vec<Whole>, Option<FrameError>) {
    let limits_frame = limits.max_frame as usize;
    let mut out = Vec::new();
    let mut open: Option<(Vec<usize>, Vec<u8>)> = None;
    let mut buf = BytesMut::new();
    for piece in pieces {
        buf.extend_from_slice(&input[piece]);
        loop {
            match parser.next(&mut buf) {
                Ok(None) => break,
                Ok(Some(Event::Data { path, bytes, last })) => {
                    assert!(path.len() <= limits.max_path_depth as usize, "too deep");
                    assert!(path.iter().all(|&i| i <= limits.max_list as usize));
                    let (at, data) = open.get_or_insert_with(|| (path.clone(), Vec::new()));
                    assert_eq!(*at, path, "a frame's pieces name different paths");
                    data.extend_from_slice(&bytes);
                    assert!(data.len() <= limits_frame, "a frame exceeds max-frame");
                    if last {
                        let (path, data) = open.take().unwrap_or_default();
                        out.push(Whole::Frame(path, data));
                    }
                }
                Ok(Some(event)) => {
                    assert!(open.is_none(), "an event inside a frame");
                    if let Event::Call(call) = &event {
                        assert!(call.headers.len() <= transport::caller::MAX_HEADERS);
                        let names = [&call.instance, &call.func]
                            .into_iter()
                            .chain(call.headers.iter().flat_map(|(k, v)| [k, v]));
                        for name in names {
                            assert!(name.len() <= limits.max_name as usize, "over max-name");
                        }
                    }
                    out.push(Whole::Event(event));
                }
                Err(err) => return (out, Some(err)),
            }
        }
    }
    (out, None)
}

/// `text` as [`frame::put_error`] sends it.
fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_TEXT as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
