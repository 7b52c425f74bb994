//! Containers on Podman (or Docker) for tests and benchmarks: run an image
//! on the machine's network, wait for its `ready`, read its announced
//! addresses, remove it when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a container may take to print `ready`.
pub const READY_WITHIN: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The command `podman ARGS` with the settings these machines need
/// (containers/containers.conf).
fn podman_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", repo().join("containers/containers.conf"))
        .args(args);
    cmd
}

/// Runs `podman ARGS` (see [`podman_command`]) and returns what it printed.
///
/// # Panics
///
/// Podman is not installed.
pub fn podman(args: &[&str]) -> Output {
    podman_command(args)
        .output()
        .expect("podman is installed (scripts/install.sh)")
}

/// Lets the images' non-root uid read `dir` and its files, and create
/// files (sockets) in `dir`.
///
/// # Errors
///
/// The permissions cannot be changed.
pub fn make_readable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
    for entry in std::fs::read_dir(dir)? {
        std::fs::set_permissions(entry?.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// Its standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails the caller unless `image` exists locally.
///
/// # Panics
///
/// The image is missing (with how to build it).
pub fn require_image(image: &str) {
    let out = podman(&["image", "exists", image]);
    assert!(
        out.status.success(),
        "image {image} is missing: run containers/build.sh first"
    );
}

/// A container, removed (forcibly) when dropped.
pub struct Container {
    /// Its name.
    pub name: String,
}

impl Container {
    /// `podman run -d` of `image` with `args`, on the machine's network,
    /// named `e2e-NAME-PID`; waits until it prints `ready`.
    ///
    /// # Panics
    ///
    /// The image is missing, the container does not start, or it exits or
    /// stays silent before `ready`.
    pub fn start(image: &str, name: &str, run_opts: &[&str], args: &[String]) -> Self {
        require_image(image);
        let name = format!("e2e-{name}-{}", std::process::id());
        let _ = podman(&["rm", "-f", &name]);
        let mut cmd: Vec<&str> = vec!["run", "-d", "--name", &name, "--network", "host"];
        // Health checks run through systemd timers, which these machines
        // lack; callers run the probe themselves (`exec … healthcheck`).
        cmd.extend(["--health-interval", "disable"]);
        cmd.extend(run_opts);
        cmd.push(image);
        cmd.extend(args.iter().map(String::as_str));
        let out = podman(&cmd);
        assert!(out.status.success(), "podman run: {out:?}");
        let container = Self { name };
        container.await_line("ready", READY_WITHIN);
        container
    }

    /// Its standard output so far (its log lines go to stderr).
    pub fn stdout(&self) -> String {
        let out = podman_command(&["logs", &self.name])
            .stderr(std::process::Stdio::null())
            .output()
            .expect("podman logs");
        stdout(&out)
    }

    /// Everything it wrote (stdout, then stderr).
    pub fn logs(&self) -> String {
        let out = podman(&["logs", &self.name]);
        format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr))
    }

    /// Waits until its stdout has the line `line`.
    ///
    /// # Panics
    ///
    /// It exits first, or `limit` passes.
    pub fn await_line(&self, line: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.stdout().lines().any(|l| l == line) {
                return;
            }
            assert!(self.running(), "{} exited: {}", self.name, self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not print `{line}`: {}", self.name, self.logs());
    }

    /// The last address it announced with `scheme` (`listening URL` lines).
    ///
    /// # Panics
    ///
    /// It announced none.
    pub fn address(&self, scheme: &str) -> String {
        let prefix = format!("listening {scheme}://");
        self.stdout()
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|a| format!("{scheme}://{a}"))
            .unwrap_or_else(|| panic!("no {scheme} address: {}", self.logs()))
    }

    /// Whether it is running.
    pub fn running(&self) -> bool {
        stdout(&podman(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            &self.name,
        ]))
        .trim()
            == "true"
    }

    /// The process id of its entrypoint, as the machine sees it.
    pub fn pid(&self) -> Option<u32> {
        stdout(&podman(&[
            "inspect",
            "--format",
            "{{.State.Pid}}",
            &self.name,
        ]))
        .trim()
        .parse()
        .ok()
        .filter(|p| *p != 0)
    }

    /// `podman exec NAME ARGS`.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut cmd = vec!["exec", self.name.as_str()];
        cmd.extend(args);
        podman(&cmd)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

/// An image's size in bytes, as the engine reports it.
pub fn image_size(image: &str) -> Option<u64> {
    stdout(&podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        image,
    ]))
    .trim()
    .parse()
    .ok()
}
