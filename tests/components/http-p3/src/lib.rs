//! A WASI 0.3 HTTP handler: exports `wasi:http/handler@0.3.0` through the
//! `wasip3` crate's `wasi:http/service` macro. Routes, matched on the path's
//! end (query ignored):
//!
//! - `…/hello`: 200 `hello from p3`;
//! - `POST …/echo`: 200, the request body streamed back as it arrives, one
//!   chunk (at most 64 KiB) at a time, never collected;
//! - anything else: 404 `no route <path>`.
//!
//! Every response carries `x-component: http-p3`.

use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response};
use wasip3::wit_bindgen::{spawn_local, StreamReader, StreamResult, StreamWriter};
use wasip3::{wit_future, wit_stream};

/// Bytes read from the request body at a time.
const CHUNK: usize = 64 * 1024;

struct Handler;

wasip3::http::service::export!(Handler);

impl wasip3::exports::http::handler::Guest for Handler {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path_with_query = request.get_path_with_query().unwrap_or_else(|| "/".into());
        let path = path_with_query.split('?').next().unwrap_or("/").to_string();
        if path.ends_with("/hello") {
            Ok(text(200, b"hello from p3\n".to_vec()))
        } else if path.ends_with("/echo") && matches!(request.get_method(), Method::Post) {
            Ok(echo(request))
        } else {
            Ok(text(404, format!("no route {path}\n").into_bytes()))
        }
    }
}

/// `x-component`, and `content-type: text/plain` when `text`.
fn headers(text: bool) -> Fields {
    let mut entries = vec![("x-component".to_string(), b"http-p3".to_vec())];
    if text {
        entries.push(("content-type".to_string(), b"text/plain".to_vec()));
    }
    Fields::from_list(&entries).expect("valid headers")
}

/// A response whose body `body` is written by a task once it is returned.
fn text(status: u16, body: Vec<u8>) -> Response {
    let (mut tx, rx) = wit_stream::new();
    // Dropped unwritten: resolves to its default, no trailers.
    let (_, trailers) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers(true), Some(rx), trailers);
    response.set_status_code(status).expect("valid status");
    spawn_local(async move {
        // Whatever the client did not take is dropped with it.
        let _ = tx.write_all(body).await;
    });
    response
}

/// Streams `request`'s body back as the response body.
fn echo(request: Request) -> Response {
    // Our verdict on the request, given when the copy ends (default: fine).
    let (verdict, verdict_rx) = wit_future::new(|| Ok(()));
    let (body, request_trailers) = Request::consume_body(request, verdict_rx);
    let (tx, rx) = wit_stream::new();
    let (trailers_tx, trailers) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers(false), Some(rx), trailers);
    spawn_local(async move {
        if copy(body, tx).await {
            // The request body ended: pass on whether it ended well (its
            // trailers, if any, are not echoed).
            let end = request_trailers.await.map(|_| None);
            let _ = trailers_tx.write(end).await;
        }
        drop(verdict);
    });
    response
}

/// Copies `from` to `to` a chunk at a time. True if `from` ended; false if
/// the client stopped reading first.
async fn copy(mut from: StreamReader<u8>, mut to: StreamWriter<u8>) -> bool {
    loop {
        let (result, chunk) = from.read(Vec::with_capacity(CHUNK)).await;
        match result {
            StreamResult::Complete(_) => {
                if !chunk.is_empty() && !to.write_all(chunk).await.is_empty() {
                    return false;
                }
            }
            StreamResult::Dropped | StreamResult::Cancelled => return true,
        }
    }
}
