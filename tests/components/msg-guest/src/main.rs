//! A guest command that uses `wasmcloud:messaging/consumer@0.2.0`. Its
//! component config (environment) picks what it does:
//!
//! - `SCENARIO=publish`: publishes `COUNT` messages (default 1) on `SUBJECT`,
//!   bodies `<PREFIX><i>`; prints `published: COUNT`;
//! - `SCENARIO=request`: requests `BODY` on `SUBJECT` within `TIMEOUT_MS`
//!   (default 2000); prints `reply: <body>`;
//! - `SCENARIO=expect-error`: one publish that must fail; prints `error: …`.
//!
//! Any failed check prints `FAIL: …` and exits 1.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/messaging",
        world: "imports",
        generate_all,
    });
}

use std::process::exit;

use bindings::wasmcloud::messaging::consumer;
use bindings::wasmcloud::messaging::types::BrokerMessage;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn fail(msg: impl AsRef<str>) -> ! {
    println!("FAIL: {}", msg.as_ref());
    exit(1)
}

fn main() {
    let subject = env("SUBJECT", "demo.greetings");
    match env("SCENARIO", "publish").as_str() {
        "publish" => {
            let count: u32 = env("COUNT", "1").parse().unwrap_or(1);
            let prefix = env("PREFIX", "msg-");
            for i in 0..count {
                let msg = BrokerMessage {
                    subject: subject.clone(),
                    body: format!("{prefix}{i}").into_bytes(),
                    reply_to: None,
                };
                if let Err(err) = consumer::publish(&msg) {
                    fail(format!("publish {i}: {err}"));
                }
            }
            println!("published: {count}");
        }
        "request" => {
            let body = env("BODY", "hello");
            let timeout: u32 = env("TIMEOUT_MS", "2000").parse().unwrap_or(2000);
            match consumer::request(&subject, body.as_bytes(), timeout) {
                Ok(reply) => println!("reply: {}", String::from_utf8_lossy(&reply.body)),
                Err(err) => fail(format!("request: {err}")),
            }
        }
        "expect-error" => {
            let msg = BrokerMessage {
                subject,
                body: b"x".to_vec(),
                reply_to: None,
            };
            match consumer::publish(&msg) {
                Ok(()) => fail("publish succeeded, expected an error"),
                Err(err) => println!("error: {err}"),
            }
        }
        other => fail(format!("unknown SCENARIO `{other}`")),
    }
}
