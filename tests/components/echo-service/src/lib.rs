//! Exports `example:echo/echo`: answers `PREFIX #N: MESSAGE`, where
//! `PREFIX` is its config (default `echo-service`) and `N` counts the calls
//! this instance answered, so a caller sees whether it kept one instance.
//! A message starting with `trap` makes it trap (a panic), to test what a trap in an
//! exporter does to its caller and to later calls.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/echo",
        world: "extension",
    });
}

use std::sync::atomic::{AtomicU64, Ordering};

use bindings::exports::example::echo::echo::Guest;

static CALLS: AtomicU64 = AtomicU64::new(0);

struct Service;

impl Guest for Service {
    fn echo(message: String) -> String {
        assert!(!message.starts_with("trap"), "asked to trap");
        let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let prefix = std::env::var("PREFIX").unwrap_or_else(|_| "echo-service".into());
        format!("{prefix} #{n}: {message}")
    }
}

bindings::export!(Service with_types_in bindings);
