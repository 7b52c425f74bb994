//! The Host API: start, update, stop, status and list workloads, and read
//! what the host is and supports. One set of operations with JSON payloads,
//! served over HTTP ([`http`]) and NATS request/reply ([`nats`]); every
//! payload is validated and every request gets a reply, an error naming
//! the field at fault included. docs/HOST-API.md describes them.

pub mod http;
pub mod info;
pub mod nats;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::supervisor::{Supervisor, SupervisorError};
use crate::Workload;

/// The largest request payload the API reads.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// An operation of the Host API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Start a workload: `{"workload": MANIFEST}`.
    Start,
    /// Replace a running workload: `{"workload": MANIFEST}`.
    Update,
    /// Stop a workload: `{"name": NAME}`.
    Stop,
    /// One workload's status: `{"name": NAME}`.
    Status,
    /// Every workload's status: `{}` (or nothing).
    List,
}

impl Op {
    /// Every operation, by the name its NATS subject ends with.
    pub const ALL: [(&'static str, Op); 5] = [
        ("start", Op::Start),
        ("update", Op::Update),
        ("stop", Op::Stop),
        ("status", Op::Status),
        ("list", Op::List),
    ];
}

/// A reply: its HTTP status and JSON body (the same body over NATS).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// 200, 201, 400, 404, 409, 422 or 503.
    pub status: u16,
    /// `{"workload": …}`, `{"workloads": […]}` or `{"error": …}`.
    pub body: Value,
}

impl Reply {
    fn ok(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// An error reply: `{"error": {"kind", "field"?, "message"}}`.
    pub fn error(status: u16, kind: &str, field: Option<&str>, message: String) -> Self {
        let mut error = json!({ "kind": kind, "message": message });
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        Self {
            status,
            body: json!({ "error": error }),
        }
    }

    fn from_supervisor(err: &SupervisorError) -> Self {
        let (status, kind) = match err {
            SupervisorError::Exists(..) => (409, "exists"),
            SupervisorError::NotFound(_) => (404, "not_found"),
            SupervisorError::Start { .. } => (422, "start_failed"),
            SupervisorError::ShuttingDown => (503, "shutting_down"),
        };
        Self::error(status, kind, None, err.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadRequest {
    workload: Value,
    /// The directory relative paths are resolved against (on the host).
    base: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameRequest {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// An invalid payload: 400 naming the field.
fn invalid(field: &str, message: impl Into<String>) -> Reply {
    Reply::error(400, "invalid", Some(field), message.into())
}

/// Parses `payload` as `T`, an error naming the field at fault.
fn parse<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, Reply> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(invalid(
            "",
            format!("payload larger than {MAX_PAYLOAD_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(payload).map_err(|err| {
        let message = err.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.contains("field"))
            .unwrap_or("");
        invalid(field, message.clone())
    })
}

/// The manifest in a start or update request, checked as `host run` checks
/// a file (paths relative to the host's working directory).
pub fn workload_from(value: &Value) -> Result<Workload, Reply> {
    let text = serde_json::to_string(value).map_err(|err| invalid("workload", err.to_string()))?;
    let workload = Workload::parse(&text).map_err(|err| {
        let message = err.to_string();
        // serde_yaml leads with the path of the value at fault.
        let path = message
            .split_once(": ")
            .map(|(p, _)| p)
            .filter(|p| !p.contains(' '));
        let field = path.map_or_else(|| "workload".to_string(), |p| format!("workload.{p}"));
        invalid(&field, message.clone())
    })?;
    workload
        .validate()
        .map_err(|reason| invalid("workload", reason))?;
    Ok(workload)
}

/// Runs `op` with `payload` on `supervisor`.
pub async fn handle(supervisor: &Arc<Supervisor>, op: Op, payload: &[u8]) -> Reply {
    match dispatch(supervisor, op, payload).await {
        Ok(reply) | Err(reply) => reply,
    }
}

async fn dispatch(supervisor: &Arc<Supervisor>, op: Op, payload: &[u8]) -> Result<Reply, Reply> {
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        payload
    };
    let reply = match op {
        Op::Start | Op::Update => {
            let request: WorkloadRequest = parse(payload)?;
            let mut workload = workload_from(&request.workload)?;
            if let Some(base) = &request.base {
                if !base.is_absolute() {
                    return Err(invalid(
                        "base",
                        format!("`{}` is not an absolute path", base.display()),
                    ));
                }
                workload.resolve_paths(base);
            }
            let done = if op == Op::Start {
                supervisor.start(workload).await
            } else {
                supervisor.update(workload).await
            };
            let status = done.map_err(|e| Reply::from_supervisor(&e))?;
            Reply::ok(
                if op == Op::Start { 201 } else { 200 },
                json!({ "workload": status }),
            )
        }
        Op::Stop => {
            let request: NameRequest = parse(payload)?;
            let status = supervisor
                .stop(&request.name)
                .await
                .map_err(|e| Reply::from_supervisor(&e))?;
            Reply::ok(200, json!({ "workload": status }))
        }
        Op::Status => {
            let request: NameRequest = parse(payload)?;
            let status = supervisor
                .status(&request.name)
                .ok_or_else(|| Reply::from_supervisor(&SupervisorError::NotFound(request.name)))?;
            Reply::ok(200, json!({ "workload": status }))
        }
        Op::List => {
            let _: Empty = parse(payload)?;
            Reply::ok(200, json!({ "workloads": supervisor.list() }))
        }
    };
    Ok(reply)
}
