//! The Host API over HTTP, on the host's ops address (`--http-addr`):
//!
//! | method and path             | operation |
//! |-----------------------------|-----------|
//! | `GET /v1/host`              | host info |
//! | `GET /v1/workloads`         | list      |
//! | `POST /v1/workloads`        | start     |
//! | `GET /v1/workloads/NAME`    | status    |
//! | `PUT /v1/workloads/NAME`    | update    |
//! | `DELETE /v1/workloads/NAME` | stop      |
//!
//! With a token set, every request needs `Authorization: Bearer TOKEN`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::info::{HostInfo, Identity};
use super::{handle, Op, Reply};
use crate::supervisor::Supervisor;

#[derive(Clone)]
struct Api {
    supervisor: Arc<Supervisor>,
    identity: Arc<Identity>,
    token: Option<Arc<str>>,
}

/// The routes, for the ops endpoint to serve.
pub fn routes(
    supervisor: Arc<Supervisor>,
    identity: Arc<Identity>,
    token: Option<String>,
) -> Router {
    let api = Api {
        supervisor,
        identity,
        token: token.map(Into::into),
    };
    Router::new()
        .route("/v1/host", get(host))
        .route("/v1/workloads", get(list).post(start))
        .route("/v1/workloads/{name}", get(status).put(update).delete(stop))
        .with_state(api)
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{}\n", reply.body),
    )
        .into_response()
}

/// `None` when the request may go on, else the 401 reply.
fn refused(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let token = api.token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return None;
    }
    Some(respond(Reply::error(
        401,
        "unauthorized",
        Some("authorization"),
        "this host's API needs `Authorization: Bearer <token>` (HOST_CONTROL_TOKEN)".into(),
    )))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn host(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    let info = HostInfo::now(&api.identity, &api.supervisor);
    respond(Reply {
        status: 200,
        body: json!(info),
    })
}

async fn list(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    respond(handle(&api.supervisor, Op::List, b"").await)
}

async fn start(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    respond(handle(&api.supervisor, Op::Start, &body).await)
}

fn named(name: &str) -> Vec<u8> {
    json!({ "name": name }).to_string().into_bytes()
}

async fn status(State(api): State<Api>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    respond(handle(&api.supervisor, Op::Status, &named(&name)).await)
}

async fn stop(State(api): State<Api>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    respond(handle(&api.supervisor, Op::Stop, &named(&name)).await)
}

async fn update(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = refused(&api, &headers) {
        return r;
    }
    // The manifest's name must be the one in the path.
    let named_in_body = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["workload"]["name"].as_str().map(str::to_string));
    if named_in_body.as_deref().is_some_and(|n| n != name) {
        return respond(Reply::error(
            400,
            "invalid",
            Some("workload.name"),
            format!(
                "the manifest is named `{}`, the path `{name}`",
                named_in_body.unwrap_or_default()
            ),
        ));
    }
    respond(handle(&api.supervisor, Op::Update, &body).await)
}
