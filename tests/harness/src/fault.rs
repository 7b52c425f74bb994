//! Faults done to real processes, and the evidence that they happened: a
//! process frozen (`SIGSTOP`, its `/proc` state `T`) and thawed, a port
//! that refuses connections, and the wall-clock instants a fault's window
//! is measured in.
//!
//! Instants are Unix nanoseconds from the system's realtime clock, the clock
//! a guest reads through `wasi:clocks/wall-clock` on the same machine, so a
//! guest's timestamps and a test's compare directly.

use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};

/// Now, in Unix nanoseconds (realtime clock).
pub fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Sends `signal` (`STOP`, `CONT`, `TERM`, …) to process `pid`.
///
/// # Errors
///
/// `kill` cannot run or fails (e.g. no such process).
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    if pid == 0 {
        bail!("no process to send SIG{signal} to");
    }
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        bail!("kill -{signal} {pid}: {status}");
    }
    Ok(())
}

/// The state letter of process `pid` in `/proc/PID/stat` (`R`, `S`, `T`, …).
///
/// # Errors
///
/// The process is gone or its stat line is malformed.
pub fn proc_state(pid: u32) -> anyhow::Result<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    // `PID (COMM) STATE …`: COMM may hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .with_context(|| format!("malformed /proc/{pid}/stat: {stat}"))
}

/// A process stopped with `SIGSTOP`, continued when thawed or dropped.
pub struct Frozen {
    pid: u32,
    thawed: bool,
}

impl Frozen {
    /// Stops `pid` and waits (at most 5 s) until the kernel reports it
    /// stopped (`T`).
    ///
    /// # Errors
    ///
    /// The signal fails, or the process does not stop.
    pub fn freeze(pid: u32) -> anyhow::Result<Self> {
        signal(pid, "STOP")?;
        let frozen = Self { pid, thawed: false };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while proc_state(pid)? != 'T' {
            if std::time::Instant::now() > deadline {
                bail!("process {pid} did not stop within 5 s of SIGSTOP");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(frozen)
    }

    /// Its state letter now (`T` while frozen).
    ///
    /// # Errors
    ///
    /// The process is gone.
    pub fn state(&self) -> anyhow::Result<char> {
        proc_state(self.pid)
    }

    /// Continues it (`SIGCONT`).
    ///
    /// # Errors
    ///
    /// The signal fails.
    pub fn thaw(mut self) -> anyhow::Result<()> {
        self.thawed = true;
        signal(self.pid, "CONT")
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            let _ = signal(self.pid, "CONT");
        }
    }
}

/// Whether a TCP connection to `127.0.0.1:port` is refused right now:
/// proof that nothing listens there (the server is really down).
pub fn refuses(port: u16) -> bool {
    matches!(
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_process_reports_t_and_runs_again_when_thawed() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let frozen = Frozen::freeze(child.id()).unwrap();
        assert_eq!(frozen.state().unwrap(), 'T');
        frozen.thaw().unwrap();
        assert_ne!(proc_state(child.id()).unwrap(), 'T');
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_closed_port_refuses_and_an_open_one_does_not() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!refuses(port));
        drop(listener);
        assert!(refuses(port));
    }

    #[test]
    fn signalling_no_process_is_an_error() {
        let err = signal(0, "STOP").unwrap_err();
        assert!(err.to_string().contains("no process"), "{err}");
    }
}
