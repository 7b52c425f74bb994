//! The Prometheus recorder behind `/metrics`: the transport's call metrics
//! ([`transport::metrics::names`]), backend errors, and whatever else a
//! binary records through the `metrics` facade.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Backend failures an extension saw, by `backend` and `kind`.
pub const BACKEND_ERRORS: &str = "wrpc_backend_errors_total";

/// Latency buckets in seconds: 100 µs to 60 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's metrics recorder once and returns its handle;
/// later calls return the same handle. Call it before serving or calling.
///
/// If another recorder is already installed, the handle renders only what
/// reaches it, which is nothing.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            describe();
            // Histograms keep every sample until upkeep folds them into
            // their buckets: without it, a process nobody scrapes would
            // grow by every call it makes.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                });
        }
        handle
    })
}

/// The metrics in Prometheus' text format.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

/// Counts one backend failure of `kind` (e.g. `connection`, `timeout`,
/// `denied`) against `backend` (e.g. `redis`, `s3`, `nats`).
pub fn backend_error(backend: &'static str, kind: &'static str) {
    metrics::counter!(BACKEND_ERRORS, "backend" => backend, "kind" => kind).increment(1);
}

fn describe() {
    use transport::metrics::names;
    metrics::describe_counter!(
        names::SERVER_CALLS,
        "Calls served, by interface, function and outcome."
    );
    metrics::describe_histogram!(
        names::SERVER_DURATION,
        metrics::Unit::Seconds,
        "Time from a served call's arrival to its last result."
    );
    metrics::describe_gauge!(names::SERVER_IN_FLIGHT, "Served calls running now.");
    metrics::describe_counter!(
        names::SERVER_UNKNOWN,
        "Calls to functions this server does not serve."
    );
    metrics::describe_counter!(
        names::CLIENT_CALLS,
        "Calls made, by interface, function, target and outcome."
    );
    metrics::describe_histogram!(
        names::CLIENT_DURATION,
        metrics::Unit::Seconds,
        "Time from a call's start to its end."
    );
    metrics::describe_counter!(BACKEND_ERRORS, "Backend failures, by backend and kind.");
}
