//! The Host API over NATS request/reply (`--control-url`), and the
//! heartbeat. Subjects, under a prefix (default `wasmhost.v1`) and the
//! host's id:
//!
//! - `PREFIX.HOST.workload.start|update|stop|status|list`: the operations;
//! - `PREFIX.HOST.host.info`: what the host is and supports;
//! - `PREFIX.HOST.heartbeat`: published every interval, the same body.
//!
//! Each request is answered on a task of its own (a slow start does not
//! hold the others or the heartbeat), and always answered.

use core::time::Duration;

use std::sync::Arc;

use futures::StreamExt as _;
use serde_json::json;
use tracing::{debug, warn};

use super::info::{HostInfo, Identity};
use super::{handle, Op, Reply};
use crate::supervisor::Supervisor;

/// The default subject prefix.
pub const DEFAULT_PREFIX: &str = "wasmhost.v1";

/// The subjects of one host.
#[derive(Clone, Debug)]
pub struct Subjects {
    base: String,
}

impl Subjects {
    /// The subjects of host `id` under `prefix`.
    pub fn new(prefix: &str, id: &str) -> Self {
        Self {
            base: format!("{prefix}.{id}"),
        }
    }

    /// Where operation `op` (its name in [`Op::ALL`]) is asked.
    pub fn workload(&self, op: &str) -> String {
        format!("{}.workload.{op}", self.base)
    }

    /// Where host info is asked.
    pub fn info(&self) -> String {
        format!("{}.host.info", self.base)
    }

    /// Where heartbeats go.
    pub fn heartbeat(&self) -> String {
        format!("{}.heartbeat", self.base)
    }
}

/// Answers the Host API on `client` and publishes a heartbeat every
/// `interval`, until the process ends.
///
/// # Errors
///
/// A subscription failed.
pub async fn serve(
    client: async_nats::Client,
    subjects: Subjects,
    supervisor: Arc<Supervisor>,
    identity: Arc<Identity>,
    interval: Duration,
) -> Result<(), async_nats::SubscribeError> {
    let mut ops = Vec::new();
    for (name, op) in Op::ALL {
        ops.push((client.subscribe(subjects.workload(name)).await?, Some(op)));
    }
    ops.push((client.subscribe(subjects.info()).await?, None));
    for (mut sub, op) in ops {
        let client = client.clone();
        let supervisor = Arc::clone(&supervisor);
        let identity = Arc::clone(&identity);
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(reply_to) = msg.reply.clone() else {
                    debug!(subject = %msg.subject, "control message without a reply subject");
                    continue;
                };
                let client = client.clone();
                let supervisor = Arc::clone(&supervisor);
                let identity = Arc::clone(&identity);
                tokio::spawn(async move {
                    let reply = match op {
                        Some(op) => handle(&supervisor, op, &msg.payload).await,
                        None => Reply {
                            status: 200,
                            body: json!(HostInfo::now(&identity, &supervisor)),
                        },
                    };
                    let body = json!({ "status": reply.status, "body": reply.body });
                    if let Err(err) = client.publish(reply_to, body.to_string().into()).await {
                        warn!("cannot reply on the control subject: {err}");
                    }
                });
            }
        });
    }
    let subject = subjects.heartbeat();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            let beat = json!(HostInfo::now(&identity, &supervisor)).to_string();
            if let Err(err) = client.publish(subject.clone(), beat.into()).await {
                warn!("cannot publish the heartbeat: {err}");
            }
        }
    });
    Ok(())
}
