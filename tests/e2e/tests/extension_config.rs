//! An extension with unusable configuration exits non-zero at once, saying why
//! in one line, before serving anything.

use std::process::Command;

fn keyvalue_redis(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(harness::bin("keyvalue-redis").unwrap())
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A usage error (exit 2, as clap's), not a runtime failure.
#[test]
fn no_transport_is_refused() {
    let (code, stderr) = keyvalue_redis(&["--http-addr", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "keyvalue-redis: nothing to serve on: pass --nats-url and/or --listen (tcp://, unix://, ws://, wss:// or nats://)"
    );
}

#[test]
fn unreachable_nats_is_reported() {
    // Port 1: nothing listens there on these machines.
    let url = "nats://127.0.0.1:1".to_string();
    let (code, stderr) = keyvalue_redis(&["--http-addr", "127.0.0.1:0", "--nats-url", &url]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr
            .trim()
            .starts_with(&format!("keyvalue-redis: cannot connect to NATS at {url}"))
            && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn malformed_listen_address_is_a_usage_error() {
    let (code, stderr) = keyvalue_redis(&["--listen", "udp://127.0.0.1:1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unsupported scheme"), "{stderr}");
}

#[test]
fn help_lists_every_flag_with_its_environment_variable() {
    let out = Command::new(harness::bin("keyvalue-redis").unwrap())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for env in [
        "WRPC_NATS_URL",
        "WRPC_PREFIX",
        "WRPC_QUEUE_GROUP",
        "WRPC_LISTEN",
        "WRPC_HTTP_ADDR",
        "WRPC_MAX_CONCURRENCY",
        "WRPC_SHUTDOWN_GRACE",
        "LOG_FORMAT",
        "REDIS_URL",
        "REDIS_CA_FILE",
        "REDIS_TIMEOUT",
        "KV_KEY_PREFIX",
        "KV_ISOLATE_NAMESPACES",
        "KV_SCAN_COUNT",
    ] {
        assert!(
            help.contains(&format!("[env: {env}")),
            "--help lacks {env}:\n{help}"
        );
    }
}
