//! Reads `wasi:config/store` and logs through `wasi:logging/logging`:
//!
//! - prints `get KEY: VALUE` (or `get KEY: none`) for each key named in
//!   the config value `KEYS` (comma-separated, read through the store);
//! - prints `all: K=V, …` for `get-all`, sorted;
//! - logs `MESSAGE` (config; default `hello`) once at every level, in
//!   context `config-guest`.

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit/config", "../../../wit/logging", "wit"],
        world: "test:config-guest/guest",
        generate_all,
    });
}

use bindings::wasi::config::store;
use bindings::wasi::logging::logging::{log, Level};

fn main() {
    let keys = match store::get("KEYS") {
        Ok(Some(keys)) => keys,
        Ok(None) => String::new(),
        Err(e) => {
            println!("FAIL: get KEYS: {e:?}");
            std::process::exit(1);
        }
    };
    for key in keys.split(',').filter(|k| !k.is_empty()) {
        match store::get(key) {
            Ok(Some(value)) => println!("get {key}: {value}"),
            Ok(None) => println!("get {key}: none"),
            Err(e) => println!("get {key}: error {e:?}"),
        }
    }
    match store::get_all() {
        Ok(mut all) => {
            all.sort();
            let all: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("all: {}", all.join(", "));
        }
        Err(e) => println!("all: error {e:?}"),
    }
    let message = store::get("MESSAGE").ok().flatten().unwrap_or_else(|| "hello".into());
    for level in [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Critical] {
        log(level, "config-guest", &message);
    }
}
