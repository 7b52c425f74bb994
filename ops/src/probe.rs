//! `BINARY healthcheck [--live] [ADDR]`: the probe a scratch image runs
//! (`HEALTHCHECK`, Kubernetes `exec` probes), since it has no shell or curl.
//! It asks the binary's own HTTP endpoint (`/readyz`, or `/healthz`
//! with `--live`) and exits 0 when it answers 200, else 1, in one line.

use core::time::Duration;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;

/// How long the probe may take to connect, and to read the answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The address probed when none is given: `WRPC_HTTP_ADDR`, else
/// `127.0.0.1:9090`.
pub fn default_addr() -> String {
    std::env::var("WRPC_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:9090".into())
}

/// If this process was started as `NAME healthcheck …`, runs the probe and
/// returns its exit code; otherwise `None`. Call it first in `main`.
///
/// The address is the argument after the flags, else [`default_addr`]; an
/// unspecified address (`0.0.0.0`, `[::]`) is probed on loopback.
pub fn health_check_command() -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("healthcheck") {
        return None;
    }
    let mut live = false;
    let mut addr = default_addr();
    for arg in args {
        match arg.as_str() {
            "--live" => live = true,
            "-h" | "--help" => {
                println!("usage: healthcheck [--live] [HOST:PORT]  (exit 0 when /readyz, or /healthz with --live, answers 200)");
                return Some(ExitCode::SUCCESS);
            }
            other => addr = other.to_string(),
        }
    }
    Some(run(&addr, live))
}

/// Asks `addr` for `/readyz` (`/healthz` if `live`), prints one line and
/// returns 0 when it answered 200, else 1.
pub fn run(addr: &str, live: bool) -> ExitCode {
    let path = if live { "/healthz" } else { "/readyz" };
    match probe(addr, path) {
        Ok(()) => {
            println!("{path}: ok");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("{path} at {addr}: {why}");
            ExitCode::FAILURE
        }
    }
}

fn probe(addr: &str, path: &str) -> Result<(), String> {
    let mut addr: SocketAddr = addr
        .parse()
        .map_err(|_| "not a HOST:PORT address".to_string())?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        Err(format!("HTTP {status} {body}"))
    }
}
