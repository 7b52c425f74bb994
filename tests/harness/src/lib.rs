//! Real servers for tests and benchmarks: `nats-server`, `redis-server`, an
//! S3-compatible server (moto), the project's extension binaries and the
//! `host`, killed on `Drop`.
//!
//! Servers bind their own ports and report them: `nats-server -p -1` logs its
//! port, extensions listen on `:0` and print `listening URL` lines, and
//! moto binds port 0 and logs its URL, `redis-server` (which cannot pick a
//! port) is retried on `EADDRINUSE` and
//! recognised by its own "Ready to accept connections" line, never by a
//! port that merely answers.
//!
//! Binaries are looked up next to the running test executable
//! (`target/<profile>/`), so build the workspace first (`cargo build --workspace`).

#[cfg(feature = "otlp")]
pub mod collector;
pub mod container;
pub mod fault;
#[cfg(feature = "registry")]
pub mod registry;
pub mod workload;

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    // Test executables live in target/<profile>/deps; binaries one level up.
    if dir.ends_with("deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of a workspace binary, or an error saying how to build it.
pub fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build --workspace` first",
            path.display()
        );
    }
    Ok(path)
}

/// A child process killed on drop.
struct Proc(Option<Child>);

impl Proc {
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }
}

/// A field of `/proc/PID/status` in KiB (e.g. `VmHWM`, the peak resident set).
pub fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Reads `child`'s stdout lines until `done` says so, within [`START_TIMEOUT`];
/// the lines read are returned and the rest of the output is drained in the
/// background so the child never blocks on a full pipe.
fn read_until(
    child: &mut Child,
    what: &str,
    mut done: impl FnMut(&str) -> bool + Send + 'static,
) -> anyhow::Result<Vec<String>> {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().context("stdout not piped")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if !sent {
                let finished = done(&line);
                seen.push(line);
                if finished {
                    let _ = tx.send(std::mem::take(&mut seen));
                    sent = true;
                }
            }
        }
        if !sent {
            let _ = tx.send(seen);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(lines) => return Ok(lines),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > deadline {
                    bail!("{what} did not start within {START_TIMEOUT:?}");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                bail!("{what} closed its output during start-up");
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `nats-server` on a port it picks itself (`-p -1`), read back from its log.
pub struct Nats {
    port: u16,
    args: Vec<String>,
    proc: Proc,
}

impl Nats {
    /// Starts it and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts it with extra arguments (e.g. `--auth TOKEN`, `-js`).
    pub fn start_with(args: &[&str]) -> anyhow::Result<Self> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (proc, port) = spawn_nats(&args, None)?;
        Ok(Self { port, args, proc })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.proc.kill();
        let (proc, _) = spawn_nats(&self.args, Some(self.port))?;
        self.proc = proc;
        Ok(())
    }
}

/// Starts `nats-server` on `port` (or one it picks) and returns it with its port,
/// read from the "Listening for client connections on" log line.
fn spawn_nats(args: &[String], port: Option<u16>) -> anyhow::Result<(Proc, u16)> {
    use std::io::BufRead as _;
    let port_arg = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
    let mut child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port_arg])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start nats-server (run scripts/install.sh)")?;
    let stderr = child.stderr.take().context("nats-server stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining the log so the server never blocks on a full pipe.
        let mut sent = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if !sent {
                if let Some(addr) = line.split("Listening for client connections on ").nth(1) {
                    let port = addr
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.trim().parse::<u16>().ok());
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        }
    });
    let mut proc = Proc(Some(child));
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(port)) => Ok((proc, port)),
        _ => {
            let status = proc.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
            bail!("nats-server did not report its port within {START_TIMEOUT:?} (exit: {status:?})")
        }
    }
}

/// A `redis-server` on a free port, without persistence; can be stopped and
/// started again on the same port.
pub struct Redis {
    port: u16,
    tls: Option<Tls>,
    proc: Proc,
}

/// Why a server did not start.
enum Start {
    AddrInUse,
    Failed(anyhow::Error),
}

/// Runs `openssl ARGS` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run openssl (run scripts/install.sh)")?;
    if !out.status.success() {
        bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A CA and a server certificate for 127.0.0.1, made with `openssl`.
pub struct Tls {
    dir: TempDir,
}

impl Tls {
    /// Generates a fresh CA and a server certificate signed by it.
    pub fn generate() -> anyhow::Result<Self> {
        let dir = TempDir::new("tls")?;
        let openssl = |args: &[&str]| openssl(&dir, args);
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ])?;
        let tls = Self { dir };
        tls.issue(
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        Ok(tls)
    }

    /// The CA certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The server certificate for 127.0.0.1 (PEM).
    pub fn cert_file(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// The server certificate's private key (PEM).
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// Issues a client certificate `NAME.crt`/`NAME.key` signed by the CA,
    /// with subject `subject` (e.g. `/CN=host-a/O=red`); returns the
    /// certificate and key files.
    pub fn client(&self, name: &str, subject: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        self.issue(
            name,
            subject,
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
    }

    /// A key and a certificate `NAME.key`/`NAME.crt` for `subject`, signed
    /// by the CA with the extensions `ext` (an openssl extfile).
    fn issue(&self, name: &str, subject: &str, ext: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let run = |args: &[&str]| openssl(&self.dir, args);
        let (key, csr, crt, cnf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.cnf"),
        );
        run(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ])?;
        std::fs::write(self.dir.join(&cnf), ext)?;
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &cnf,
        ])?;
        Ok((self.dir.join(crt), self.dir.join(key)))
    }
}

impl Redis {
    /// Starts it and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_on_some_port(None)
    }

    /// Starts one that accepts only TLS, with a certificate from `tls`.
    pub fn start_tls(tls: Tls) -> anyhow::Result<Self> {
        Self::start_on_some_port(Some(tls))
    }

    /// redis-server cannot pick its own port: try kernel-suggested ports
    /// until one binds (retrying on `EADDRINUSE`).
    fn start_on_some_port(tls: Option<Tls>) -> anyhow::Result<Self> {
        let mut redis = Self {
            port: 0,
            tls,
            proc: Proc(None),
        };
        for _ in 0..20 {
            redis.port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            match redis.spawn() {
                Ok(()) => return Ok(redis),
                Err(Start::AddrInUse) => continue,
                Err(Start::Failed(err)) => return Err(err),
            }
        }
        bail!("redis-server found no free port in 20 attempts")
    }

    /// Stops the server (its data is lost).
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.proc.kill();
        for _ in 0..50 {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(Start::AddrInUse) => sleep(Duration::from_millis(100)),
                Err(Start::Failed(err)) => return Err(err),
            }
        }
        bail!(
            "port {} stayed in use; redis-server could not restart",
            self.port
        )
    }

    fn spawn(&mut self) -> Result<(), Start> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(tls) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(tls.cert_file())
                .arg("--tls-key-file")
                .arg(tls.key_file())
                .arg("--tls-ca-cert-file")
                .arg(tls.ca_file())
                .args(["--tls-auth-clients", "no"]),
        };
        let mut child = cmd
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server (run scripts/install.sh)")
            .map_err(Start::Failed)?;
        let lines = read_until(&mut child, "redis-server", |l| {
            l.contains("Ready to accept connections") || l.contains("Address already in use")
        })
        .map_err(Start::Failed)?;
        if lines
            .iter()
            .any(|l| l.contains("Ready to accept connections"))
        {
            self.proc = Proc(Some(child));
            return Ok(());
        }
        let _ = child.kill();
        let _ = child.wait();
        if lines.iter().any(|l| l.contains("Address already in use")) {
            return Err(Start::AddrInUse);
        }
        Err(Start::Failed(anyhow::anyhow!(
            "redis-server did not start: {}",
            lines.join(" | ")
        )))
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://` when it speaks TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA that signed its certificate, when it speaks TLS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(Tls::ca_file)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// The path of a workspace example binary, or an error saying how to build it.
pub fn example(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join("examples").join(name);
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build --workspace --all-targets` first",
            path.display()
        );
    }
    Ok(path)
}

/// An extension binary serving on the endpoints it was given (ports `:0`
/// resolved to what it bound), started and ready.
pub struct Extension {
    addresses: Vec<String>,
    http: String,
    proc: Proc,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Extension {
    /// Starts the extension binary `name` with `args`, listening on each of
    /// `listen` (`tcp://127.0.0.1:0`, `unix:///…`, `ws://127.0.0.1:0/wrpc`,
    /// `wss://…`, `nats://…`), and waits until it is ready.
    pub fn start(name: &str, args: &[String], listen: &[String]) -> anyhow::Result<Self> {
        Self::start_at(&bin(name)?, args, listen)
    }

    /// Like [`Extension::start`], for the binary at `path`.
    pub fn start_at(path: &Path, args: &[String], listen: &[String]) -> anyhow::Result<Self> {
        Self::start_with_env(path, args, listen, &[])
    }

    /// Like [`Extension::start_at`], with extra environment variables (e.g.
    /// [`S3::env`]).
    pub fn start_with_env(
        path: &Path,
        args: &[String],
        listen: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut cmd = Command::new(path);
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .args(["--http-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for endpoint in listen {
            cmd.arg("--listen").arg(endpoint);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let log = capture_log(&mut child);
        let lines = match read_until(&mut child, &name, |l| l == "ready") {
            Ok(lines) => lines,
            Err(err) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                bail!("{err} (exit status: {status:?})");
            }
        };
        if lines.last().map(String::as_str) != Some("ready") {
            let status = child.wait()?;
            bail!("{name} exited during start-up: {status}");
        }
        let addresses: Vec<String> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("listening "))
            .map(str::to_string)
            .collect();
        let http = addresses
            .iter()
            .find_map(|a| a.strip_prefix("http://"))
            .context("no health endpoint announced")?
            .to_string();
        Ok(Self {
            addresses,
            http,
            proc: Proc(Some(child)),
            log,
        })
    }

    /// The log lines (stderr) it has written so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every address it announced (`http://…` first).
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The first announced address with `scheme` (`tcp`, `unix`, `ws`, `wss`, `nats`).
    pub fn address(&self, scheme: &str) -> Option<&str> {
        let prefix = format!("{scheme}://");
        self.addresses
            .iter()
            .find(|a| a.starts_with(&prefix))
            .map(String::as_str)
    }

    /// `host:port` of its TCP listener, if any.
    pub fn tcp_addr(&self) -> Option<&str> {
        self.address("tcp").and_then(|a| a.strip_prefix("tcp://"))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid().unwrap_or(0)
    }

    /// Its peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmHWM")
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc
            .0
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// `GET path` on the health endpoint: (status, body).
    pub fn http_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        http_get(&self.http, path)
    }

    /// `host:port` of its health endpoint.
    pub fn http_addr(&self) -> &str {
        &self.http
    }

    /// Kills it with SIGKILL (no drain) and reaps it.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.proc.0.take().context("already stopped")?;
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        wait_timeout(&mut child, Duration::from_secs(30))?
            .context("extension did not exit within 30s of SIGTERM")
    }
}

/// `GET path` from the HTTP endpoint at `addr` (`host:port`), closing the
/// connection after the answer: (status, body).
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP response")?;
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((status, body))
}

/// The value of the Prometheus sample `name{labels}` in `text` (labels in
/// any order; every given pair must match), or 0 when there is none.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Collects `child`'s stderr lines (and passes them on to ours, so test
/// output still shows them).
fn capture_log(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead as _;
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    if let Some(stderr) = child.stderr.take() {
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("{line}");
                if let Ok(mut log) = sink.lock() {
                    log.push(line);
                }
            }
        });
    }
    log
}

/// What a finished `host run` printed and returned.
#[derive(Debug)]
pub struct HostRun {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output (the guests' output).
    pub stdout: String,
    /// Standard error (the host's errors and logs).
    pub stderr: String,
}

/// Writes `manifest` and `component` into a fresh directory and runs
/// `host run` on it with `args`, killing it after `limit`.
pub fn run_host(
    manifest: &str,
    component: &Path,
    args: &[&str],
    limit: Duration,
) -> anyhow::Result<HostRun> {
    run_host_at(&bin("host")?, manifest, component, args, limit)
}

/// Like [`run_host`], with the host binary at `host` instead of the
/// workspace's (e.g. another build's, to compare the two).
pub fn run_host_at(
    host: &Path,
    manifest: &str,
    component: &Path,
    args: &[&str],
    limit: Duration,
) -> anyhow::Result<HostRun> {
    spawn_host_at(host, manifest, component, args)?.wait(limit)
}

/// Like [`run_host`], without waiting: the host runs while the caller acts.
pub fn spawn_host(manifest: &str, component: &Path, args: &[&str]) -> anyhow::Result<HostProcess> {
    spawn_host_with_env(manifest, component, args, &[])
}

/// Like [`spawn_host`], with the host binary at `host` instead of the
/// workspace's.
pub fn spawn_host_at(
    host: &Path,
    manifest: &str,
    component: &Path,
    args: &[&str],
) -> anyhow::Result<HostProcess> {
    spawn_host_with_env_at(host, manifest, component, args, &[])
}

/// Like [`spawn_host`], with extra environment variables.
pub fn spawn_host_with_env(
    manifest: &str,
    component: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<HostProcess> {
    spawn_host_with_env_at(&bin("host")?, manifest, component, args, env)
}

/// Like [`spawn_host_with_env`], with the host binary at `host` instead of
/// the workspace's.
pub fn spawn_host_with_env_at(
    host: &Path,
    manifest: &str,
    component: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<HostProcess> {
    if !host.exists() {
        bail!("host binary {} not found", host.display());
    }
    let dir = TempDir::new("workload")?;
    std::fs::copy(component, dir.join("guest.wasm")).context("copy component")?;
    spawn_host_in(dir, &[host.into(), "run".into()], manifest, args, env)
}

/// Writes `manifest` (whose component files are absolute paths) into a
/// fresh directory and starts `host run` on it with `args` and `env`.
pub fn spawn_host_manifest(
    manifest: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<HostProcess> {
    let command = [bin("host")?.into(), "run".into()];
    spawn_host_in(TempDir::new("workload")?, &command, manifest, args, env)
}

/// Like [`spawn_host_manifest`], running `command` (a program and its first
/// arguments, given the manifest's path next) instead of `host run`.
pub fn spawn_manifest_with(
    command: &[std::ffi::OsString],
    manifest: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<HostProcess> {
    spawn_host_in(TempDir::new("workload")?, command, manifest, args, env)
}

/// Starts `host serve MANIFEST ARGS…` (the manifest its first workload;
/// `args` may hold global flags too), without waiting.
///
/// # Errors
///
/// The host cannot be started.
pub fn spawn_serve(
    manifest: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<HostProcess> {
    let command = [bin("host")?.into(), "serve".into()];
    spawn_manifest_with(&command, manifest, args, env)
}

fn spawn_host_in(
    dir: TempDir,
    command: &[std::ffi::OsString],
    manifest: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<HostProcess> {
    let path = dir.join("workload.yaml");
    std::fs::write(&path, manifest)?;
    let (program, first) = command.split_first().context("no program to run")?;
    let mut child = Command::new(program)
        .args(first)
        .arg(&path)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", Path::new(program).display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&seen);
    let out = std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(mut seen) = sink.lock() {
                seen.push_str(&line);
                seen.push('\n');
            }
        }
    });
    let seen_err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err_sink = std::sync::Arc::clone(&seen_err);
    let err = std::thread::spawn(move || {
        let mut buf = [0; 4096];
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut seen) = err_sink.lock() {
                        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }
        }
        err_sink.lock().map(|s| s.clone()).unwrap_or_default()
    });
    Ok(HostProcess {
        child,
        _dir: dir,
        seen,
        seen_err,
        out: Some(out),
        err: Some(err),
    })
}

/// A running `host run`.
pub struct HostProcess {
    child: Child,
    /// The manifest's directory, removed with it.
    _dir: TempDir,
    /// Its standard output so far.
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    out: Option<std::thread::JoinHandle<()>>,
    err: Option<std::thread::JoinHandle<String>>,
    /// Its standard error so far.
    seen_err: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HostProcess {
    /// Waits for it to finish (killing it after `limit`) and returns what it did.
    pub fn wait(mut self, limit: Duration) -> anyhow::Result<HostRun> {
        let status = wait_timeout(&mut self.child, limit)?;
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            bail!("host did not finish within {limit:?} (hang)");
        };
        if let Some(out) = self.out.take() {
            let _ = out.join();
        }
        Ok(HostRun {
            code: status.code(),
            stdout: self.seen.lock().map(|s| s.clone()).unwrap_or_default(),
            stderr: self
                .err
                .take()
                .and_then(|e| e.join().ok())
                .unwrap_or_default(),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Like [`HostProcess::wait`], also sampling its peak resident set
    /// (`VmHWM`) every 10 ms: the last sample before it exits, in KiB.
    pub fn wait_with_peak_rss(mut self, limit: Duration) -> anyhow::Result<(HostRun, u64)> {
        let pid = self.pid();
        let deadline = Instant::now() + limit;
        let mut peak = 0;
        while self.child.try_wait()?.is_none() && Instant::now() < deadline {
            if let Ok(kib) = proc_status_kib(pid, "VmHWM") {
                peak = peak.max(kib);
            }
            sleep(Duration::from_millis(10));
        }
        let run = self.wait(Duration::from_secs(1))?;
        Ok((run, peak))
    }

    /// Its standard output so far.
    pub fn stdout(&self) -> String {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until its standard output contains `text` (within `limit`).
    pub fn await_stdout(&self, text: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.seen.lock().is_ok_and(|s| s.contains(text)) {
                return Ok(());
            }
            sleep(Duration::from_millis(20));
        }
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        bail!("the host did not print `{text}` within {limit:?}; it printed: {seen}")
    }

    /// Waits until its standard error contains `text` (within `limit`).
    pub fn await_stderr(&self, text: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.seen_err.lock().is_ok_and(|s| s.contains(text)) {
                return Ok(());
            }
            sleep(Duration::from_millis(20));
        }
        let seen = self.seen_err.lock().map(|s| s.clone()).unwrap_or_default();
        bail!("the host did not log `{text}` within {limit:?}; it logged: {seen}")
    }

    /// `host:port` of its health endpoint (`--http-addr`), once it printed it.
    pub fn http_addr(&self, limit: Duration) -> anyhow::Result<String> {
        self.await_stdout("listening http://", limit)?;
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        seen.lines()
            .find_map(|l| l.strip_prefix("listening http://"))
            .map(str::to_string)
            .context("no `listening http://` line")
    }

    /// `host:port` of its HTTP listener (`--http-listen`), once it printed it.
    pub fn http_listen(&self, limit: Duration) -> anyhow::Result<String> {
        self.await_stdout("serving HTTP on http://", limit)?;
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        seen.lines()
            .find_map(|l| l.strip_prefix("serving HTTP on http://"))
            .map(str::to_string)
            .context("no `serving HTTP on http://` line")
    }

    /// Waits until it serves its exports (`ready` on stdout) and returns the
    /// address each is served at, from its `serving INTERFACE at ADDR` lines.
    pub fn await_exports(&self, limit: Duration) -> anyhow::Result<Vec<(String, String)>> {
        self.await_stdout("ready\n", limit)?;
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        Ok(seen
            .lines()
            .filter_map(|l| l.strip_prefix("serving "))
            .filter_map(|l| l.split_once(" at "))
            .map(|(i, a)| (i.to_string(), a.to_string()))
            .collect())
    }

    /// Sends SIGTERM and waits (at most `limit`) for it to drain and exit.
    pub fn terminate(self, limit: Duration) -> anyhow::Result<HostRun> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        self.wait(limit)
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        sleep(Duration::from_millis(10));
    }
}

/// A new empty directory under the system temp dir, removed (with what it
/// holds) when dropped: the one temporary-directory helper of the tests
/// and benchmarks. It dereferences to its path.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory named after `tag`, this process and a counter.
    ///
    /// # Errors
    ///
    /// It cannot be created.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wrpc-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An S3-compatible server (moto in server mode, from PyPI: `scripts/install.sh`),
/// in memory, on a port it picks itself; can be stopped and started again
/// on the same port (its data is then gone).
pub struct S3 {
    port: u16,
    proc: Proc,
}

impl S3 {
    /// Access key the server accepts (moto accepts any; the extension needs one).
    pub const ACCESS_KEY: &'static str = "testing";
    /// Secret key to go with [`S3::ACCESS_KEY`].
    pub const SECRET_KEY: &'static str = "testing";

    /// Starts it and waits until it answers.
    pub fn start() -> anyhow::Result<Self> {
        let (proc, port) = spawn_moto(None)?;
        Ok(Self { port, proc })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid().unwrap_or(0)
    }

    /// The flags that point `blobstore-s3` at this server.
    pub fn args(&self) -> Vec<String> {
        vec!["--s3-endpoint".into(), self.url(), "--s3-path-style".into()]
    }

    /// The environment that gives `blobstore-s3` (or any AWS SDK) credentials.
    pub fn env() -> [(&'static str, &'static str); 3] {
        [
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY),
            ("AWS_REGION", "us-east-1"),
        ]
    }

    /// An aws-sdk-s3 configuration for this server with the test
    /// credentials: plain HTTP, path-style, checksums only where required.
    #[cfg(feature = "s3-client")]
    pub fn sdk_config(&self, name: &'static str) -> aws_sdk_s3::Config {
        use aws_sdk_s3::config::{
            BehaviorVersion, Builder, Credentials, Region, RequestChecksumCalculation,
            ResponseChecksumValidation,
        };
        let creds = Credentials::new(Self::ACCESS_KEY, Self::SECRET_KEY, None, None, name);
        Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.url())
            .force_path_style(true)
            .credentials_provider(creds)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build()
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Starts it again on the same port (empty).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.proc.kill();
        for _ in 0..50 {
            match spawn_moto(Some(self.port)) {
                Ok((proc, _)) => {
                    self.proc = proc;
                    return Ok(());
                }
                Err(err) if format!("{err:#}").contains("in use") => {
                    sleep(Duration::from_millis(100));
                }
                Err(err) => return Err(err),
            }
        }
        bail!("port {} stayed in use; moto could not restart", self.port)
    }
}

/// Starts `python3 -m moto.server` on `port` (or one it picks) and returns it
/// with its port, read from its "Running on http://127.0.0.1:PORT" line.
fn spawn_moto(port: Option<u16>) -> anyhow::Result<(Proc, u16)> {
    use std::io::BufRead as _;
    let port_arg = port.unwrap_or(0).to_string();
    let mut child = Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port_arg])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start python3 -m moto.server (run scripts/install.sh)")?;
    let stderr = child.stderr.take().context("moto stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining the log (one line per request) so moto never blocks.
        let mut sent = false;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if sent {
                continue;
            }
            if let Some(url) = line.split("Running on http://").nth(1) {
                let port = url
                    .trim()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
                let _ = tx.send(port.ok_or_else(|| line.clone()));
                sent = true;
            } else if line.contains("Address already in use") {
                let _ = tx.send(Err("address in use".to_string()));
                sent = true;
            } else {
                seen.push(line);
            }
        }
        if !sent {
            let _ = tx.send(Err(seen.join(" | ")));
        }
    });
    let mut proc = Proc(Some(child));
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Ok(port)) => Ok((proc, port)),
        Ok(Err(why)) => {
            proc.kill();
            bail!("moto did not start: {why}")
        }
        Err(_) => {
            proc.kill();
            bail!("moto did not report its port within {START_TIMEOUT:?}")
        }
    }
}
