//! The `host` command's subcommands beyond `run`: `serve` (many workloads,
//! the Host API, heartbeats), `ctl` (a client of the Host API) and `push`
//! (publish a component to an OCI registry).

pub mod ctl;
pub mod serve;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

/// Where components are pulled from and kept compiled.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Keep pulled images and compiled components here (default: $XDG_CACHE_HOME/wasmhost or ~/.cache/wasmhost).
    #[arg(long, env = "HOST_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,

    /// Compile every component at each start instead of keeping it compiled in the cache.
    #[arg(long, env = "HOST_NO_COMPILE_CACHE", global = true)]
    pub no_compile_cache: bool,

    /// Reach this registry over plain http (HOST or HOST:PORT; repeatable). No registry is plain http otherwise.
    #[arg(
        long = "insecure-registry",
        env = "HOST_INSECURE_REGISTRIES",
        value_delimiter = ',',
        global = true
    )]
    pub insecure_registries: Vec<String>,
}

impl SourceArgs {
    /// The sources: the compiled cache and OCI pulls in the cache directory.
    pub fn sources(&self) -> host::sources::Sources {
        let Some(dir) = self
            .cache_dir
            .clone()
            .or_else(host::sources::default_cache_dir)
        else {
            return host::sources::Sources::default();
        };
        let mut oci = host_oci::Options::new(dir.join("oci"));
        oci.insecure.clone_from(&self.insecure_registries);
        host::sources::Sources {
            compile_cache: (!self.no_compile_cache).then(|| dir.clone()),
            oci: Some(oci),
        }
    }
}

/// `KEY=VALUE`, for labels.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Labels as a map.
pub fn labels(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}
