//! A WASI 0.2 HTTP handler (`wasi:http/incoming-handler@0.2.x`, exported
//! through the `wasip2` crate's `wasi:http/proxy` macro) that also imports
//! `wasi:keyvalue/{store,atomics}@0.2.0-draft`. Routes, matched on the
//! path's end so the component works under any mount prefix (the query
//! string is ignored for matching):
//!
//! - `…/env/NAME`: 200 with the value of the environment variable `NAME`, or 404;
//! - `/` or `…/count`: increments `hits` in bucket `BUCKET` (default `http`)
//!   by 1 and answers `count: N`; 500 `keyvalue: <error>` if that fails;
//! - `…/hello`: `hello from <GREETING or "http-counter">`;
//! - `POST …/echo`: streams the request body back chunk by chunk, never
//!   holding more than one 64 KiB chunk;
//! - `…/trap`: panics before responding (the instance traps);
//! - `…/sleep?ms=N`: prints `sleeping N ms` to stdout, blocks on a
//!   monotonic-clock pollable for N ms, then answers `slept N`;
//! - `…/fetch?url=URL`: GET URL through `wasi:http/outgoing-handler`; 200 with
//!   `status: S` and the fetched body, or 502 `outgoing: <ErrorCode Debug>`;
//! - anything else: 404 `no route <path>`.
//!
//! Every response carries `x-component: http-counter`.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/keyvalue",
        world: "imports",
        generate_all,
    });
}

use bindings::wasi::keyvalue::{atomics, store};
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, InputStream, Method, OutgoingBody,
    OutgoingRequest, OutgoingResponse, OutputStream, ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

/// Bytes read from a body stream at a time.
const READ_CHUNK: u64 = 64 * 1024;
/// The most `blocking-write-and-flush` accepts in one call.
const WRITE_CHUNK: usize = 4096;

struct Handler;

wasip2::http::proxy::export!(Handler);

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = match path_with_query.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (path_with_query.clone(), String::new()),
        };
        if let Some((_, name)) = path.rsplit_once("/env/") {
            return match std::env::var(name) {
                Ok(value) => respond(out, 200, value.as_bytes()),
                Err(_) => respond(out, 404, format!("no env {name}\n").as_bytes()),
            };
        }
        if path == "/" || path.is_empty() || path.ends_with("/count") {
            count(out)
        } else if path.ends_with("/hello") {
            let greeting = std::env::var("GREETING").unwrap_or_else(|_| "http-counter".into());
            respond(out, 200, format!("hello from {greeting}\n").as_bytes())
        } else if path.ends_with("/echo") && matches!(request.method(), Method::Post) {
            echo(request, out)
        } else if path.ends_with("/trap") {
            panic!("trap requested")
        } else if path.ends_with("/sleep") {
            let ms: u64 = param(&query, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            // For tests: the request is in the component now.
            println!("sleeping {ms} ms");
            monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
            respond(out, 200, format!("slept {ms}\n").as_bytes())
        } else if path.ends_with("/fetch") {
            match param(&query, "url") {
                Some(url) => fetch(&url, out),
                None => respond(out, 400, b"missing url\n"),
            }
        } else {
            respond(out, 404, format!("no route {path}\n").as_bytes())
        }
    }
}

/// `content-type: text/plain` (when `text`) and `x-component`.
fn headers(text: bool) -> Fields {
    let mut entries = vec![("x-component".to_string(), b"http-counter".to_vec())];
    if text {
        entries.push(("content-type".to_string(), b"text/plain".to_vec()));
    }
    Fields::from_list(&entries).expect("valid headers")
}

/// Sends the response head, returning its body and the body's stream.
fn start(out: ResponseOutparam, status: u16, text: bool) -> (OutgoingBody, OutputStream) {
    let response = OutgoingResponse::new(headers(text));
    response.set_status_code(status).expect("valid status");
    let body = response.body().expect("body taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("stream taken once");
    (body, stream)
}

/// Ends a response body.
fn finish(body: OutgoingBody, stream: OutputStream) {
    drop(stream);
    // Fails only if the client went away; nothing more to do then.
    let _ = OutgoingBody::finish(body, None);
}

/// Writes all of `bytes`, in pieces `blocking-write-and-flush` accepts.
fn write_all(stream: &OutputStream, bytes: &[u8]) -> Result<(), StreamError> {
    for piece in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(piece)?;
    }
    Ok(())
}

/// A whole `text/plain` response.
fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let (outgoing, stream) = start(out, status, true);
    let _ = write_all(&stream, body);
    finish(outgoing, stream);
}

/// Copies `from` to `to` one chunk at a time, until `from` ends or either fails.
fn pump(from: &InputStream, to: &OutputStream) {
    loop {
        match from.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if write_all(to, &chunk).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// The value of `key` in a query string, `%XX`-decoded.
fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                decoded.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn describe(err: &store::Error) -> String {
    match err {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(msg) => format!("other: {msg}"),
    }
}

fn count(out: ResponseOutparam) {
    let bucket = std::env::var("BUCKET").unwrap_or_else(|_| "http".into());
    let result = store::open(&bucket).and_then(|bucket| atomics::increment(&bucket, "hits", 1));
    match result {
        Ok(n) => respond(out, 200, format!("count: {n}\n").as_bytes()),
        Err(err) => respond(
            out,
            500,
            format!("keyvalue: {}\n", describe(&err)).as_bytes(),
        ),
    }
}

fn echo(request: IncomingRequest, out: ResponseOutparam) {
    let incoming = request.consume().expect("body consumed once");
    let input = incoming.stream().expect("stream taken once");
    let (outgoing, output) = start(out, 200, false);
    pump(&input, &output);
    drop(input);
    drop(IncomingBody::finish(incoming));
    finish(outgoing, output);
}

/// Splits `http[s]://authority/path?query`.
fn parse_url(url: &str) -> Option<(Scheme, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    Some((scheme, authority.to_string(), path))
}

fn fetch(url: &str, out: ResponseOutparam) {
    let Some((scheme, authority, path)) = parse_url(url) else {
        return respond(out, 400, format!("bad url {url}\n").as_bytes());
    };
    let request = OutgoingRequest::new(Fields::new());
    let ok = request.set_method(&Method::Get).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(&authority)).is_ok()
        && request.set_path_with_query(Some(&path)).is_ok();
    if !ok {
        return respond(out, 400, format!("bad url {url}\n").as_bytes());
    }
    let response = match outgoing_handler::handle(request, None) {
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(result)) => result,
                // Taken twice or not ready: cannot happen after `block`.
                Some(Err(())) | None => Err(ErrorCode::InternalError(Some("no response".into()))),
            }
        }
        Err(err) => Err(err),
    };
    let response = match response {
        Ok(response) => response,
        Err(err) => return respond(out, 502, format!("outgoing: {err:?}\n").as_bytes()),
    };
    let status = response.status();
    let incoming = response.consume().expect("body consumed once");
    let input = incoming.stream().expect("stream taken once");
    let (outgoing, output) = start(out, 200, true);
    if write_all(&output, format!("status: {status}\n").as_bytes()).is_ok() {
        pump(&input, &output);
    }
    drop(input);
    drop(IncomingBody::finish(incoming));
    finish(outgoing, output);
}
