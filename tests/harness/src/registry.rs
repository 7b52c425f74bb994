//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF
//! distribution server), started on 127.0.0.1 port 0 with a config file in a
//! temp dir; the bound port is read from its log ("listening on ADDR"), then
//! `/v2/` is polled until it answers.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the registry may take to come up.
const STARTUP: Duration = Duration::from_secs(30);
/// The interval between two readiness checks (a poll, bounded by [`STARTUP`]).
const POLL: Duration = Duration::from_millis(10);

/// A running `docker-registry`, killed on drop.
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The registry's storage root (its blobs are under `docker/registry/v2`).
    pub storage: PathBuf,
    log: PathBuf,
    _dir: crate::TempDir,
}

impl Registry {
    /// An open registry.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// A registry that requires HTTP basic auth with this user (bcrypt htpasswd).
    pub fn start_with_user(user: &str, password: &str) -> Self {
        Self::launch(Some((user, password)))
    }

    fn launch(user: Option<(&str, &str)>) -> Self {
        let bin = std::env::var("DOCKER_REGISTRY_BIN").unwrap_or("/usr/bin/docker-registry".into());
        assert!(
            Path::new(&bin).exists(),
            "{bin} is missing: scripts/install.sh installs Debian's docker-registry"
        );
        let dir = crate::TempDir::new("registry").unwrap();
        let storage = dir.path().join("data");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:0\n  secret: test-secret\n",
            storage.display()
        );
        if let Some((user, password)) = user {
            let hash = bcrypt::hash(password, 4).unwrap();
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut registry = Self {
            child: Some(child),
            addr: String::new(),
            storage,
            log,
            _dir: dir,
        };
        registry.addr = registry.wait_for(|log| {
            let rest = &log[log.find("listening on ")? + "listening on ".len()..];
            Some(rest.split(['"', ' ', '\n']).next()?.to_string())
        });
        let deadline = Instant::now() + STARTUP;
        while !v2_answers(&registry.addr) {
            registry.check_alive();
            assert!(
                Instant::now() < deadline,
                "/v2/ never answered:\n{}",
                registry.log()
            );
            std::thread::sleep(POLL);
        }
        registry
    }

    /// Polls the log until `find` finds something, within [`STARTUP`].
    fn wait_for(&mut self, find: impl Fn(&str) -> Option<String>) -> String {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(found) = find(&self.log()) {
                return found;
            }
            self.check_alive();
            assert!(
                Instant::now() < deadline,
                "registry did not start:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    fn check_alive(&mut self) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            panic!("registry exited ({status}):\n{}", self.log());
        }
    }

    /// Everything the registry logged (including its access log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many `GET` requests for blobs of `repo` the access log shows.
    pub fn blob_gets(&self, repo: &str) -> usize {
        let needle = format!("\"GET /v2/{repo}/blobs/");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }

    /// A reference in this registry.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// The file in the registry's storage that holds blob `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Kills the registry and waits for it to exit: nothing listens any more.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert!(!v2_answers(&self.addr), "registry still answers after stop");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `GET /v2/` gets an HTTP answer (200, or 401 with auth on).
fn v2_answers(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && (head.ends_with(b" 200") || head.ends_with(b" 401"))
}
