//! Shared pieces of the end-to-end tests in `tests/`: the guest components
//! built by `build.rs`, and the per-transport test scaffolding.

use harness::HostRun;

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
