//! Credentials against a registry with htpasswd (bcrypt) basic auth.
//!
//! The tests that read `DOCKER_CONFIG` or `OCI_USERNAME`/`OCI_PASSWORD`
//! run their pull in a child process of this test binary with that
//! environment, so no test changes the environment of the others.

mod support;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use host_oci::{pull, push, Credentials, Error, Options};
use support::{component, options, write_file, Registry};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";
/// Set in a child process: the reference it pulls.
const CHILD_REFERENCE: &str = "HOST_OCI_TEST_CHILD_REFERENCE";
/// Set in a child process: its cache directory.
const CHILD_CACHE: &str = "HOST_OCI_TEST_CHILD_CACHE";

fn with_user(cache: &Path, registry: &Registry) -> Options {
    let mut opts = options(cache, registry);
    opts.credentials = Credentials::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    opts
}

/// Starts an auth registry and pushes a component with the right user.
async fn pushed(dir: &Path) -> (Registry, String, Vec<u8>) {
    let registry = Registry::start_with_user(USER, PASSWORD);
    let wasm = component();
    let file = write_file(dir, "c.wasm", &wasm);
    let reference = registry.reference("private/app:1");
    push(
        &file,
        &reference,
        &with_user(&dir.join("push-cache"), &registry),
    )
    .await
    .unwrap();
    (registry, reference, wasm)
}

/// In a child: pulls `CHILD_REFERENCE` with [`Credentials::Auto`] and checks
/// a Wasm component arrived; returns whether this process is a child.
async fn child_pull(insecure: &str) -> bool {
    let (Ok(reference), Ok(cache)) = (std::env::var(CHILD_REFERENCE), std::env::var(CHILD_CACHE))
    else {
        return false;
    };
    let mut opts = Options::new(cache);
    opts.insecure = vec![insecure.to_string()];
    assert!(matches!(opts.credentials, Credentials::Auto));
    let pulled = pull(&reference, &opts, |_| {}).await.unwrap();
    assert_eq!(pulled.bytes, component());
    true
}

/// Runs `test` in a child process with `env`, and checks it passed.
fn run_child(test: &str, reference: &str, cache: &Path, env: &[(&str, &str)]) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_REFERENCE, reference)
        .env(CHILD_CACHE, cache)
        .env_remove("DOCKER_CONFIG")
        .env_remove(host_oci::ENV_USERNAME)
        .env_remove(host_oci::ENV_PASSWORD)
        .env("HOME", cache); // no ~/.docker/config.json of the machine's
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test:\n{stdout}"
    );
}

#[tokio::test]
async fn anonymous_pull_from_an_auth_registry_is_unauthorized() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, reference, _) = pushed(dir.path()).await;
    let opts = options(&dir.path().join("cache"), &registry);
    let err = pull(&reference, &opts, |_| {}).await.unwrap_err();
    match &err {
        Error::Unauthorized {
            reference: r,
            registry: host,
            credentials,
        } => {
            assert_eq!(r, &reference);
            assert_eq!(host, &registry.addr);
            assert_eq!(credentials, "none");
        }
        other => panic!("expected Unauthorized, got {other}"),
    }
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn anonymous_push_to_an_auth_registry_is_unauthorized() {
    let registry = Registry::start_with_user(USER, PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "c.wasm", &component());
    let opts = options(&dir.path().join("cache"), &registry);
    let err = push(&file, &registry.reference("private/app:1"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
}

#[tokio::test]
async fn wrong_password_from_a_docker_config_is_unauthorized_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, reference, _) = pushed(dir.path()).await;
    let config = dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    let json = format!(
        r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
        registry.addr
    );
    std::fs::write(&config, json).unwrap();
    let mut opts = options(&dir.path().join("cache"), &registry);
    opts.credentials = Credentials::DockerConfig(config.clone());
    let err = pull(&reference, &opts, |_| {}).await.unwrap_err();
    match &err {
        Error::Unauthorized { credentials, .. } => {
            assert_eq!(credentials, &config.display().to_string())
        }
        other => panic!("expected Unauthorized, got {other}"),
    }
}

#[tokio::test]
async fn credentials_from_docker_config_in_docker_config_dir_pull() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(addr) = std::env::var_os("HOST_OCI_TEST_CHILD_INSECURE") {
        assert!(child_pull(addr.to_str().unwrap()).await);
        return;
    }
    let (registry, reference, _) = pushed(dir.path()).await;
    let docker_config = dir.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let json = format!(
        r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
        registry.addr
    );
    std::fs::write(docker_config.join("config.json"), json).unwrap();
    let cache = dir.path().join("cache");
    run_child(
        "credentials_from_docker_config_in_docker_config_dir_pull",
        &reference,
        &cache,
        &[
            ("DOCKER_CONFIG", docker_config.to_str().unwrap()),
            ("HOST_OCI_TEST_CHILD_INSECURE", &registry.addr),
        ],
    );
    assert!(
        cache.join("index.json").exists(),
        "the child pulled into the cache"
    );
}

#[tokio::test]
async fn credentials_from_oci_username_and_password_pull() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(addr) = std::env::var_os("HOST_OCI_TEST_CHILD_INSECURE") {
        assert!(child_pull(addr.to_str().unwrap()).await);
        return;
    }
    let (registry, reference, _) = pushed(dir.path()).await;
    let cache = dir.path().join("cache");
    run_child(
        "credentials_from_oci_username_and_password_pull",
        &reference,
        &cache,
        &[
            (host_oci::ENV_USERNAME, USER),
            (host_oci::ENV_PASSWORD, PASSWORD),
            ("HOST_OCI_TEST_CHILD_INSECURE", &registry.addr),
        ],
    );
    assert!(
        cache.join("index.json").exists(),
        "the child pulled into the cache"
    );
}
