//! The host's built-in plugins, and which of them a host runs.
//!
//! - `wrpc`: what `wrpc:` declares goes to extensions over wRPC;
//! - `exports`: what `exports:` lists is served over wRPC;
//! - `logging`, `config`, `keyvalue`, `blobstore`: what `host:` asks for is
//!   served in process;
//! - `http`: `http:` routes on the host's HTTP listener, and `wasi:http`
//!   imports (outgoing requests to the hosts a workload allows).
//!
//! Each but `wrpc` and `exports` is a cargo feature, on by default.

#[cfg(feature = "config")]
mod config;
mod exports;
#[cfg(feature = "logging")]
mod logging;

use core::fmt;
use core::str::FromStr;

use std::sync::Arc;

use host_plugin::HostPlugin;
use wrpc_client_plugin::{Defaults, WrpcPlugin};

#[cfg(feature = "config")]
pub use config::ConfigPlugin;
pub use exports::ExportsPlugin;
#[cfg(feature = "logging")]
pub use logging::LoggingPlugin;
#[cfg(feature = "blobstore")]
pub use plugin_blobstore::BlobstorePlugin;
#[cfg(feature = "http")]
pub use plugin_http::{HttpLimits, HttpPlugin, HttpServer};
#[cfg(feature = "keyvalue")]
pub use plugin_keyvalue::KeyvaluePlugin;

/// A built-in plugin, by its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `wrpc`: routes `wrpc:` entries to extensions.
    Wrpc,
    /// `exports`: serves `exports:` entries.
    Exports,
    /// `logging`: `wasi:logging/logging` to the host's log.
    Logging,
    /// `config`: `wasi:config/store` from a component's `config`.
    Config,
    /// `keyvalue`: `wasi:keyvalue` in memory or in a file.
    Keyvalue,
    /// `blobstore`: `wasi:blobstore` on a directory.
    Blobstore,
    /// `http`: `wasi:http` handlers on the HTTP listener, outgoing requests.
    Http,
}

impl Builtin {
    /// Every built-in, in the order a host asks them.
    pub const ALL: [Builtin; 7] = [
        Builtin::Wrpc,
        Builtin::Exports,
        Builtin::Logging,
        Builtin::Config,
        Builtin::Keyvalue,
        Builtin::Blobstore,
        Builtin::Http,
    ];

    /// Its id.
    pub fn id(self) -> &'static str {
        match self {
            Builtin::Wrpc => "wrpc",
            Builtin::Exports => "exports",
            Builtin::Logging => "logging",
            Builtin::Config => "config",
            Builtin::Keyvalue => "keyvalue",
            Builtin::Blobstore => "blobstore",
            Builtin::Http => "http",
        }
    }

    /// Whether this build has it (its cargo feature is on).
    pub fn compiled_in(self) -> bool {
        match self {
            Builtin::Wrpc | Builtin::Exports => true,
            Builtin::Logging => cfg!(feature = "logging"),
            Builtin::Config => cfg!(feature = "config"),
            Builtin::Keyvalue => cfg!(feature = "keyvalue"),
            Builtin::Blobstore => cfg!(feature = "blobstore"),
            Builtin::Http => cfg!(feature = "http"),
        }
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Builtin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Builtin::ALL
            .into_iter()
            .find(|b| b.id() == s)
            .ok_or_else(|| {
                let ids: Vec<&str> = Builtin::ALL.iter().map(|b| b.id()).collect();
                format!("no built-in plugin `{s}` (there are: {})", ids.join(", "))
            })
    }
}

/// Which built-in plugins a host runs, and the wRPC plugin's defaults.
#[derive(Clone, Debug)]
pub struct Builtins {
    /// Defaults for `wrpc:` entries.
    pub wrpc: Defaults,
    /// The built-ins switched off.
    pub off: Vec<Builtin>,
    /// The HTTP listener `http:` routes are served on, if any.
    #[cfg(feature = "http")]
    pub http: Option<Arc<HttpServer>>,
    /// How long open HTTP connections may finish when the host stops.
    pub shutdown_grace: core::time::Duration,
}

impl Default for Builtins {
    fn default() -> Self {
        Self {
            wrpc: Defaults::default(),
            off: Vec::new(),
            #[cfg(feature = "http")]
            http: None,
            shutdown_grace: core::time::Duration::from_secs(10),
        }
    }
}

impl Builtins {
    /// The plugins to run: every built-in compiled in and not switched off.
    pub fn plugins(&self) -> Vec<Arc<dyn HostPlugin>> {
        let mut plugins: Vec<Arc<dyn HostPlugin>> = Vec::new();
        for builtin in Builtin::ALL {
            if self.off.contains(&builtin) {
                continue;
            }
            match builtin {
                Builtin::Wrpc => plugins.push(Arc::new(WrpcPlugin::new(self.wrpc.clone()))),
                Builtin::Exports => plugins.push(Arc::new(ExportsPlugin::default())),
                #[cfg(feature = "logging")]
                Builtin::Logging => plugins.push(Arc::new(LoggingPlugin)),
                #[cfg(feature = "config")]
                Builtin::Config => plugins.push(Arc::new(ConfigPlugin::default())),
                #[cfg(feature = "keyvalue")]
                Builtin::Keyvalue => plugins.push(Arc::new(KeyvaluePlugin::default())),
                #[cfg(feature = "blobstore")]
                Builtin::Blobstore => plugins.push(Arc::new(BlobstorePlugin::default())),
                #[cfg(feature = "http")]
                Builtin::Http => plugins.push(Arc::new(
                    HttpPlugin::new(self.http.clone()).with_grace(self.shutdown_grace),
                )),
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        plugins
    }
}
