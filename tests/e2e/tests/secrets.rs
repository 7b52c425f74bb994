//! No credential reaches a log line, an error message or `--help`.
//!
//! Each run below uses every kind of credential the project takes (NATS
//! token inline and from the environment, NATS user/password from the
//! environment, a Redis password in its URL, S3 keys from the AWS variables,
//! an OTLP authorization header, the Host API token, TLS private keys), with
//! debug logs on, on the paths that succeed and on those that fail (a wrong
//! token, a wrong Redis password, a wrong Host API token). Every line every
//! process wrote, and every error a caller got back, is collected and
//! searched for each secret.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use e2e::KV_GUEST;
use harness::workload::{Component, Workload};
use harness::{Extension, Nats, Redis, Tls, S3};

const LIMIT: Duration = Duration::from_secs(60);

const NATS_TOKEN: &str = "natstok-Zq81xV";
const NATS_PASSWORD: &str = "natspw-Kd93mA";
const REDIS_PASSWORD: &str = "redispw-Pw55nR";
const WRONG_TOKEN: &str = "wrongtok-Yt27cL";
const WRONG_REDIS: &str = "wrongredis-Hb61sQ";
const S3_SECRET: &str = "s3secret-Jm48wE";
const OTLP_TOKEN: &str = "otlptok-Fa19uG";
const CONTROL_TOKEN: &str = "ctltok-Rn72pB";
const WRONG_CONTROL: &str = "wrongctl-Vs36kD";

/// Everything the processes of a run said, and the secrets it must not contain.
#[derive(Default)]
struct Transcript {
    texts: Vec<(String, String)>,
    secrets: Vec<String>,
}

impl Transcript {
    fn add(&mut self, source: &str, text: impl Into<String>) {
        self.texts.push((source.to_string(), text.into()));
    }

    fn check(&self) {
        assert!(!self.secrets.is_empty() && !self.texts.is_empty());
        for (source, text) in &self.texts {
            for secret in &self.secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{source} shows a secret ({secret}):\n{text}"
                );
            }
        }
    }
}

/// The environment of every process: debug logs, and traces exported with an
/// authorization header to a collector that is not there (so the exporter
/// fails and says so).
fn noisy_env() -> Vec<(&'static str, String)> {
    vec![
        ("RUST_LOG", "debug".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("authorization=Bearer%20{OTLP_TOKEN}"),
        ),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn require_redis_password(redis: &Redis) {
    let out = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port().to_string(),
            "CONFIG",
            "SET",
            "requirepass",
        ])
        .arg(REDIS_PASSWORD)
        .output()
        .expect("redis-cli (scripts/install.sh)");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

fn counter(name: &str) -> Workload {
    Workload::new(name).namespace("tests").component(
        Component::new("api", KV_GUEST)
            .config("SCENARIO", "counter")
            .config("BUCKET", "b"),
    )
}

#[test]
fn credentials_never_reach_logs_errors_or_help() {
    let mut seen = Transcript::default();
    let tls = Tls::generate().unwrap();
    let key_pem = std::fs::read_to_string(tls.key_file()).unwrap();
    // A line of the private key's base64 body stands for its contents.
    let key_line = key_pem.lines().nth(2).unwrap().to_string();
    seen.secrets = [
        NATS_TOKEN,
        NATS_PASSWORD,
        REDIS_PASSWORD,
        WRONG_TOKEN,
        WRONG_REDIS,
        S3_SECRET,
        OTLP_TOKEN,
        CONTROL_TOKEN,
        WRONG_CONTROL,
        &key_line,
    ]
    .map(str::to_string)
    .to_vec();

    let by_token = Nats::start_with(&["--auth", NATS_TOKEN]).unwrap();
    let by_password = Nats::start_with(&["--user", "svc", "--pass", NATS_PASSWORD]).unwrap();
    let redis = Redis::start().unwrap();
    require_redis_password(&redis);
    let mut env = noisy_env();
    env.push(("KV_NATS_PASSWORD", NATS_PASSWORD.into()));
    env.push((
        "REDIS_URL",
        format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", redis.port()),
    ));
    env.push((
        "WRPC_NATS_URL",
        format!("nats://{NATS_TOKEN}@127.0.0.1:{}", by_token.port()),
    ));
    let kv = Extension::start_with_env(
        &harness::bin("keyvalue-redis").unwrap(),
        &[],
        &[
            format!(
                "nats://svc@127.0.0.1:{}?password_env=KV_NATS_PASSWORD",
                by_password.port()
            ),
            format!(
                "tcp://127.0.0.1:0?tls_cert={}&tls_key={}",
                tls.cert_file().display(),
                tls.key_file().display()
            ),
        ],
        &borrowed(&env),
    )
    .unwrap();

    // Calls that work, over the token, the password from the environment,
    // and TLS.
    let mut host_env = noisy_env();
    host_env.push(("HOST_NATS_TOKEN", NATS_TOKEN.into()));
    host_env.push(("HOST_NATS_PASSWORD", NATS_PASSWORD.into()));
    let tcp = kv.address("tcp").unwrap().split('?').next().unwrap();
    for (name, target) in [
        (
            "inline-token",
            format!("nats://{NATS_TOKEN}@127.0.0.1:{}", by_token.port()),
        ),
        (
            "token-env",
            format!(
                "nats://127.0.0.1:{}?token_env=HOST_NATS_TOKEN",
                by_token.port()
            ),
        ),
        (
            "password-env",
            format!(
                "nats://svc@127.0.0.1:{}?password_env=HOST_NATS_PASSWORD",
                by_password.port()
            ),
        ),
        ("tls", format!("{tcp}?tls_ca={}", tls.ca_file().display())),
    ] {
        let run = counter(name)
            .route("wasi:keyvalue", &target, "")
            .spawn(&[], &borrowed(&host_env))
            .unwrap()
            .wait(LIMIT)
            .unwrap();
        assert_eq!(run.code, Some(0), "{name}: {run:#?}");
        assert!(run.stdout.contains("visit number"), "{name}: {run:#?}");
        seen.add(&format!("host run ({name}) stdout"), run.stdout);
        seen.add(&format!("host run ({name}) stderr"), run.stderr);
    }

    // A wrong token: the host fails, naming the target without the token.
    let wrong = counter("wrong-token")
        .route(
            "wasi:keyvalue",
            &format!("nats://{WRONG_TOKEN}@127.0.0.1:{}", by_token.port()),
            "",
        )
        .spawn(&[], &borrowed(&host_env))
        .unwrap()
        .wait(LIMIT)
        .unwrap();
    assert_ne!(wrong.code, Some(0), "{wrong:#?}");
    assert!(wrong.stderr.contains("***@127.0.0.1"), "{wrong:#?}");
    seen.add("host run (wrong token) stderr", wrong.stderr);

    // A wrong Redis password: every call fails with Redis's refusal.
    let mut bad_env = noisy_env();
    bad_env.push((
        "REDIS_URL",
        format!("redis://:{WRONG_REDIS}@127.0.0.1:{}", redis.port()),
    ));
    let bad_kv = Extension::start_with_env(
        &harness::bin("keyvalue-redis").unwrap(),
        &["--redis-timeout".into(), "1s".into()],
        &["tcp://127.0.0.1:0".into()],
        &borrowed(&bad_env),
    )
    .unwrap();
    let refused = counter("wrong-redis")
        .route("wasi:keyvalue", bad_kv.address("tcp").unwrap(), "")
        .spawn(&[], &borrowed(&host_env))
        .unwrap()
        .wait(LIMIT)
        .unwrap();
    assert_ne!(refused.code, Some(0), "{refused:#?}");
    seen.add("host run (wrong redis) stdout", refused.stdout);
    seen.add("host run (wrong redis) stderr", refused.stderr);
    let (status, body) = bad_kv.http_get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    seen.add("keyvalue-redis (wrong password) /readyz", body);

    // blobstore-s3 with S3 keys from the environment checks the bucket store.
    let s3 = S3::start().unwrap();
    let mut s3_env = noisy_env();
    s3_env.push(("AWS_ACCESS_KEY_ID", S3::ACCESS_KEY.into()));
    s3_env.push(("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()));
    s3_env.push(("AWS_REGION", "us-east-1".into()));
    let blob = Extension::start_with_env(
        &harness::bin("blobstore-s3").unwrap(),
        &s3.args(),
        &["tcp://127.0.0.1:0".into()],
        &borrowed(&s3_env),
    )
    .unwrap();
    let (status, body) = blob.http_get("/readyz").unwrap();
    assert_eq!(status, 200, "{body}");

    // The Host API with a token: a wrong one is refused without echoing either.
    let mut serve_env = noisy_env();
    serve_env.push(("HOST_CONTROL_TOKEN", CONTROL_TOKEN.into()));
    let serve = harness::spawn_serve(
        &counter("served").host("wasi:keyvalue").to_yaml(),
        &["--http-addr", "127.0.0.1:0"],
        &borrowed(&serve_env),
    )
    .unwrap();
    let api = serve.http_addr(LIMIT).unwrap();
    let (status, body) = request(&api, WRONG_CONTROL);
    assert_eq!(status, 401, "{body}");
    seen.add("Host API answer (wrong token)", body);
    let (status, body) = request(&api, CONTROL_TOKEN);
    assert_eq!(status, 200, "{body}");
    seen.add("Host API answer", body);
    let served = serve.terminate(LIMIT).unwrap();
    seen.add("host serve stdout", served.stdout);
    seen.add("host serve stderr", served.stderr);

    for (name, ext) in [
        ("keyvalue-redis", kv),
        ("keyvalue-redis (wrong password)", bad_kv),
        ("blobstore-s3", blob),
    ] {
        let log = ext.log().join("\n");
        assert!(log.contains("DEBUG"), "{name} logged at debug level: {log}");
        seen.add(&format!("{name} log"), log);
    }

    // `--help` never prints the values of variables that carry secrets.
    for (binary, var, value) in [
        (
            "keyvalue-redis",
            "REDIS_URL",
            format!("redis://:{REDIS_PASSWORD}@h:1"),
        ),
        (
            "keyvalue-redis",
            "WRPC_NATS_URL",
            format!("nats://{NATS_TOKEN}@h:1"),
        ),
        (
            "messaging-nats",
            "MESSAGING_NATS_URL",
            format!("nats://{NATS_TOKEN}@h:1"),
        ),
        (
            "host",
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("authorization={OTLP_TOKEN}"),
        ),
    ] {
        let mut cmd = Command::new(harness::bin(binary).unwrap());
        if binary == "host" {
            cmd.arg("serve");
        }
        let out = cmd.arg("--help").env(var, &value).output().unwrap();
        assert!(out.status.success());
        seen.add(
            &format!("{binary} --help with {var}"),
            String::from_utf8_lossy(&out.stdout),
        );
    }
    for (args, var) in [
        (["serve", "--help"], "HOST_CONTROL_TOKEN"),
        (["ctl", "--help"], "HOST_CONTROL_TOKEN"),
    ] {
        let out = Command::new(harness::bin("host").unwrap())
            .args(args)
            .env(var, CONTROL_TOKEN)
            .output()
            .unwrap();
        seen.add(
            &format!("host {args:?} with {var}"),
            String::from_utf8_lossy(&out.stdout),
        );
    }
    // A credential on a command line, where `ps` shows it, is refused
    // before anything starts, and the refusal does not repeat it.
    for (binary, args) in [
        (
            "keyvalue-redis",
            vec![
                "--redis-url".to_string(),
                format!("redis://:{REDIS_PASSWORD}@127.0.0.1:1"),
            ],
        ),
        (
            "messaging-nats",
            vec![format!("--nats-url=nats://{NATS_TOKEN}@127.0.0.1:1")],
        ),
        (
            "host",
            vec![
                "run".to_string(),
                "w.yaml".to_string(),
                "--wrpc-target".to_string(),
                format!("nats://svc:{NATS_PASSWORD}@127.0.0.1:1"),
            ],
        ),
        (
            "wrpc-ext",
            vec![
                "describe".to_string(),
                format!("nats://{NATS_TOKEN}@127.0.0.1:1"),
            ],
        ),
    ] {
        let out = Command::new(harness::bin(binary).unwrap())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{binary}: {stderr}");
        assert!(
            stderr.contains("puts a credential on the command line") && stderr.contains("***"),
            "{binary}: {stderr}"
        );
        seen.add(&format!("{binary} refusing its command line"), stderr);
    }
    seen.check();
}

/// `GET /v1/workloads` with a bearer token; the status and the body.
fn request(addr: &str, token: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "GET /v1/workloads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}
