//! [`Supervisor`]: the workloads of a long-running host (`host serve`),
//! each started, updated and stopped on its own while the host runs.

use core::time::Duration;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ops::Readiness;
use serde::Serialize;
use tracing::{info, warn};

use crate::{BoundWorkload, Host, Workload};

/// What a workload is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being compiled, linked and bound.
    Starting,
    /// Serving (HTTP, exports) or running its components.
    Running,
    /// Its components ran to the end and nothing is served.
    Completed,
    /// It could not start; `message` says why.
    Failed,
    /// Draining before it stops.
    Stopping,
    /// Stopped (in the reply to a stop only: it is then forgotten).
    Stopped,
}

/// A workload's status, as the Host API and the heartbeat report it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadStatus {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// What it is doing.
    pub state: State,
    /// Its components' names.
    pub components: Vec<String>,
    /// When it entered this state (seconds since the Unix epoch).
    pub since: u64,
    /// The exit code of its runs, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why an operation on a workload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SupervisorError {
    /// A workload of that name runs (use update).
    #[error("workload `{0}` already exists ({1:?}); stop it first or update it")]
    Exists(String, State),
    /// No workload of that name.
    #[error("no workload `{0}`")]
    NotFound(String),
    /// It did not start; nothing of it runs.
    #[error("workload `{name}` did not start: {reason}")]
    Start {
        /// The workload.
        name: String,
        /// Why, in one line.
        reason: String,
    },
    /// The host is stopping and takes no new workload.
    #[error("the host is shutting down")]
    ShuttingDown,
}

struct Slot {
    status: WorkloadStatus,
    bound: Option<Arc<BoundWorkload>>,
    manifest: Arc<Workload>,
    stop_requested: bool,
}

/// Runs any number of workloads on one [`Host`].
pub struct Supervisor {
    host: Arc<Host>,
    readiness: Readiness,
    grace: Duration,
    slots: Mutex<BTreeMap<String, Slot>>,
    closed: std::sync::atomic::AtomicBool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn status_of(workload: &Workload, state: State) -> WorkloadStatus {
    WorkloadStatus {
        name: workload.name.clone(),
        namespace: workload.namespace.clone(),
        state,
        components: workload.components.iter().map(|c| c.name.clone()).collect(),
        since: now(),
        exit_code: None,
        message: None,
    }
}

impl Supervisor {
    /// A supervisor of workloads on `host`, each drained within `grace`
    /// when stopped.
    pub fn new(host: Arc<Host>, readiness: Readiness, grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            host,
            readiness,
            grace,
            slots: Mutex::default(),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `workload`: compiled, linked, bound and running when this
    /// returns, or not started at all (nothing half-started).
    ///
    /// # Errors
    ///
    /// A workload of that name exists and has not ended, or it did not start.
    pub async fn start(
        self: &Arc<Self>,
        workload: Workload,
    ) -> Result<WorkloadStatus, SupervisorError> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SupervisorError::ShuttingDown);
        }
        let name = workload.name.clone();
        let manifest = Arc::new(workload);
        {
            let mut slots = self.slots();
            if let Some(slot) = slots.get(&name) {
                if !matches!(slot.status.state, State::Completed | State::Failed) {
                    return Err(SupervisorError::Exists(name, slot.status.state));
                }
            }
            slots.insert(
                name.clone(),
                Slot {
                    status: status_of(&manifest, State::Starting),
                    bound: None,
                    manifest: Arc::clone(&manifest),
                    stop_requested: false,
                },
            );
        }
        info!(workload = name, "starting");
        let bound = self
            .host
            .bind((*manifest).clone(), self.readiness.clone())
            .await;
        let bound = match bound {
            Ok(bound) => Arc::new(bound),
            Err(err) => {
                let reason = format!("{err:#}");
                warn!(workload = name, "did not start: {reason}");
                let mut slots = self.slots();
                if let Some(slot) = slots.get_mut(&name) {
                    slot.status = status_of(&manifest, State::Failed);
                    slot.status.message = Some(reason.clone());
                }
                return Err(SupervisorError::Start { name, reason });
            }
        };
        let stop_now = {
            let mut slots = self.slots();
            match slots.get_mut(&name) {
                Some(slot) if !slot.stop_requested => {
                    slot.status = status_of(&manifest, State::Running);
                    slot.bound = Some(Arc::clone(&bound));
                    false
                }
                _ => true,
            }
        };
        if stop_now {
            bound.drain(Duration::ZERO).await;
            if let Ok(bound) = Arc::try_unwrap(bound) {
                bound.unbind().await;
            }
            self.slots().remove(&name);
            let mut status = status_of(&manifest, State::Stopped);
            status.message = Some("stopped while starting".into());
            return Ok(status);
        }
        self.spawn_runs(&name, &bound);
        info!(workload = name, "running");
        Ok(self
            .status(&name)
            .unwrap_or_else(|| status_of(&manifest, State::Running)))
    }

    /// Runs the workload's `wasi:cli/run` components; a workload serving
    /// nothing completes when they end.
    fn spawn_runs(self: &Arc<Self>, name: &str, bound: &Arc<BoundWorkload>) {
        let runs = bound.runs();
        let serves = bound.serves();
        let me = Arc::downgrade(self);
        let name = name.to_string();
        let bound = Arc::downgrade(bound);
        tokio::spawn(async move {
            let code = runs.await;
            if serves {
                return;
            }
            let Some(me) = me.upgrade() else { return };
            let finished = {
                let mut slots = me.slots();
                match slots.get_mut(&name) {
                    // Still the same run of this workload.
                    Some(slot)
                        if slot.status.state == State::Running
                            && slot.bound.as_ref().is_some_and(|b| {
                                bound.upgrade().is_some_and(|ours| Arc::ptr_eq(b, &ours))
                            }) =>
                    {
                        slot.status = status_of(&slot.manifest, State::Completed);
                        slot.status.exit_code = Some(code);
                        slot.bound.take()
                    }
                    _ => None,
                }
            };
            if let Some(bound) = finished {
                info!(workload = name, code, "completed");
                if let Ok(bound) = Arc::try_unwrap(bound) {
                    bound.unbind().await;
                }
                me.readiness.remove_owner(&name);
            }
        });
    }

    /// Stops `name`: it takes no new work, what runs finishes within the
    /// grace period, then everything of it is released.
    ///
    /// # Errors
    ///
    /// No workload of that name.
    pub async fn stop(&self, name: &str) -> Result<WorkloadStatus, SupervisorError> {
        let (bound, manifest) = {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(name)
                .ok_or_else(|| SupervisorError::NotFound(name.to_string()))?;
            match slot.status.state {
                State::Starting => {
                    slot.stop_requested = true;
                    let mut status = slot.status.clone();
                    status.state = State::Stopping;
                    return Ok(status);
                }
                State::Stopping => return Ok(slot.status.clone()),
                _ => {}
            }
            slot.status = status_of(&slot.manifest, State::Stopping);
            (slot.bound.take(), Arc::clone(&slot.manifest))
        };
        info!(workload = name, "stopping");
        if let Some(bound) = bound {
            bound.drain(self.grace).await;
            match Arc::try_unwrap(bound) {
                Ok(bound) => bound.unbind().await,
                Err(_) => warn!(workload = name, "still in use after draining"),
            }
        }
        self.slots().remove(name);
        self.readiness.remove_owner(name);
        info!(workload = name, "stopped");
        Ok(status_of(&manifest, State::Stopped))
    }

    /// Replaces the workload of `workload`'s name: the old one stops, the
    /// new one starts; if the new one does not start, the old one is
    /// started again.
    ///
    /// # Errors
    ///
    /// No workload of that name, or the new one did not start (the error
    /// says whether the old one runs again).
    pub async fn update(
        self: &Arc<Self>,
        workload: Workload,
    ) -> Result<WorkloadStatus, SupervisorError> {
        let name = workload.name.clone();
        let old = self
            .slots()
            .get(&name)
            .map(|s| Arc::clone(&s.manifest))
            .ok_or_else(|| SupervisorError::NotFound(name.clone()))?;
        self.stop(&name).await?;
        match self.start(workload).await {
            Ok(status) => Ok(status),
            Err(SupervisorError::Start { name, reason }) => {
                let restored = match self.start((*old).clone()).await {
                    Ok(_) => "the previous version runs again".to_string(),
                    Err(err) => format!("the previous version did not start again either: {err}"),
                };
                Err(SupervisorError::Start {
                    name,
                    reason: format!("{reason} ({restored})"),
                })
            }
            Err(err) => Err(err),
        }
    }

    /// The status of `name`.
    pub fn status(&self, name: &str) -> Option<WorkloadStatus> {
        self.slots().get(name).map(|s| s.status.clone())
    }

    /// Every workload's status, by name.
    pub fn list(&self) -> Vec<WorkloadStatus> {
        self.slots().values().map(|s| s.status.clone()).collect()
    }

    /// Every workload's manifest (for what their routes reach).
    pub fn manifests(&self) -> Vec<Arc<Workload>> {
        self.slots()
            .values()
            .map(|s| Arc::clone(&s.manifest))
            .collect()
    }

    /// Takes no new workload, and stops every one, draining them together.
    pub async fn shutdown(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let names: Vec<String> = self.slots().keys().cloned().collect();
        futures::future::join_all(names.iter().map(|n| self.stop(n))).await;
    }
}
