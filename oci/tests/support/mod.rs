//! A real registry for the tests (`harness::registry`), small Wasm
//! components, and options.
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::time::Duration;

use host_oci::{Credentials, Options};

pub use harness::registry::Registry;

/// A minimal valid component: one core module instantiated.
pub fn component() -> Vec<u8> {
    wat::parse_str(
        r#"(component (core module $m (func (export "f"))) (core instance (instantiate $m)))"#,
    )
    .unwrap()
}

/// A component of about `size` bytes (a core module with a data segment).
pub fn big_component(size: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let data: String = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    let pages = size / 65536 + 1;
    wat::parse_str(format!(
        r#"(component (core module (memory {pages}) (data (i32.const 0) "{data}")))"#
    ))
    .unwrap()
}

/// Writes `bytes` to a file in `dir`.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Options for `registry` over plain http, anonymous, a 10 s deadline.
pub fn options(cache: &Path, registry: &Registry) -> Options {
    let mut options = Options::new(cache);
    options.insecure = vec![registry.addr.clone()];
    options.credentials = Credentials::Anonymous;
    options.timeout = Duration::from_secs(10);
    options
}
