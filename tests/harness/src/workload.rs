//! [`Workload`]: a workload manifest built in code, for tests and
//! benchmarks, instead of YAML assembled by hand.
//!
//! ```
//! use harness::workload::{Component, Workload};
//! let yaml = Workload::new("demo")
//!     .component(Component::new("api", "/tmp/api.wasm").config("COUNT", "3"))
//!     .host("wasi:keyvalue")
//!     .wrpc_entry("interface: example:echo/echo\ntarget: tcp://127.0.0.1:7762")
//!     .route("wasi:blobstore", "tcp://127.0.0.1:7763", "timeout: 5s")
//!     .to_yaml();
//! assert!(yaml.contains("  - name: \"api\""));
//! assert!(yaml.contains(
//!     "  - interface: \"wasi:blobstore\"\n    target: \"tcp://127.0.0.1:7763\"\n    timeout: 5s\n"
//! ));
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{spawn_host_manifest, spawn_manifest_with, HostProcess, HostRun};

/// One component of a [`Workload`].
#[derive(Clone, Debug)]
pub struct Component {
    name: String,
    file: PathBuf,
    config: Vec<(String, String)>,
    dirs: Vec<(String, PathBuf)>,
    imports: Vec<(String, String)>,
    pool_size: usize,
}

impl Component {
    /// Component `name` loaded from `file`.
    pub fn new(name: &str, file: impl AsRef<Path>) -> Self {
        Self {
            name: name.into(),
            file: file.as_ref().to_path_buf(),
            config: Vec::new(),
            dirs: Vec::new(),
            imports: Vec::new(),
            pool_size: 0,
        }
    }

    /// Keeps `size` instances made ahead of requests.
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Adds a config value (an environment variable of the component).
    #[must_use]
    pub fn config(mut self, key: &str, value: impl ToString) -> Self {
        self.config.push((key.into(), value.to_string()));
        self
    }

    /// Lets it open host directory `host` as `guest`.
    #[must_use]
    pub fn dir(mut self, guest: &str, host: impl AsRef<Path>) -> Self {
        self.dirs.push((guest.into(), host.as_ref().to_path_buf()));
        self
    }

    /// Picks the component serving its import `interface`.
    #[must_use]
    pub fn import_from(mut self, interface: &str, component: &str) -> Self {
        self.imports.push((interface.into(), component.into()));
        self
    }
}

/// A workload manifest.
#[derive(Clone, Debug)]
pub struct Workload {
    name: String,
    namespace: Option<String>,
    components: Vec<Component>,
    host: Vec<String>,
    wrpc: Vec<String>,
    exports: Vec<String>,
    http: Option<String>,
}

impl Workload {
    /// An empty workload named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            namespace: None,
            components: Vec::new(),
            host: Vec::new(),
            wrpc: Vec::new(),
            exports: Vec::new(),
            http: None,
        }
    }

    /// Sets its `http:` route: YAML mapping lines (`path: /api`, …; empty
    /// for every request).
    #[must_use]
    pub fn http(mut self, mapping: &str) -> Self {
        self.http = Some(mapping.into());
        self
    }

    /// Sets its namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Adds a component.
    #[must_use]
    pub fn component(mut self, component: Component) -> Self {
        self.components.push(component);
        self
    }

    /// Adds a short `host:` entry (an interface name).
    #[must_use]
    pub fn host(mut self, interface: &str) -> Self {
        self.host.push(quote(interface));
        self
    }

    /// Adds a long `host:` entry: YAML mapping lines (`interface: …`, …).
    #[must_use]
    pub fn host_entry(mut self, mapping: &str) -> Self {
        self.host.push(block(mapping));
        self
    }

    /// Adds a short `wrpc:` entry (an interface name).
    #[must_use]
    pub fn wrpc(mut self, interface: &str) -> Self {
        self.wrpc.push(quote(interface));
        self
    }

    /// Adds a long `wrpc:` entry: YAML mapping lines.
    #[must_use]
    pub fn wrpc_entry(mut self, mapping: &str) -> Self {
        self.wrpc.push(block(mapping));
        self
    }

    /// Adds a `wrpc:` entry routing `interface` to `target` (both written
    /// quoted, so a target's `?`, `&` or `:` need no care), then `more`
    /// mapping lines (`timeout: 5s`, `check: false`, …; may be empty).
    #[must_use]
    pub fn route(self, interface: &str, target: &str, more: &str) -> Self {
        self.wrpc_entry(&format!(
            "interface: {}\ntarget: {}\n{more}",
            quote(interface),
            quote(target)
        ))
    }

    /// Adds an `exports:` entry serving `interface` at `serve`.
    #[must_use]
    pub fn export(mut self, interface: &str, serve: &str) -> Self {
        self.exports.push(block(&format!(
            "interface: {}\nserve: {}",
            quote(interface),
            quote(serve)
        )));
        self
    }

    /// Like [`Workload::export`], then `more` mapping lines
    /// (`timeout: 30s`, `max_concurrency: 4`, …).
    #[must_use]
    pub fn export_with(self, interface: &str, serve: &str, more: &str) -> Self {
        self.export_entry(&format!(
            "interface: {}\nserve: {}\n{more}",
            quote(interface),
            quote(serve)
        ))
    }

    /// Adds a long `exports:` entry: YAML mapping lines.
    #[must_use]
    pub fn export_entry(mut self, mapping: &str) -> Self {
        self.exports.push(block(mapping));
        self
    }

    /// The manifest.
    pub fn to_yaml(&self) -> String {
        let mut y = format!("name: {}\n", quote(&self.name));
        if let Some(ns) = &self.namespace {
            let _ = writeln!(y, "namespace: {}", quote(ns));
        }
        y.push_str("components:\n");
        for c in &self.components {
            let _ = writeln!(y, "  - name: {}", quote(&c.name));
            let _ = writeln!(y, "    file: {}", quote(&c.file.display().to_string()));
            if !c.config.is_empty() {
                y.push_str("    config:\n");
                for (k, v) in &c.config {
                    let _ = writeln!(y, "      {}: {}", quote(k), quote(v));
                }
            }
            if !c.dirs.is_empty() {
                y.push_str("    dirs:\n");
                for (guest, host) in &c.dirs {
                    let _ = writeln!(
                        y,
                        "      {}: {}",
                        quote(guest),
                        quote(&host.display().to_string())
                    );
                }
            }
            if c.pool_size > 0 {
                let _ = writeln!(y, "    pool_size: {}", c.pool_size);
            }
            if !c.imports.is_empty() {
                y.push_str("    imports:\n");
                for (interface, component) in &c.imports {
                    let _ = writeln!(
                        y,
                        "      - {{ interface: {}, component: {} }}",
                        quote(interface),
                        quote(component)
                    );
                }
            }
        }
        for (key, entries) in [
            ("host", &self.host),
            ("wrpc", &self.wrpc),
            ("exports", &self.exports),
        ] {
            if entries.is_empty() {
                continue;
            }
            let _ = writeln!(y, "{key}:");
            for e in entries {
                let _ = writeln!(y, "  - {e}");
            }
        }
        match self.http.as_deref() {
            None => {}
            Some("") => y.push_str("http: {}\n"),
            Some(mapping) => {
                y.push_str("http:\n");
                for line in mapping.lines() {
                    let _ = writeln!(y, "  {line}");
                }
            }
        }
        y
    }

    /// Runs `host run` on it with `args`, killing it after `limit`.
    ///
    /// # Errors
    ///
    /// The host cannot be started, or did not finish within `limit`.
    pub fn run(&self, args: &[&str], limit: Duration) -> anyhow::Result<HostRun> {
        self.spawn(args, &[])?.wait(limit)
    }

    /// Starts `host run` on it with `args` and `env`, without waiting.
    ///
    /// # Errors
    ///
    /// The host cannot be started.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<HostProcess> {
        spawn_host_manifest(&self.to_yaml(), args, env)
    }

    /// Runs `program MANIFEST ARGS…` (a binary embedding the host) on it,
    /// killing it after `limit`.
    ///
    /// # Errors
    ///
    /// It cannot be started, or did not finish within `limit`.
    pub fn run_with(
        &self,
        program: &Path,
        args: &[&str],
        limit: Duration,
    ) -> anyhow::Result<HostRun> {
        spawn_manifest_with(&[program.into()], &self.to_yaml(), args, &[])?.wait(limit)
    }
}

/// `s` as a YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", u32::from(c));
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Mapping lines as a list item's body (indented under `  - `).
fn block(mapping: &str) -> String {
    mapping
        .trim()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
