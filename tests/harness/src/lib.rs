//! Real servers for tests and benchmarks: `nats-server`, `redis-server`, the
//! project's extension binaries and the `host`, each on a free loopback port
//! and killed on `Drop`.
//!
//! Binaries are looked up next to the running test executable
//! (`target/<profile>/`), so build the workspace first (`cargo build --workspace`).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on loopback")
}

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

fn wait_for_port(port: u16, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited during start-up: {status}");
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on port {port} within {START_TIMEOUT:?}");
        }
        sleep(Duration::from_millis(20));
    }
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

/// A CA and a server certificate for 127.0.0.1, made with `openssl`.
pub struct Tls {
    dir: PathBuf,
}

impl Tls {
    /// Generates a fresh CA and a server certificate signed by it.
    pub fn generate() -> anyhow::Result<Self> {
        let dir = temp_dir("tls")?;
        let openssl = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .context("cannot run openssl (run scripts/install.sh)")?;
            if !out.status.success() {
                bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
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
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ])?;
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ])?;
        Ok(Self { dir })
    }

    /// The CA certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Redis {
    /// Starts it and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let mut redis = Self {
            port: free_port(),
            tls: None,
            proc: Proc(None),
        };
        redis.restart()?;
        Ok(redis)
    }

    /// Starts one that accepts only TLS, with a certificate from `tls`.
    pub fn start_tls(tls: Tls) -> anyhow::Result<Self> {
        let mut redis = Self {
            port: free_port(),
            tls: Some(tls),
            proc: Proc(None),
        };
        redis.restart()?;
        Ok(redis)
    }

    /// Stops the server (its data is lost).
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.proc.kill();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(tls) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(tls.dir.join("server.crt"))
                .arg("--tls-key-file")
                .arg(tls.dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(tls.ca_file())
                .args(["--tls-auth-clients", "no"]),
        };
        let mut child = cmd
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server (run scripts/install.sh)")?;
        wait_for_port(self.port, &mut child, "redis-server")?;
        self.proc = Proc(Some(child));
        Ok(())
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

/// An extension binary serving on NATS and/or a TCP port, ready once its
/// `/readyz` answers 200.
pub struct Extension {
    tcp_port: Option<u16>,
    http_port: u16,
    proc: Proc,
}

impl Extension {
    /// Starts the extension binary `name` with `args`, on NATS at `nats`
    /// (if given) and on a fresh TCP port (if `tcp`), and waits until ready.
    pub fn start(
        name: &str,
        args: &[String],
        nats: Option<&str>,
        tcp: bool,
    ) -> anyhow::Result<Self> {
        Self::start_at(&bin(name)?, args, nats, tcp)
    }

    /// Like [`Extension::start`], for the binary at `path`.
    pub fn start_at(
        path: &Path,
        args: &[String],
        nats: Option<&str>,
        tcp: bool,
    ) -> anyhow::Result<Self> {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let name = name.as_str();
        let http_port = free_port();
        let tcp_port = tcp.then(free_port);
        let mut cmd = Command::new(path);
        cmd.args(args)
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = nats {
            cmd.arg("--nats-url").arg(url);
        }
        if let Some(port) = tcp_port {
            cmd.arg("--listen").arg(format!("tcp://127.0.0.1:{port}"));
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let mut ext = Self {
            tcp_port,
            http_port,
            proc: Proc(Some(child)),
        };
        ext.wait_ready(name)?;
        Ok(ext)
    }

    fn wait_ready(&mut self, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self
                .http_get("/readyz")
                .is_ok_and(|(status, _)| status == 200)
            {
                return Ok(());
            }
            if let Some(child) = self.proc.0.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("{name} exited during start-up: {status}");
                }
            }
            if Instant::now() > deadline {
                bail!("{name} was not ready within {START_TIMEOUT:?}");
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on the health endpoint: (status, body).
    pub fn http_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n")?;
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

    /// `tcp://127.0.0.1:PORT`, if it serves TCP.
    pub fn tcp_target(&self) -> Option<String> {
        self.tcp_port.map(|p| format!("tcp://127.0.0.1:{p}"))
    }

    /// Its TCP port, if it serves TCP.
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
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
    let dir = temp_dir("workload")?;
    std::fs::copy(component, dir.join("guest.wasm")).context("copy component")?;
    let path = dir.join("workload.yaml");
    std::fs::write(&path, manifest)?;
    let mut child = Command::new(bin("host")?)
        .arg("run")
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_timeout(&mut child, limit)?;
    let _ = std::fs::remove_dir_all(&dir);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("host did not finish within {limit:?} (hang)");
    };
    Ok(HostRun {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
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

/// A new empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> anyhow::Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wrpc-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
