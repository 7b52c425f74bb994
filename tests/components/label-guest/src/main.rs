//! Calls `example:echo/echo@0.1.0` through each of its imports of it, in the
//! order the config value `CALLS` names them (comma-separated among `plain`,
//! `primary` and `backup`; default all three), with `MESSAGE` (default
//! `hi`), printing `NAME: REPLY` for each. A failed call traps (the host
//! forwards the interface generically).

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit/echo", "wit"],
        world: "test:label-guest/guest",
        generate_all,
    });
}

use bindings::example::echo::echo as plain;
use bindings::{backup, primary};

fn main() {
    let message = std::env::var("MESSAGE").unwrap_or_else(|_| "hi".into());
    let calls = std::env::var("CALLS").unwrap_or_else(|_| "plain,primary,backup".into());
    for name in calls.split(',') {
        let reply = match name {
            "plain" => plain::echo(&message),
            "primary" => primary::echo(&message),
            "backup" => backup::echo(&message),
            other => {
                println!("FAIL: unknown import `{other}`");
                std::process::exit(1);
            }
        };
        println!("{name}: {reply}");
    }
}
