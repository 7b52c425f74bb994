//! The images on a real engine (Podman): an extension container next to a
//! host process or container, over TCP, a shared Unix socket and NATS;
//! stopped and started again; SIGTERM under load. Needs the images
//! `containers/build.sh` builds (`.ci/run` and `scripts/test.sh` build
//! them first).
//!
//! The containers share the machine's network (`--network host`), so the
//! test's Redis and NATS on 127.0.0.1 are reachable and every server binds
//! port 0 and reports the port it got.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::KV_GUEST;
use harness::container::{make_readable, podman, require_image, stdout, Container};
use harness::workload::{Component, Workload};
use harness::{http_get, metric, HostRun, Nats, Redis};

const KV_IMAGE: &str = "wrpc-ext/keyvalue-redis:dev";
const HOST_IMAGE: &str = "wrpc-ext/host:dev";
const WAIT: Duration = Duration::from_secs(60);
/// The uid every image runs as.
const NONROOT: &str = "65532";

/// A keyvalue-redis container with its health endpoint on a free port of
/// loopback, serving on `listen` (and `extra` flags).
fn kv_container(name: &str, redis: &Redis, listen: &[&str], run_opts: &[&str]) -> Container {
    let mut args = vec!["--redis-url".to_string(), redis.url()];
    for l in listen {
        args.extend(["--listen".to_string(), (*l).to_string()]);
    }
    let mut opts = vec!["-e", "WRPC_HTTP_ADDR=127.0.0.1:0"];
    opts.extend(run_opts);
    Container::start(KV_IMAGE, name, &opts, &args)
}

/// A workload running the key-value guest at `guest` (its `scenario`)
/// through `target`, each call bounded by `timeout`.
fn manifest(workload: &str, guest: &str, scenario: &str, target: &str, timeout: &str) -> Workload {
    Workload::new(workload)
        .component(
            Component::new("api", guest)
                .config("SCENARIO", scenario)
                .config("BUCKET", "visits"),
        )
        .route("wasi:keyvalue", target, &format!("timeout: {timeout}"))
}

fn run_scenario(workload: &str, scenario: &str, target: &str) -> HostRun {
    manifest(workload, KV_GUEST, scenario, target, "5s")
        .run(&[], WAIT)
        .unwrap()
}

fn run_counter(workload: &str, target: &str) -> HostRun {
    run_scenario(workload, "counter", target)
}

fn expect_success(run: &HostRun, text: &str) {
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stdout.contains(text), "expected `{text}`: {run:#?}");
}

/// The image runs as the non-root uid, its own exec probe passes, and a
/// host process runs the key-value guest through it over TCP and over NATS.
#[test]
fn keyvalue_container_serves_a_host_process_over_tcp_and_nats() {
    let redis = Redis::start().unwrap();
    let nats = Nats::start().unwrap();
    let nats_target = format!("{}/containers", nats.url());
    let kv = kv_container("kv", &redis, &["tcp://127.0.0.1:0", &nats_target], &[]);
    let user = stdout(&podman(&["top", &kv.name, "user"]));
    assert!(
        user.lines().skip(1).all(|l| l.trim() == NONROOT) && user.lines().count() > 1,
        "runs as {NONROOT}: {user}"
    );
    let http = kv.address("http");
    let probe = kv.exec(&["/app", "healthcheck", http.trim_start_matches("http://")]);
    assert!(probe.status.success(), "exec probe: {probe:?}");
    assert_eq!(stdout(&probe).trim(), "/readyz: ok");

    expect_success(
        &run_counter("over-tcp", &kv.address("tcp")),
        "visit number 1",
    );
    expect_success(&run_counter("over-nats", &nats_target), "visit number 2");
}

/// The host as a container too: it runs the workload (mounted read-only)
/// through the extension container, then exits with the guest's code.
#[test]
fn host_container_runs_the_workload_through_the_extension_container() {
    require_image(HOST_IMAGE);
    let redis = Redis::start().unwrap();
    let kv = kv_container("kv-for-host", &redis, &["tcp://127.0.0.1:0"], &[]);
    let dir = harness::TempDir::new("host-container").unwrap();
    std::fs::copy(KV_GUEST, dir.join("guest.wasm")).unwrap();
    std::fs::write(
        dir.join("workload.yaml"),
        // The guest's path inside the host container, where `dir` is mounted.
        manifest(
            "in-a-container",
            "./guest.wasm",
            "counter",
            &kv.address("tcp"),
            "5s",
        )
        .to_yaml(),
    )
    .unwrap();
    make_readable(&dir).unwrap();
    let volume = format!("{}:/workload:ro", dir.display());
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--health-interval",
        "disable",
        "-v",
        &volume,
        HOST_IMAGE,
        "run",
        "/workload/workload.yaml",
    ]);
    assert!(out.status.success(), "host container: {out:?}");
    assert!(stdout(&out).contains("visit number 1"), "{out:?}");
}

/// The sidecar pattern over a shared Unix socket (a mounted directory, as
/// an `emptyDir` in a pod) and NATS: stopped, the guest gets error values
/// naming the target, quickly; started again, the very next run succeeds.
#[test]
fn stopped_sidecar_gives_error_values_and_a_restart_recovers() {
    let redis = Redis::start().unwrap();
    let nats = Nats::start().unwrap();
    let nats_target = format!("{}/sidecar", nats.url());
    let dir = harness::TempDir::new("sidecar-socket").unwrap();
    make_readable(&dir).unwrap();
    let socket = dir.join("kv.sock");
    let unix = format!("unix://{}", socket.display());
    let volume = format!("{}:{}", dir.display(), dir.display());
    let kv = kv_container("sidecar", &redis, &[&unix, &nats_target], &["-v", &volume]);
    expect_success(&run_counter("unix-up", &unix), "visit number 1");
    expect_success(&run_counter("nats-up", &nats_target), "visit number 2");

    let stop = podman(&["stop", "-t", "10", &kv.name]);
    assert!(stop.status.success(), "{stop:?}");
    assert!(!kv.running(), "the sidecar is stopped");
    let exit = stdout(&podman(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &kv.name,
    ]));
    assert_eq!(
        exit.trim(),
        "0",
        "SIGTERM drains and exits 0: {}",
        kv.logs()
    );
    for (workload, target) in [("unix-down", &unix), ("nats-down", &nats_target)] {
        let started = Instant::now();
        let run = run_scenario(workload, "expect-error", target);
        expect_success(&run, "error: other: wasi:keyvalue/store@0.2.0-draft.get");
        assert!(
            run.stdout
                .contains(&format!("extension unreachable at {target}")),
            "names the target: {run:#?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "an error value, not a hang"
        );
    }

    let start = podman(&["start", &kv.name]);
    assert!(start.status.success(), "{start:?}");
    // `ready` again: the second start printed it a second time.
    let deadline = Instant::now() + WAIT;
    while kv.stdout().lines().filter(|l| *l == "ready").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no second `ready`: {}",
            kv.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    expect_success(&run_counter("unix-again", &unix), "visit number 3");
    expect_success(&run_counter("nats-again", &nats_target), "visit number 4");
}

/// Three calls held in Redis (`CLIENT PAUSE … WRITE`), confirmed in flight
/// by the extension's own `/metrics`; SIGTERM to the container: `/readyz`
/// turns to `draining`, Redis resumes, all three calls finish with success,
/// and the container exits 0. `/metrics` counted them.
#[test]
fn sigterm_under_load_lets_calls_in_flight_finish() {
    let redis = Redis::start().unwrap();
    let kv = kv_container(
        "drain",
        &redis,
        &["tcp://127.0.0.1:0"],
        // Redis holds the calls longer than its default 2 s timeout.
        &["-e", "WRPC_SHUTDOWN_GRACE=30s", "-e", "REDIS_TIMEOUT=60s"],
    );
    let http = kv.address("http");
    let http = http.trim_start_matches("http://");
    let redis_cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &redis.port().to_string()])
            .args(args)
            .output()
            .expect("redis-cli (run scripts/install.sh)");
        stdout(&out)
    };
    assert_eq!(
        redis_cli(&["CLIENT", "PAUSE", "60000", "WRITE"]).trim(),
        "OK"
    );
    let target = kv.address("tcp");
    let hosts: Vec<_> = (0..3)
        .map(|i| {
            manifest(&format!("load-{i}"), KV_GUEST, "counter", &target, "60s")
                .spawn(&[], &[])
                .unwrap()
        })
        .collect();
    let in_flight = || {
        let (_, body) = http_get(http, "/metrics").unwrap();
        metric(
            &body,
            "wrpc_server_calls_in_flight",
            &[("function", "increment")],
        )
    };
    let deadline = Instant::now() + WAIT;
    while in_flight() < 3.0 {
        assert!(
            Instant::now() < deadline,
            "the three calls never got in flight"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let term = podman(&["kill", "--signal", "TERM", &kv.name]);
    assert!(term.status.success(), "{term:?}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = http_get(http, "/readyz").unwrap();
        if status == 503 && body.starts_with("draining") {
            break;
        }
        assert!(Instant::now() < deadline, "never draining: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(kv.running(), "still draining while the calls are held");
    let (_, metrics) = http_get(http, "/metrics").unwrap();
    assert_eq!(redis_cli(&["CLIENT", "UNPAUSE"]).trim(), "OK");

    let mut visits: Vec<String> = hosts
        .into_iter()
        .map(|h| {
            let run = h.wait(WAIT).unwrap();
            assert_eq!(run.code, Some(0), "{run:#?}");
            run.stdout
                .lines()
                .find(|l| l.contains("visit number"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    visits.sort();
    assert_eq!(visits.len(), 3);
    for (i, v) in visits.iter().enumerate() {
        assert!(v.contains(&format!("visit number {}", i + 1)), "{visits:?}");
    }
    let exit = podman(&["wait", &kv.name]);
    assert_eq!(
        stdout(&exit).trim(),
        "0",
        "drained and exited 0: {}",
        kv.logs()
    );
    assert_eq!(
        metric(
            &metrics,
            "wrpc_server_calls_in_flight",
            &[("function", "increment")]
        ),
        3.0,
        "{metrics}"
    );
}

/// A played pod, its secrets and its ConfigMap volume, removed when dropped
/// (`kube down` leaves the last two behind).
struct Played {
    manifest: PathBuf,
    pod: String,
    secrets: Vec<String>,
}

impl Drop for Played {
    fn drop(&mut self) {
        let _ = podman(&["pod", "stop", "-t", "30", &self.pod]);
        let _ = podman(&["kube", "down", &self.manifest.display().to_string()]);
        for secret in &self.secrets {
            let _ = podman(&["secret", "rm", secret]);
        }
        let _ = podman(&["volume", "rm", "-f", "wrpc-workload"]);
    }
}

/// Sets `key` in the `data` (or `stringData`) of the document named `name`.
fn set_value(docs: &mut [serde_yaml::Value], name: &str, section: &str, key: &str, value: &str) {
    let doc = docs
        .iter_mut()
        .find(|d| d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no document named {name}"));
    let data = doc[section]
        .as_mapping_mut()
        .unwrap_or_else(|| panic!("{name} has no {section}"));
    data.insert(key.into(), value.into());
}

/// The classic render of containers/k8s/source.yaml, played with `podman
/// kube play` (patched only where Podman 4.3 needs it: the machine's network
/// instead of published ports, the test's backends, the Secret created the
/// Podman way, no liveness probes): every container becomes ready, and a
/// NATS request to `demo.greet` is answered by the component through both
/// sidecars (messaging-nats delivers it to the host's export; the handler
/// counts it through keyvalue-redis and replies through messaging-nats).
#[test]
fn classic_pod_plays_and_its_workload_answers_through_the_sidecars() {
    for image in [
        HOST_IMAGE,
        KV_IMAGE,
        "wrpc-ext/blobstore-s3:dev",
        "wrpc-ext/messaging-nats:dev",
    ] {
        require_image(image);
    }
    let redis = Redis::start().unwrap();
    let nats = Nats::start().unwrap();
    let s3 = harness::S3::start().unwrap();

    let classic =
        std::fs::read_to_string(k8s_render::Form::Classic.path(&k8s_render::k8s_dir())).unwrap();
    let mut docs = k8s_render::parse_documents(&classic).unwrap();
    let components = harness::TempDir::new("pod-components").unwrap();
    std::fs::copy(e2e::MSG_HANDLER, components.join("msg_handler.wasm")).unwrap();
    make_readable(&components).unwrap();
    for doc in docs.iter_mut() {
        let Some(pod) = k8s_render::pod_spec_mut(doc) else {
            continue;
        };
        pod.insert("hostNetwork".into(), true.into());
        for container in pod["containers"].as_sequence_mut().unwrap() {
            container.as_mapping_mut().unwrap().remove("ports");
        }
        for volume in pod["volumes"].as_sequence_mut().unwrap() {
            if volume["name"].as_str() == Some("components") {
                volume["hostPath"]["path"] = components.display().to_string().into();
            }
        }
    }
    set_value(&mut docs, "wrpc-backends", "data", "NATS_URL", &nats.url());
    set_value(&mut docs, "wrpc-backends", "data", "S3_ENDPOINT", &s3.url());
    set_value(
        &mut docs,
        "wrpc-credentials",
        "stringData",
        "REDIS_URL",
        &redis.url(),
    );
    let play = k8s_render::podman::prepare(docs).unwrap();
    let dir = harness::TempDir::new("pod").unwrap();
    let manifest = dir.join("workload.yaml");
    std::fs::write(&manifest, &play.yaml).unwrap();
    let mut played = Played {
        manifest: manifest.clone(),
        pod: "wrpc-greeter-pod-0".into(),
        secrets: Vec::new(),
    };
    for (name, json) in &play.secrets {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, json).unwrap();
        let _ = podman(&["secret", "rm", name]);
        let created = podman(&["secret", "create", name, &file.display().to_string()]);
        assert!(created.status.success(), "{created:?}");
        played.secrets.push(name.clone());
    }
    let out = podman(&["kube", "play", &manifest.display().to_string()]);
    assert!(out.status.success(), "kube play: {out:?}");

    let containers = ["host", "keyvalue-redis", "blobstore-s3", "messaging-nats"];
    let deadline = Instant::now() + WAIT;
    for name in containers {
        let container = format!("{}-{name}", played.pod);
        loop {
            let probe = podman(&["exec", &container, "/app", "healthcheck"]);
            if probe.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{container} never ready: {probe:?}\n{}",
                String::from_utf8_lossy(&podman(&["logs", &container]).stderr)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let reply = rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let request = async_nats::Request::new()
            .payload("from the test".into())
            .timeout(Some(Duration::from_secs(20)));
        client.send_request("demo.greet", request).await
    });
    let reply = reply.unwrap_or_else(|err| {
        panic!(
            "no reply through the pod: {err}\n{}",
            String::from_utf8_lossy(&podman(&["pod", "logs", &played.pod]).stderr)
        )
    });
    assert_eq!(&reply.payload[..], b"re:from the test");

    // Each container counted its part (the pod shares the machine's
    // network: its endpoints are on loopback). A served call is counted when
    // it returns, which can be just after the reply reached the test: wait
    // until the container has no call of `function` in flight, then read.
    let served_ok = |addr: &str, function: &str| {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, text) = http_get(addr, "/metrics").unwrap();
            let in_flight = metric(
                &text,
                "wrpc_server_calls_in_flight",
                &[("function", function)],
            );
            if in_flight == 0.0 {
                let n = metric(
                    &text,
                    "wrpc_server_calls_total",
                    &[("function", function), ("outcome", "ok")],
                );
                return (n, text);
            }
            assert!(
                Instant::now() < deadline,
                "{addr}: {function} still in flight: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (n, host) = served_ok("127.0.0.1:9090", "handle-message");
    assert_eq!(n, 1.0, "{host}");
    let (n, kv) = served_ok("127.0.0.1:9091", "increment");
    assert!(n >= 1.0, "{kv}");
    let (n, msg) = served_ok("127.0.0.1:9093", "publish");
    assert_eq!(
        n, 1.0,
        "the reply went out through the messaging sidecar: {msg}"
    );
    drop(played);
}
