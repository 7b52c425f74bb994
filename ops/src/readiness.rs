//! Readiness: a set of named checks (each listener, each backend) that
//! `/readyz` runs, plus whether the binary has started and is draining.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU8, Ordering};
use core::time::Duration;

use std::sync::{Arc, Mutex};

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

const STARTING: u8 = 0;
const STARTED: u8 = 1;
const DRAINING: u8 = 2;

/// A check that answers at once, as the async checks are run.
fn at_once<F>(check: F) -> Check
where
    F: Fn() -> Result<(), String> + Send + Sync + 'static,
{
    let check = Arc::new(check);
    Arc::new(move || {
        let check = Arc::clone(&check);
        Box::pin(async move { check() })
    })
}

/// What `/readyz` answers: ready once started and while every check
/// passes; never again once draining. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    phase: AtomicU8,
    /// Each check with its name and, for checks of one workload, its owner.
    checks: Mutex<Vec<(String, Check, Option<String>)>>,
}

/// The result of asking: ready or not, and one line per check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Whether every check passed and the binary has started and is not draining.
    pub ready: bool,
    /// `ok NAME` or `FAIL NAME: WHY` lines, in the order checks were added,
    /// after a first line saying `ready`, `starting`, `draining` or `not ready`.
    pub body: String,
}

impl Readiness {
    /// Nothing started yet, no checks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check named `name` (e.g. `listener tcp://0.0.0.0:7761`,
    /// `backend redis`): `Ok(())` when it passes, else why not. Each run is
    /// bounded by [`CHECK_TIMEOUT`].
    pub fn add<F, Fut>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.push(name.into(), Arc::new(move || Box::pin(check())), None);
    }

    fn push(&self, name: String, check: Check, owner: Option<String>) {
        if let Ok(mut checks) = self.inner.checks.lock() {
            checks.push((name, check, owner));
        }
    }

    /// As [`add_now`](Self::add_now), for what `owner` (a workload) needs:
    /// removed with [`remove_owner`](Self::remove_owner) when it stops.
    pub fn add_now_for<F>(&self, owner: &str, name: impl Into<String>, check: F)
    where
        F: Fn() -> Result<(), String> + Send + Sync + 'static,
    {
        self.push(name.into(), at_once(check), Some(owner.to_string()));
    }

    /// Drops every check `owner` added.
    pub fn remove_owner(&self, owner: &str) {
        if let Ok(mut checks) = self.inner.checks.lock() {
            checks.retain(|(_, _, o)| o.as_deref() != Some(owner));
        }
    }

    /// Adds a check that answers at once.
    pub fn add_now<F>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Result<(), String> + Send + Sync + 'static,
    {
        self.push(name.into(), at_once(check), None);
    }

    /// Everything is up: from now on the checks decide.
    pub fn set_started(&self) {
        let _ = self.inner.phase.compare_exchange(
            STARTING,
            STARTED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Shutting down: not ready any more, whatever the checks say.
    pub fn set_draining(&self) {
        self.inner.phase.store(DRAINING, Ordering::SeqCst);
    }

    /// Runs every check at once, each bounded by [`CHECK_TIMEOUT`].
    pub async fn report(&self) -> Report {
        let checks: Vec<(String, Check, Option<String>)> = self
            .inner
            .checks
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let runs = checks.iter().map(|(name, check, _)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            (name.as_str(), outcome)
        });
        let outcomes = futures::future::join_all(runs).await;
        let phase = self.inner.phase.load(Ordering::SeqCst);
        let all_ok = outcomes.iter().all(|(_, o)| o.is_ok());
        let ready = phase == STARTED && all_ok;
        let mut body = String::from(match phase {
            STARTING => "starting\n",
            DRAINING => "draining\n",
            _ if ready => "ready\n",
            _ => "not ready\n",
        });
        for (name, outcome) in outcomes {
            match outcome {
                Ok(()) => body.push_str(&format!("ok {name}\n")),
                Err(why) => body.push_str(&format!("FAIL {name}: {why}\n")),
            }
        }
        Report { ready, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_only_when_started_every_check_passes_and_not_draining() {
        let r = Readiness::new();
        r.add_now("listener tcp://x", || Ok(()));
        let report = r.report().await;
        assert!(!report.ready);
        assert_eq!(report.body, "starting\nok listener tcp://x\n");

        r.set_started();
        let report = r.report().await;
        assert!(report.ready, "{}", report.body);
        assert_eq!(report.body, "ready\nok listener tcp://x\n");

        r.add_now("backend redis", || Err("connection refused".into()));
        let report = r.report().await;
        assert!(!report.ready);
        assert_eq!(
            report.body,
            "not ready\nok listener tcp://x\nFAIL backend redis: connection refused\n"
        );

        let r2 = Readiness::new();
        r2.set_started();
        r2.set_draining();
        r2.set_started();
        let report = r2.report().await;
        assert!(!report.ready);
        assert_eq!(report.body, "draining\n");
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_fails_after_the_timeout() {
        let r = Readiness::new();
        r.set_started();
        r.add("backend s3", core::future::pending);
        let report = r.report().await;
        assert!(!report.ready);
        assert_eq!(
            report.body,
            "not ready\nFAIL backend s3: no answer within 2s\n"
        );
    }

    #[tokio::test]
    async fn a_workloads_checks_go_with_it() {
        let r = Readiness::new();
        r.set_started();
        r.add_now("listener", || Ok(()));
        r.add_now_for("w", "route a", || Err("down".into()));
        r.add_now_for("v", "route b", || Ok(()));
        let report = r.report().await;
        assert!(!report.ready, "{}", report.body);
        assert!(report.body.contains("route a"), "{}", report.body);
        r.remove_owner("w");
        let report = r.report().await;
        assert!(report.ready, "{}", report.body);
        assert!(!report.body.contains("route a"), "{}", report.body);
        assert!(
            report.body.contains("route b"),
            "the other workload's stays"
        );
    }
}
