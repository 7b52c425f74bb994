//! What a steady-loop guest reported (`SCENARIO=steady`,
//! `tests/components/shared/steady.rs`) and the fault suite's pass
//! conditions, checked against a fault's [`Window`].
//!
//! Definitions (docs/RELIABILITY.md): a fault's window runs from the
//! instant the fault began (just before the signal or stop) to the instant
//! the faulted process was back and ready (its ready line read, or
//! `SIGCONT` sent); a call is *hung* when it took longer than its deadline
//! plus [`SLACK_MS`]; a failed call falls *inside* the window when its
//! [start, end] overlaps it; the calls *succeed again* at the end of the
//! success that ended the last run of failures.

use anyhow::{bail, Context as _};

/// How much longer than its deadline a call may take before it is hung.
pub const SLACK_MS: u64 = 1_000;

/// How soon after the window's end the calls must succeed again.
pub const RECOVERY_NS: i128 = 1_000_000_000;

/// The interval a fault lasted, in Unix nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// When the fault began.
    pub start_ns: u128,
    /// When the faulted process was back and ready.
    pub end_ns: u128,
}

/// One run of consecutive failed calls.
#[derive(Clone, Debug, Default)]
pub struct Failures {
    /// How many calls failed.
    pub n: u64,
    /// When the first failed call started and ended.
    pub first: (u128, u128),
    /// When the last failed call started and ended.
    pub last: (u128, u128),
    /// The longest failed call, ns.
    pub max_ns: u128,
    /// When the success ending the run ended (0: none did).
    pub recovered_ns: u128,
    /// The run's first error.
    pub err: String,
}

/// A steady guest's report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// When the loop started.
    pub started_ns: u128,
    /// Every run of failures, in order.
    pub failures: Vec<Failures>,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Calls that took longer than their deadline plus the slack.
    pub hung: u64,
    /// The longest call, ns.
    pub max_ns: u128,
    /// How many runs of failures there were (only 50 are printed).
    pub runs: u64,
    /// When the last success ended.
    pub last_ok_ns: u128,
}

/// The number in field `key=…` of `line`.
fn field(line: &str, key: &str) -> anyhow::Result<u128> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .with_context(|| format!("no `{key}=` in `{line}`"))?
        .parse()
        .with_context(|| format!("`{key}` is not a number in `{line}`"))
}

/// Like [`field`], as a count.
fn count(line: &str, key: &str) -> anyhow::Result<u64> {
    u64::try_from(field(line, key)?).with_context(|| format!("`{key}` too large in `{line}`"))
}

impl Report {
    /// Reads the `steady:` lines of a guest's standard output.
    ///
    /// # Errors
    ///
    /// A line is malformed, or the start or the final line is missing.
    pub fn parse(stdout: &str) -> anyhow::Result<Self> {
        let mut report = Self::default();
        let mut done = false;
        for line in stdout.lines().filter_map(|l| l.strip_prefix("steady: ")) {
            if line.starts_with("started ") {
                report.started_ns = field(line, "unix_ns")?;
            } else if line.starts_with("failures ") {
                let (nums, err) = line.split_once(" err=").unwrap_or((line, ""));
                report.failures.push(Failures {
                    n: count(nums, "n")?,
                    first: (field(nums, "first_start_ns")?, field(nums, "first_end_ns")?),
                    last: (field(nums, "last_start_ns")?, field(nums, "last_end_ns")?),
                    max_ns: field(nums, "max_ns")?,
                    recovered_ns: field(nums, "recovered_ns")?,
                    err: err.to_string(),
                });
            } else if line.starts_with("done ") {
                report.ok = count(line, "ok")?;
                report.failed = count(line, "failed")?;
                report.hung = count(line, "hung")?;
                report.max_ns = field(line, "max_ns")?;
                report.runs = count(line, "runs")?;
                report.last_ok_ns = field(line, "last_ok_ns")?;
                done = true;
            }
        }
        if report.started_ns == 0 || !done {
            bail!("no complete steady report in:\n{stdout}");
        }
        Ok(report)
    }

    /// The runs of failures with a call outside `window`.
    pub fn outside(&self, window: &Window) -> Vec<&Failures> {
        self.failures
            .iter()
            .filter(|f| f.first.1 < window.start_ns || f.last.0 > window.end_ns)
            .collect()
    }

    /// When the calls succeeded again, relative to the window's end (ns;
    /// negative: before the faulted process was seen ready). `None` when
    /// no call failed or the last failure was never followed by a success.
    pub fn recovery_ns(&self, window: &Window) -> Option<i128> {
        let last = self.failures.last()?;
        (last.recovered_ns != 0).then(|| last.recovered_ns as i128 - window.end_ns as i128)
    }
}

/// One row of the table in docs/RELIABILITY.md.
pub fn row(fault: &str, report: &Report, window: Option<&Window>) -> String {
    let ms = |ns: i128| format!("{:.0}", ns as f64 / 1e6);
    let (span, inside, recovery) = match window {
        Some(w) => (
            ms((w.end_ns - w.start_ns) as i128),
            if report.outside(w).is_empty() {
                "yes"
            } else {
                "no"
            },
            report.recovery_ns(w).map_or_else(|| "-".into(), ms),
        ),
        None => ("-".into(), "-", "-".into()),
    };
    format!(
        "| {fault} | {span} | {} | {} | {} | {inside} | {recovery} | {} |",
        report.ok,
        report.failed,
        report.hung,
        ms(report.max_ns as i128)
    )
}

/// Asserts the pass conditions of a fault under load: the load ran before
/// the fault and well after it; the fault failed calls; no call hung;
/// every failed call overlaps the window; the calls succeeded again within
/// [`RECOVERY_NS`] of the window's end and kept succeeding.
#[track_caller]
pub fn assert_fault_passes(fault: &str, report: &Report, window: &Window) {
    let row = row(fault, report, Some(window));
    let all = format!("{row}\n{window:?}\n{report:#?}");
    println!("{all}");
    assert!(
        report.started_ns < window.start_ns,
        "load before the fault: {all}"
    );
    assert!(report.failed > 0, "the fault failed no call: {all}");
    assert_eq!(report.hung, 0, "calls hung: {all}");
    assert_eq!(
        report.runs as usize,
        report.failures.len(),
        "runs unreported: {all}"
    );
    let outside = report.outside(window);
    assert!(
        outside.is_empty(),
        "failures outside the window {outside:?}: {all}"
    );
    let recovery = report.recovery_ns(window);
    assert!(
        recovery.is_some_and(|r| r <= RECOVERY_NS),
        "no success within 1 s of the fault's end: {all}"
    );
    assert!(
        report.last_ok_ns as i128 >= window.end_ns as i128 + RECOVERY_NS,
        "calls kept succeeding after the fault: {all}"
    );
}
