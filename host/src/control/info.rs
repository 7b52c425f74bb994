//! What the host is and what it supports: the body of `GET /v1/host`, of
//! the `host.info` request, and of every heartbeat.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::supervisor::{Supervisor, WorkloadStatus};

/// The WASI interfaces every component may import, whatever the plugins.
pub const WASI: [&str; 11] = [
    "wasi:cli@0.2",
    "wasi:clocks@0.2",
    "wasi:filesystem@0.2",
    "wasi:io@0.2",
    "wasi:random@0.2",
    "wasi:sockets@0.2",
    "wasi:cli@0.3",
    "wasi:clocks@0.3",
    "wasi:filesystem@0.3",
    "wasi:random@0.3",
    "wasi:sockets@0.3",
];

/// Who this host is: fixed when it starts.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Its id (the token in its subjects).
    pub id: String,
    /// Its labels, for schedulers.
    pub labels: BTreeMap<String, String>,
    /// Where `http:` routes are served (`host:port`), if anywhere.
    pub http: Option<String>,
    /// The default target of `wrpc:` entries without one.
    pub default_target: Option<String>,
    started: SystemTime,
    clock: Instant,
}

impl Identity {
    /// The identity of a host starting now.
    pub fn new(id: String, labels: BTreeMap<String, String>) -> Self {
        Self {
            id,
            labels,
            http: None,
            default_target: None,
            started: SystemTime::now(),
            clock: Instant::now(),
        }
    }
}

/// A plugin and what it can serve.
#[derive(Clone, Debug, Serialize)]
pub struct PluginInfo {
    /// Its id.
    pub id: String,
    /// The interfaces it can serve in process.
    pub serves: Vec<String>,
}

/// An interface a running workload reaches over wRPC.
#[derive(Clone, Debug, Serialize)]
pub struct RouteInfo {
    /// The workload.
    pub workload: String,
    /// The interface or package routed.
    pub interface: String,
    /// Where to (secrets left out).
    pub target: String,
}

/// What components on this host can import and export.
#[derive(Clone, Debug, Serialize)]
pub struct Supports {
    /// Imports served by the host's plugins (the embedded defaults among them).
    pub plugins: Vec<PluginInfo>,
    /// WASI, served to every component.
    pub wasi: Vec<String>,
    /// Exports the host calls: runs, HTTP handlers, and any interface a
    /// workload lists under `exports:` (served over wRPC).
    pub exports: Vec<String>,
    /// What the running workloads' `wrpc:` entries reach.
    pub routes: Vec<RouteInfo>,
}

/// The host, its workloads and what it supports.
#[derive(Clone, Debug, Serialize)]
pub struct HostInfo {
    /// Its id.
    pub host_id: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The host's version.
    pub version: &'static str,
    /// When it started (seconds since the Unix epoch).
    pub started_at: u64,
    /// Seconds since it started.
    pub uptime_seconds: u64,
    /// Where `http:` routes are served, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Every workload, with its state.
    pub workloads: Vec<WorkloadStatus>,
    /// What it supports.
    pub supports: Supports,
}

impl HostInfo {
    /// A snapshot of `supervisor`'s host.
    pub fn now(identity: &Identity, supervisor: &Arc<Supervisor>) -> Self {
        let plugins = supervisor
            .host()
            .plugins_serving()
            .into_iter()
            .map(|(id, serves)| PluginInfo {
                id: id.to_string(),
                serves: serves.iter().map(ToString::to_string).collect(),
            })
            .collect();
        let workloads = supervisor.list();
        let routes = supervisor
            .manifests()
            .iter()
            .flat_map(|w| {
                w.wrpc.iter().map(|d| RouteInfo {
                    workload: w.name.clone(),
                    interface: d.interface.to_string(),
                    target: d.target.as_ref().map_or_else(
                        || {
                            identity
                                .default_target
                                .clone()
                                .unwrap_or_else(|| "(none)".into())
                        },
                        ToString::to_string,
                    ),
                })
            })
            .collect();
        let mut exports = vec![
            "wasi:cli/run@0.2".to_string(),
            "wasi:cli/run@0.3".to_string(),
        ];
        if identity.http.is_some() {
            exports.push("wasi:http/incoming-handler@0.2".into());
            exports.push("wasi:http/handler@0.3".into());
        }
        exports.push("any interface listed under `exports:` (served over wRPC)".into());
        Self {
            host_id: identity.id.clone(),
            labels: identity.labels.clone(),
            version: env!("CARGO_PKG_VERSION"),
            started_at: identity
                .started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            uptime_seconds: identity.clock.elapsed().as_secs(),
            http: identity.http.clone(),
            workloads,
            supports: Supports {
                plugins,
                wasi: WASI.iter().map(ToString::to_string).collect(),
                exports,
                routes,
            },
        }
    }
}
