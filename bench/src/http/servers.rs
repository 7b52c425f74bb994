//! The servers under load and the cold starts: each a child process
//! (`bench http-hello`, `host run`, `wasmtime serve`, `host serve`).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use harness::workload::{Component, Workload};
use harness::TempDir;

use super::client::once;

/// How `wasmtime serve` is installed when it is missing.
const INSTALL: &str = "cargo install wasmtime-cli@48 --locked";
/// The longest a server may take to come up.
const LIMIT: Duration = Duration::from_secs(120);

/// A server under load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Server {
    /// `bench http-hello`.
    Floor,
    /// `host run`, `pool` instances made ahead.
    Host { pool: usize },
    /// `wasmtime serve`.
    Wasmtime,
}

impl Server {
    pub const ALL: [Self; 4] = [
        Self::Floor,
        Self::Host { pool: 0 },
        Self::Host { pool: 16 },
        Self::Wasmtime,
    ];

    pub fn label(self) -> String {
        match self {
            Self::Floor => "floor: native hyper server (`hello\\n`)".into(),
            Self::Host { pool: 0 } => "host, no pool".into(),
            Self::Host { pool } => format!("host, `pool_size: {pool}`"),
            Self::Wasmtime => "`wasmtime serve` 48".into(),
        }
    }
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and reads its stdout (else its stderr) until a line
/// containing `until`: the lines so far; a thread drains the rest. Its
/// stderr is ours when its stdout is read, its stdout discarded otherwise.
fn spawn(mut cmd: Command, stdout: bool, until: &str) -> anyhow::Result<(Killed, Vec<String>)> {
    let what = format!("{cmd:?}");
    let (out, err) = if stdout {
        (Stdio::piped(), Stdio::inherit())
    } else {
        (Stdio::null(), Stdio::piped())
    };
    let mut child = Killed(cmd.stdout(out).stderr(err).stdin(Stdio::null()).spawn()?);
    let pipe: Box<dyn std::io::Read + Send> = match stdout {
        true => Box::new(child.0.stdout.take().context("stdout")?),
        false => Box::new(child.0.stderr.take().context("stderr")?),
    };
    let mut lines = BufReader::new(pipe).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line?;
        let done = line.contains(until);
        seen.push(line);
        if done {
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, seen));
        }
    }
    bail!("{what} exited before printing `{until}`: {seen:?}")
}

/// What follows `prefix` on one of `lines`, up to a `/` or the end.
fn after(lines: &[String], prefix: &str) -> anyhow::Result<String> {
    lines
        .iter()
        .find_map(|l| l.split_once(prefix))
        .map(|(_, a)| a.trim_end_matches('/').to_string())
        .with_context(|| format!("no `{prefix}` in {lines:?}"))
}

/// `wasmtime --version` if it is 48.x, else what the table says instead.
pub fn wasmtime_48() -> Result<String, String> {
    match Command::new("wasmtime").arg("--version").output() {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            match v.starts_with("wasmtime 48.") {
                true => Ok(v),
                false => Err(format!("{v} found, not 48.x ({INSTALL})")),
            }
        }
        _ => Err(format!("not installed ({INSTALL})")),
    }
}

/// A started server: its address, and its processes (killed on drop).
pub type Running = (String, Box<dyn Send>);

/// Starts `server`: its address and the processes to keep alive, or why not.
pub fn start(server: Server, cache: &TempDir) -> anyhow::Result<Result<Running, String>> {
    let cache_env = [
        ("HOST_CACHE_DIR", cache.to_str().context("cache dir")?),
        ("RUST_LOG", "warn"),
    ];
    Ok(Ok(match server {
        Server::Floor => {
            let helper =
                crate::baselines::Helper::start(&["http-hello", "--listen", "127.0.0.1:0"])?;
            (helper.address("http")?.to_string(), Box::new(helper))
        }
        Server::Host { pool } => {
            let workload = Workload::new("hello")
                .component(
                    Component::new("api", guests::HTTP_COUNTER)
                        .config("GREETING", "bench")
                        .pool_size(pool),
                )
                .host("wasi:keyvalue")
                .http("");
            let host = workload.spawn(&["--http-listen", "127.0.0.1:0"], &cache_env)?;
            host.await_stdout("ready\n", LIMIT)?;
            (host.http_listen(LIMIT)?, Box::new(host))
        }
        Server::Wasmtime => {
            if let Err(why) = wasmtime_48() {
                return Ok(Err(why));
            }
            let mut cmd = Command::new("wasmtime");
            cmd.args([
                "serve",
                "-Scli",
                "-Skeyvalue",
                "--env",
                "GREETING=bench",
                "--addr",
                "127.0.0.1:0",
            ])
            .arg(guests::HTTP_COUNTER);
            let (child, lines) = spawn(cmd, false, "Serving HTTP on")?;
            (after(&lines, "Serving HTTP on http://")?, Box::new(child))
        }
    }))
}

/// One cold-start variant: each start's time to the first 200 and to the
/// `POST` reply, in ns.
#[derive(Clone, Debug)]
pub struct Cold {
    pub label: &'static str,
    /// With the compile cache (the goal's variant).
    pub cached: bool,
    pub first_200: Vec<u128>,
    pub post: Vec<u128>,
}

/// `host serve` (`--no-compile-cache` if `no_cache`) with a fresh cache:
/// one warm-up start and stop of the workload, then `starts` measured ones.
pub fn cold_starts(
    no_cache: bool,
    starts: usize,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Cold> {
    let cache = TempDir::new("bench-http-cold")?;
    let mut cmd = Command::new(harness::bin("host")?);
    cmd.args(["--http-addr", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]);
    if no_cache {
        cmd.arg("--no-compile-cache");
    }
    cmd.args(["serve", "--host-id", "bench"])
        .env("HOST_CACHE_DIR", cache.path())
        .env("RUST_LOG", "warn");
    let (_host, lines) = spawn(cmd, true, "ready")?;
    let (ops, http) = (
        after(&lines, "listening http://")?,
        after(&lines, "serving HTTP on http://")?,
    );
    let start = serde_json::json!({ "workload": {
        "name": "cold",
        "components": [{ "name": "api", "file": guests::HTTP_COUNTER, "config": { "GREETING": "bench" } }],
        "host": ["wasi:keyvalue"],
        "http": {},
    }})
    .to_string();
    let serving = |http: String| async move {
        matches!(once(&http, "GET", "/hello", "").await, Ok((200, _)))
    };
    let mut cold = Cold {
        label: match no_cache {
            false => "compiled component cached (one warm-up start and stop first)",
            true => "`--no-compile-cache` (compiled at every start)",
        },
        cached: !no_cache,
        first_200: Vec::new(),
        post: Vec::new(),
    };
    rt.block_on(async {
        for i in 0..=starts {
            let t0 = Instant::now();
            let (status, body) = once(&ops, "POST", "/v1/workloads", &start).await?;
            ensure!(
                status == 201,
                "start: {status} {}",
                String::from_utf8_lossy(&body)
            );
            let post = t0.elapsed();
            while !serving(http.clone()).await {
                ensure!(t0.elapsed() < LIMIT, "no 200 on /hello within {LIMIT:?}");
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            if i > 0 {
                cold.first_200.push(t0.elapsed().as_nanos());
                cold.post.push(post.as_nanos());
            }
            let (status, body) = once(&ops, "DELETE", "/v1/workloads/cold", "").await?;
            ensure!(
                status == 200,
                "stop: {status} {}",
                String::from_utf8_lossy(&body)
            );
            while serving(http.clone()).await {
                ensure!(t0.elapsed() < LIMIT, "/hello still served after the stop");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok(())
    })?;
    Ok(cold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_announced_address() {
        let lines = [
            "noise".to_string(),
            "Serving HTTP on http://127.0.0.1:8080/".into(),
        ];
        assert_eq!(
            after(&lines, "Serving HTTP on http://").unwrap(),
            "127.0.0.1:8080"
        );
        assert!(after(&lines, "listening http://").is_err());
    }
}
