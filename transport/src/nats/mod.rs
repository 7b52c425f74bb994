//! wRPC over NATS, wire-compatible with wRPC 0.17 (`wrpc-transport-nats`
//! 0.31) and wasmCloud 1.x peers, in fewer messages when both ends are ours.
//!
//! Subjects: a call goes to `[prefix.]wrpc.0.0.1.<instance>.<function>` with
//! the caller's inbox `R_c` as reply subject; results travel on
//! `R_c.results[.path]`; the server's handshake reply (empty, reply subject
//! `R_s`) tells the caller where further parameters go (`R_s.params[.path]`);
//! an empty message ends a stream.
//!
//! The lean form (header `wrpc-lean: 1`, sent only when every parameter is in
//! the first message) lets a server of ours skip the handshake and, for
//! synchronous results, the end-of-results message: a call is then two
//! messages, like a request and its reply. Peers that do not know the header
//! ignore it and run the full exchange.
//!
//! Streams are flow-controlled between peers of ours (credits, see
//! [`STREAM_WINDOW`]): a slow reader slows its writer instead of making its
//! buffer grow. See `docs/WIRE.md`.

mod call;
mod client;
mod connect;
mod demux;
pub(crate) mod flow;
mod probe;
mod server;

pub use call::{CallRx, CallTx};
pub use client::NatsClient;
pub use connect::{check_connected, connect, ConnectError};
pub use flow::{CREDIT_HEADER, WINDOW as STREAM_WINDOW};
pub use server::NatsServer;

/// The protocol version token of wRPC 0.17 subjects.
pub const PROTOCOL: &str = "wrpc.0.0.1";

/// Header a caller sets when every parameter is in the first message and it
/// needs neither a handshake nor end-of-results for synchronous results.
pub const LEAN_HEADER: &str = "wrpc-lean";

/// Header on an end-of-results message when the server failed the call.
pub const ERROR_HEADER: &str = "wrpc-error";

/// The subject a function is served on.
pub fn invocation_subject(prefix: &str, instance: &str, func: &str) -> String {
    let mut s =
        String::with_capacity(prefix.len() + PROTOCOL.len() + instance.len() + func.len() + 3);
    if !prefix.is_empty() {
        s.push_str(prefix);
        s.push('.');
    }
    s.push_str(PROTOCOL);
    s.push('.');
    if !instance.is_empty() {
        s.push_str(instance);
        s.push('.');
    }
    s.push_str(func);
    s
}

/// The subject tail of an async path, e.g. `results.1.*` for `[Some(1), None]`.
fn path_tail(base: &str, path: &[Option<usize>]) -> String {
    let mut s = base.to_string();
    for p in path {
        s.push('.');
        match p {
            Some(i) => s.push_str(&i.to_string()),
            None => s.push('*'),
        }
    }
    s
}

/// The subject tail of a concrete path, e.g. `results.1.0`.
fn index_tail(base: &str, path: &[usize]) -> String {
    let mut s = base.to_string();
    for i in path {
        s.push('.');
        s.push_str(&i.to_string());
    }
    s
}
