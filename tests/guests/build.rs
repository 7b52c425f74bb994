//! Builds the guest components in `tests/components/` for `wasm32-wasip2` and
//! exports their paths as `GUEST_<NAME>` environment variables at compile time.
//! The list of guests is kept here only; `src/lib.rs` turns it into constants.

use std::path::PathBuf;
use std::process::Command;

const GUESTS: &[&str] = &[
    "kv-guest",
    "echo-guest",
    "blob-guest",
    "msg-guest",
    "msg-handler",
    "inventory-guest",
    "streams-guest",
    "streams-service",
    "echo-service",
    "echo-relay",
    "blobstore-filesystem",
    "config-guest",
    "label-guest",
    "http-counter",
    "http-p3",
];

/// Guests with labelled imports (`import primary: ns:pkg/iface;`): linked
/// with the newer `wasm-component-ld` scripts/install.sh installs, since the
/// one rustc 1.95 bundles cannot encode them.
const LABELLED: &[&str] = &["label-guest"];
const LINKER_VERSION: &str = "0.5.31";

/// The `wasm-component-ld` scripts/install.sh put in cargo's bin directory.
fn labelled_linker() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let linker = home.join("bin/wasm-component-ld");
    let version = Command::new(&linker)
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    assert!(
        version.as_deref() == Some(&format!("wasm-component-ld {LINKER_VERSION}")),
        "guests {LABELLED:?} need wasm-component-ld {LINKER_VERSION} at {} (found: {version:?}): run scripts/install.sh",
        linker.display()
    );
    linker
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let components = manifest_dir.join("../components");
    let wit = manifest_dir.join("../../wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    // Source files guests include with `#[path]` (the steady-loop scenario).
    println!(
        "cargo:rerun-if-changed={}",
        components.join("shared").display()
    );
    let target_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The list, for `foreach_guest!` in src/lib.rs.
    let list = GUESTS.join(",");
    println!("cargo:rustc-env=GUESTS={list}");
    for guest in GUESTS {
        let dir = components.join(guest);
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        let mut command = Command::new(&cargo);
        if LABELLED.contains(guest) {
            let linker = format!("{:?}", labelled_linker().display().to_string());
            command
                .arg("--config")
                .arg(format!("target.wasm32-wasip2.linker={linker}"));
        }
        let status = command
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            // Flags meant for the host build must not leak into the guest's.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("failed to run cargo for a guest component");
        assert!(
            status.success(),
            "building guest `{guest}` for wasm32-wasip2 failed (is the target installed? run scripts/install.sh)"
        );
        // A command is named like its package; a library (a component that
        // only exports interfaces) with underscores.
        let release = target_dir.join("wasm32-wasip2/release");
        let wasm = [guest.to_string(), guest.replace('-', "_")]
            .into_iter()
            .map(|name| release.join(format!("{name}.wasm")))
            .find(|path| path.exists())
            .unwrap_or_else(|| release.join(format!("{guest}.wasm")));
        assert!(
            wasm.exists(),
            "guest `{guest}` built but {} is missing",
            wasm.display()
        );
        let var = format!("GUEST_{}", guest.replace('-', "_").to_uppercase());
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
}
