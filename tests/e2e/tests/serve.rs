//! `host serve`: many workloads on one host, started, updated and stopped
//! through the Host API (HTTP and NATS), each on its own; heartbeats; and
//! SIGTERM draining them all.

use std::time::Duration;

use e2e::http::{api, request, send, Reply};
use e2e::{HTTP_COUNTER, KV_GUEST};
use harness::workload::{Component, Workload};
use harness::{spawn_serve, HostProcess};
use serde_json::{json, Value};

const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// An HTTP counter workload `name` answering `hosts`, greeting with `greeting`.
fn counter(name: &str, hosts: &str, greeting: &str) -> Workload {
    Workload::new(name)
        .component(Component::new("api", HTTP_COUNTER).config("GREETING", greeting))
        .host("wasi:keyvalue")
        .http(&format!("hosts: [{hosts}]"))
}

/// The manifest as the JSON the Host API takes.
fn manifest(workload: &Workload) -> Value {
    serde_yaml::from_str(&workload.to_yaml()).unwrap()
}

/// A host serving `first`, with its ops (API) and HTTP addresses.
fn serve(first: &Workload, more: &[&str]) -> (HostProcess, String, String) {
    let mut args = vec!["--http-addr", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    args.extend_from_slice(more);
    let host = spawn_serve(&first.to_yaml(), &args, &[]).unwrap();
    let ops = host.http_addr(START_LIMIT).unwrap();
    let http = host.http_listen(START_LIMIT).unwrap();
    host.await_stdout("ready\n", START_LIMIT).unwrap();
    (host, ops, http)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()))
}

async fn hello(http: &str, host: &str) -> String {
    send(http, request(host, "/hello", ""))
        .await
        .unwrap()
        .text()
}

/// Workloads are started, listed, routed side by side and stopped over
/// HTTP; bad payloads get an error naming the field and change nothing.
#[test]
fn the_http_api_starts_lists_and_stops_workloads_and_names_bad_fields() {
    let (host, ops, http) = serve(&counter("one", "one.test", "one"), &[]);
    rt().block_on(async {
        let body = json!({ "workload": manifest(&counter("two", "two.test", "two")) });
        let reply = api(&ops, "POST", "/v1/workloads", &body.to_string()).await.unwrap();
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(json_of(&reply)["workload"]["state"], "running");
        assert_eq!(hello(&http, "one.test").await, "hello from one\n");
        assert_eq!(hello(&http, "two.test").await, "hello from two\n");

        let list = json_of(&api(&ops, "GET", "/v1/workloads", "").await.unwrap());
        let names: Vec<&str> = list["workloads"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["one", "two"]);

        for (payload, status, kind, field) in [
            ("not json".to_string(), 400, "invalid", None),
            (json!({ "wl": {} }).to_string(), 400, "invalid", Some("wl")),
            (json!({ "workload": { "name": "x", "components": [{ "name": "a", "file": "a.wasm", "pool": 1 }] } }).to_string(), 400, "invalid", Some("workload.components[0]")),
            (json!({ "workload": { "name": "x", "components": [{ "name": "a", "file": "a.wasm" }], "http": { "timeout": "soon" } } }).to_string(), 400, "invalid", Some("workload.http")),
            (body.to_string(), 409, "exists", None),
            (json!({ "workload": { "name": "broken", "components": [{ "name": "a", "file": "/nonexistent.wasm" }] } }).to_string(), 422, "start_failed", None),
        ] {
            let reply = api(&ops, "POST", "/v1/workloads", &payload).await.unwrap();
            assert_eq!(reply.status, status, "{payload}: {}", reply.text());
            let error = &json_of(&reply)["error"];
            assert_eq!(error["kind"], kind, "{payload}: {error}");
            if let Some(field) = field {
                assert_eq!(error["field"], field, "{payload}: {error}");
            }
        }
        let broken = json_of(&api(&ops, "GET", "/v1/workloads/broken", "").await.unwrap());
        assert_eq!(broken["workload"]["state"], "failed");
        assert!(broken["workload"]["message"].as_str().unwrap().contains("/nonexistent.wasm"));
        assert_eq!(hello(&http, "two.test").await, "hello from two\n", "untouched by the bad requests");

        let reply = api(&ops, "DELETE", "/v1/workloads/one", "").await.unwrap();
        assert_eq!(json_of(&reply)["workload"]["state"], "stopped");
        let gone = send(&http, request("one.test", "/hello", "")).await.unwrap();
        assert_eq!(gone.status, 404, "{}", gone.text());
        assert_eq!(hello(&http, "two.test").await, "hello from two\n", "the other one runs on");
        let reply = api(&ops, "GET", "/v1/workloads/one", "").await.unwrap();
        assert_eq!(reply.status, 404);
        assert_eq!(json_of(&reply)["error"]["kind"], "not_found");
    });
    let run = host.terminate(STOP_LIMIT).unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
}

/// An update replaces the workload; an update that cannot start brings the
/// previous version back, and says so.
#[test]
fn an_update_that_fails_restores_the_previous_version() {
    let (host, ops, http) = serve(&counter("app", "app.test", "v1"), &[]);
    rt().block_on(async {
        let v2 = json!({ "workload": manifest(&counter("app", "app.test", "v2")) });
        let reply = api(&ops, "PUT", "/v1/workloads/app", &v2.to_string())
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(hello(&http, "app.test").await, "hello from v2\n");

        let mut bad = manifest(&counter("app", "app.test", "v3"));
        bad["components"][0]["file"] = json!("/nonexistent.wasm");
        let reply = api(
            &ops,
            "PUT",
            "/v1/workloads/app",
            &json!({ "workload": bad }).to_string(),
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 422, "{}", reply.text());
        let message = json_of(&reply)["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains("the previous version runs again"),
            "{message}"
        );
        assert_eq!(hello(&http, "app.test").await, "hello from v2\n");

        let other = json!({ "workload": manifest(&counter("other", "o.test", "x")) });
        let reply = api(&ops, "PUT", "/v1/workloads/app", &other.to_string())
            .await
            .unwrap();
        assert_eq!(
            reply.status, 400,
            "the name in the path and the manifest differ"
        );
    });
    host.terminate(STOP_LIMIT).unwrap();
}

/// With a token set, a request without it is refused and changes nothing.
#[test]
fn the_api_token_is_required_when_set() {
    let workload = counter("one", "one.test", "one");
    let mut args = vec!["--http-addr", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    args.extend_from_slice(&[]);
    let host = spawn_serve(
        &workload.to_yaml(),
        &args,
        &[("HOST_CONTROL_TOKEN", "s3cret")],
    )
    .unwrap();
    let ops = host.http_addr(START_LIMIT).unwrap();
    host.await_stdout("ready\n", START_LIMIT).unwrap();
    rt().block_on(async {
        let reply = api(&ops, "DELETE", "/v1/workloads/one", "").await.unwrap();
        assert_eq!(reply.status, 401, "{}", reply.text());
        let req = http::Request::get("/v1/workloads/one")
            .header("host", &ops)
            .header("authorization", "Bearer s3cret")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let reply = send(&ops, req).await.unwrap();
        assert_eq!(json_of(&reply)["workload"]["state"], "running");
    });
    host.terminate(STOP_LIMIT).unwrap();
}

/// SIGTERM drains every workload: requests in flight on two of them finish.
#[test]
fn sigterm_drains_every_workload() {
    let (host, ops, http) = serve(
        &counter("one", "one.test", "one"),
        &["--shutdown-grace", "20s"],
    );
    let runtime = rt();
    runtime.block_on(async {
        let body = json!({ "workload": manifest(&counter("two", "two.test", "two")) });
        assert_eq!(
            api(&ops, "POST", "/v1/workloads", &body.to_string())
                .await
                .unwrap()
                .status,
            201
        );
    });
    let slow = |name: &'static str| {
        let http = http.clone();
        runtime.spawn(async move { send(&http, request(name, "/sleep?ms=1500", "")).await })
    };
    let (a, b) = (slow("one.test"), slow("two.test"));
    let deadline = std::time::Instant::now() + START_LIMIT;
    while host.stdout().matches("sleeping 1500 ms").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both requests reach their component"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &host.pid().to_string()])
        .status()
        .unwrap();
    for reply in [runtime.block_on(a), runtime.block_on(b)] {
        let reply = reply.unwrap().unwrap();
        assert_eq!(
            (reply.status, reply.text()),
            (200, "slept 1500\n".to_string())
        );
    }
    let run = host.wait(STOP_LIMIT).unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
}

/// The Host API over NATS, and heartbeats naming the host, its labels,
/// each workload's state, what its plugins serve and where routes go.
#[test]
fn the_nats_api_and_heartbeats() {
    use futures::StreamExt as _;
    let nats = harness::Nats::start().unwrap();
    let url = nats.url();
    let first = counter("one", "one.test", "one");
    let (host, _ops, _http) = serve(
        &first,
        &[
            "--control-url",
            &url,
            "--host-id",
            "edge-1",
            "--label",
            "zone=a",
            "--heartbeat-interval",
            "500ms",
        ],
    );
    rt().block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        let mut beats = client
            .subscribe("wasmhost.v1.edge-1.heartbeat")
            .await
            .unwrap();
        let ask = |op: &str, body: Value| {
            let client = client.clone();
            let subject = format!("wasmhost.v1.edge-1.workload.{op}");
            async move {
                let reply = client
                    .request(subject, body.to_string().into())
                    .await
                    .unwrap();
                serde_json::from_slice::<Value>(&reply.payload).unwrap()
            }
        };
        // A command routed over wRPC to a target that is not there: it
        // completes (exit 1), and its route shows in the heartbeat.
        let job = Workload::new("job")
            .component(Component::new("kv", KV_GUEST).config("SCENARIO", "counter"))
            .wrpc_entry(
                "interface: wasi:keyvalue\ntarget: tcp://127.0.0.1:9\ncheck: false\ntimeout: 2s",
            );
        let reply = ask("start", json!({ "workload": manifest(&job) })).await;
        assert_eq!(reply["status"], 201, "{reply}");
        let reply = ask("stop", json!({ "nome": "job" })).await;
        assert_eq!(reply["status"], 400, "{reply}");
        assert_eq!(reply["body"]["error"]["field"], "nome", "{reply}");
        let reply = ask("list", json!({})).await;
        assert_eq!(
            reply["body"]["workloads"].as_array().unwrap().len(),
            2,
            "{reply}"
        );

        let deadline = tokio::time::Instant::now() + START_LIMIT;
        let beat = loop {
            let msg = tokio::time::timeout_at(deadline, beats.next())
                .await
                .unwrap()
                .unwrap();
            let beat: Value = serde_json::from_slice(&msg.payload).unwrap();
            let job_done = beat["workloads"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["name"] == "job" && w["state"] == "completed");
            if job_done {
                break beat;
            }
        };
        assert_eq!(beat["host_id"], "edge-1");
        assert_eq!(beat["labels"]["zone"], "a");
        assert!(
            beat["version"].is_string() && beat["uptime_seconds"].is_u64(),
            "{beat}"
        );
        let states: Vec<(&str, &str)> = beat["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (w["name"].as_str().unwrap(), w["state"].as_str().unwrap()))
            .collect();
        assert_eq!(states, [("job", "completed"), ("one", "running")]);
        let job = beat["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "job")
            .unwrap();
        assert_eq!(
            job["exit_code"], 1,
            "the route's target is not there: {job}"
        );
        let plugins = beat["supports"]["plugins"].as_array().unwrap();
        let keyvalue = plugins.iter().find(|p| p["id"] == "keyvalue").unwrap();
        assert!(
            keyvalue["serves"].to_string().contains("wasi:keyvalue"),
            "{keyvalue}"
        );
        assert!(plugins.iter().any(|p| p["id"] == "http"), "{beat}");
        assert!(
            beat["supports"]["exports"]
                .to_string()
                .contains("wasi:http/incoming-handler"),
            "{beat}"
        );
        let routes = beat["supports"]["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 1, "{beat}");
        assert_eq!(routes[0]["workload"], "job");
        assert_eq!(routes[0]["target"], "tcp://127.0.0.1:9");
        let info = client
            .request("wasmhost.v1.edge-1.host.info", "".into())
            .await
            .unwrap();
        let info: Value = serde_json::from_slice(&info.payload).unwrap();
        assert_eq!(info["body"]["host_id"], "edge-1");
    });
    host.terminate(STOP_LIMIT).unwrap();
}

/// `host ctl`: a manifest file started over HTTP (its relative paths
/// resolved against its directory), then stopped over NATS; a failed
/// operation exits 1 with the error's JSON.
#[test]
fn host_ctl_starts_and_stops_over_http_and_nats() {
    let nats = harness::Nats::start().unwrap();
    let url = nats.url();
    let (host, ops, http) = serve(
        &counter("one", "one.test", "one"),
        &["--control-url", &url, "--host-id", "ctl-test"],
    );
    let dir = e2e::TempDir::new("ctl").unwrap();
    std::fs::copy(HTTP_COUNTER, dir.path().join("counter.wasm")).unwrap();
    let yaml = counter("two", "two.test", "two")
        .to_yaml()
        .replace(&format!("\"{HTTP_COUNTER}\""), "counter.wasm");
    assert!(yaml.contains("file: counter.wasm"), "{yaml}");
    let manifest = dir.path().join("two.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(harness::bin("host").unwrap())
            .arg("ctl")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = ctl(&["--api", &ops, "start", manifest.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"running\""), "{out}");
    assert_eq!(rt().block_on(hello(&http, "two.test")), "hello from two\n");
    let (code, out) = ctl(&["--api", &ops, "start", manifest.to_str().unwrap()]);
    assert_eq!(code, Some(1), "started twice: {out}");
    assert!(out.contains("\"exists\""), "{out}");
    let (code, out) = ctl(&["--nats", &url, "--host-id", "ctl-test", "stop", "two"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"stopped\""), "{out}");
    let (code, out) = ctl(&["--nats", &url, "--host-id", "ctl-test", "status", "two"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("\"not_found\""), "{out}");
    host.terminate(STOP_LIMIT).unwrap();
}
