//! A component exporting `wasmcloud:messaging/handler@0.2.0`, for the
//! messaging tests. For each message it increments `seen:<body>` (and
//! `by:<REPLICA>`) in bucket `BUCKET`, then, by the body's prefix:
//!
//! - `fail…`: returns an error;
//! - `trap…`: traps;
//! - anything else: succeeds, first publishing `re:<body>` to the message's
//!   `reply-to` if it has one.
//!
//! With `SLEEP_MS`, it sleeps that long before answering and records when
//! it ran as `iv:<body>:<n>` = `start_ns,end_ns` (wall clock), so a test
//! can compute how many ran at once.

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit/keyvalue", "../../../wit/messaging", "wit"],
        world: "test:msg-handler/handler",
        generate_all,
    });
}

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bindings::exports::wasmcloud::messaging::handler::Guest;
use bindings::wasi::keyvalue::{atomics, store};
use bindings::wasmcloud::messaging::consumer;
use bindings::wasmcloud::messaging::types::BrokerMessage;

struct Handler;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn describe(err: store::Error) -> String {
    match err {
        store::Error::NoSuchStore => "keyvalue: no such store".into(),
        store::Error::AccessDenied => "keyvalue: access denied".into(),
        store::Error::Other(msg) => format!("keyvalue: {msg}"),
    }
}

impl Guest for Handler {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        let start = now_ns();
        let bucket = store::open(&env("BUCKET").unwrap_or_else(|| "msgs".into())).map_err(describe)?;
        let body = String::from_utf8_lossy(&msg.body).into_owned();
        let n = atomics::increment(&bucket, &format!("seen:{body}"), 1).map_err(describe)?;
        if let Some(replica) = env("REPLICA") {
            atomics::increment(&bucket, &format!("by:{replica}"), 1).map_err(describe)?;
        }
        let sleep = env("SLEEP_MS").and_then(|ms| ms.parse::<u64>().ok());
        if let Some(ms) = sleep {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if body.starts_with("fail") {
            return Err(format!("refusing `{body}` (attempt {n})"));
        }
        if body.starts_with("trap") {
            panic!("trap requested by `{body}`");
        }
        if let Some(reply) = msg.reply_to {
            consumer::publish(&BrokerMessage {
                subject: reply,
                body: format!("re:{body}").into_bytes(),
                reply_to: None,
            })?;
        }
        if sleep.is_some() {
            let end = now_ns();
            bucket
                .set(&format!("iv:{body}:{n}"), format!("{start},{end}").as_bytes())
                .map_err(describe)?;
        }
        Ok(())
    }
}

bindings::export!(Handler with_types_in bindings);
