//! `bench containers`: each image's size, and the resident memory of its
//! process once started and idle, run next to real Redis, NATS and S3 on
//! the machine's network (Podman; images from `containers/build.sh`).

use std::time::Duration;

use anyhow::Context as _;
use harness::container::{image_size, make_readable, Container};
use harness::{Nats, Redis, S3};

/// How long a started container is left alone before its memory is read.
const SETTLE: Duration = Duration::from_secs(3);

/// One image's figures.
pub struct Row {
    /// The image.
    pub image: String,
    /// Its size (MB, 10^6 bytes, as engines print it).
    pub size_mb: f64,
    /// Resident memory of its process, idle after start (MiB).
    pub idle_rss_mib: f64,
}

/// Starts every image next to real backends and measures it.
pub fn measure(progress: impl Fn(&str)) -> anyhow::Result<Vec<Row>> {
    let redis = Redis::start()?;
    let nats = Nats::start()?;
    let s3 = S3::start()?;
    let http = ["-e", "WRPC_HTTP_ADDR=127.0.0.1:0"];
    let s3_env: Vec<String> = S3::env()
        .iter()
        .flat_map(|(k, v)| ["-e".to_string(), format!("{k}={v}")])
        .collect();
    let mut blob_opts: Vec<&str> = http.to_vec();
    blob_opts.extend(s3_env.iter().map(String::as_str));

    let mut rows = Vec::new();
    let mut measure_one = |image: &str, container: &Container| -> anyhow::Result<()> {
        std::thread::sleep(SETTLE);
        let pid = container.pid().context("no pid")?;
        let rss = harness::proc_status_kib(pid, "VmRSS")?;
        let size = image_size(image).context("no image size")?;
        #[allow(clippy::cast_precision_loss)]
        rows.push(Row {
            image: image.to_string(),
            size_mb: size as f64 / 1e6,
            idle_rss_mib: rss as f64 / 1024.0,
        });
        Ok(())
    };

    progress("keyvalue-redis");
    let kv = Container::start(
        "wrpc-ext/keyvalue-redis:dev",
        "bench-kv",
        &http,
        &[
            "--redis-url".into(),
            redis.url(),
            "--listen".into(),
            "tcp://127.0.0.1:0".into(),
        ],
    );
    measure_one("wrpc-ext/keyvalue-redis:dev", &kv)?;

    progress("blobstore-s3");
    let mut blob_args = vec!["--listen".to_string(), "tcp://127.0.0.1:0".into()];
    blob_args.extend(s3.args());
    let blob = Container::start(
        "wrpc-ext/blobstore-s3:dev",
        "bench-blob",
        &blob_opts,
        &blob_args,
    );
    measure_one("wrpc-ext/blobstore-s3:dev", &blob)?;
    drop(blob);

    progress("messaging-nats");
    let msg = Container::start(
        "wrpc-ext/messaging-nats:dev",
        "bench-msg",
        &http,
        &["--nats-url".into(), format!("{}/ext", nats.url())],
    );
    measure_one("wrpc-ext/messaging-nats:dev", &msg)?;
    drop(msg);

    progress("host");
    let dir = harness::TempDir::new("bench-host")?;
    std::fs::copy(guests::MSG_HANDLER, dir.join("handler.wasm"))?;
    std::fs::write(
        dir.join("workload.yaml"),
        format!(
            "name: idle\ncomponents:\n  - name: handler\n    file: ./handler.wasm\nwrpc:\n  - interface: wasi:keyvalue\n    target: {kv}\n  - interface: wasmcloud:messaging\n    target: {nats}/ext\nexports:\n  - interface: wasmcloud:messaging/handler@0.2.0\n    serve: tcp://127.0.0.1:0\n",
            kv = kv.address("tcp"),
            nats = nats.url(),
        ),
    )?;
    make_readable(&dir)?;
    let volume = format!("{}:/workload:ro", dir.display());
    let host = Container::start(
        "wrpc-ext/host:dev",
        "bench-host",
        &["-v", &volume],
        &[
            "run".into(),
            "/workload/workload.yaml".into(),
            "--http-addr".into(),
            "127.0.0.1:0".into(),
        ],
    );
    measure_one("wrpc-ext/host:dev", &host)?;
    Ok(rows)
}

/// The rows as a Markdown table, with the goals.
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| image | size (MB) | idle RSS (MiB) | goal |\n|---|---:|---:|---|\n");
    for r in rows {
        let goal = if r.image.contains("/host:") {
            "none set (the host embeds Wasmtime and Cranelift)".to_string()
        } else {
            let size = if r.size_mb <= 25.0 { "met" } else { "MISSED" };
            let rss = if r.idle_rss_mib <= 15.0 {
                "met"
            } else {
                "MISSED"
            };
            format!("≤ 25 MB: {size}; ≤ 15 MiB: {rss}")
        };
        out.push_str(&format!(
            "| `{}` | {:.1} | {:.1} | {goal} |\n",
            r.image, r.size_mb, r.idle_rss_mib
        ));
    }
    out
}
