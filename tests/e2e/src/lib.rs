//! Shared pieces of the end-to-end tests in `tests/`: the guest components
//! built by `build.rs`, and the per-transport test scaffolding.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;

use harness::{HostRun, Nats};

/// The keyvalue test and demo guest (`tests/components/kv-guest`).
pub const KV_GUEST: &str = env!("GUEST_KV_GUEST");

/// A guest calling `example:echo/echo`, a user-defined interface (`tests/components/echo-guest`).
pub const ECHO_GUEST: &str = env!("GUEST_ECHO_GUEST");

/// The wRPC transports every end-to-end scenario runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// wRPC over NATS.
    Nats,
    /// wRPC over TCP.
    Tcp,
}

/// Generates `nats::<scenario>` and `tcp::<scenario>` tests calling
/// `<scenario>(Transport)`.
#[macro_export]
macro_rules! per_transport {
    ($($scenario:ident),* $(,)?) => {
        mod nats {
            $(#[test] fn $scenario() { super::$scenario($crate::Transport::Nats) })*
        }
        mod tcp {
            $(#[test] fn $scenario() { super::$scenario($crate::Transport::Tcp) })*
        }
    };
}

/// Asserts that the host exited 0 and the guest printed `expect`.
#[track_caller]
pub fn assert_success(run: &HostRun, expect: &str) {
    assert!(
        run.code == Some(0) && run.stdout.contains(expect),
        "expected success with `{expect}`\n{run:#?}"
    );
}

/// A target for `transport` where nothing serves: the running `nats` server
/// with no extension subscribed, or a TCP port nobody listens on.
pub fn unserved_target(transport: Transport, nats: &Nats) -> String {
    match transport {
        Transport::Nats => nats.url(),
        Transport::Tcp => format!("tcp://127.0.0.1:{}", harness::free_port()),
    }
}

/// A NATS client speaking the protocol by hand, for callers that misbehave on
/// purpose: connects to `url`, sends `commands` (after `CONNECT`), then reads
/// until a line starting with `until` arrives, and returns the open connection.
pub fn raw_nats(url: &str, commands: &[u8], until: &str) -> TcpStream {
    let mut conn = TcpStream::connect(url.trim_start_matches("nats://")).unwrap();
    conn.write_all(b"CONNECT {\"verbose\":false}\r\n").unwrap();
    conn.write_all(commands).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    while !line.starts_with(until) {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "NATS closed the connection"
        );
    }
    conn
}
