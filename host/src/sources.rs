//! Where components come from: a file or an OCI image (pulled into a
//! digest-addressed cache), compiled once and kept compiled on disk, so a
//! restarted host starts a cached component without compiling it.
//!
//! The compiled cache is `<dir>/compiled/<sha256 of the component>-<engine
//! hash>.cwasm`: a component is compiled again when its bytes, the host's
//! Wasmtime or the engine's settings change. Wasmtime runs what it finds
//! there as machine code, so the directory must be writable by the host's
//! user only: it is made with mode 0700, and an entry (or its directory)
//! owned by another user or writable by group or others is not loaded.

use core::hash::{Hash as _, Hasher as _};

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use host_plugin::manifest::ComponentSpec;
use sha2::{Digest as _, Sha256};
use tracing::{debug, info};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where components are pulled from and kept compiled.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// Compiled components are kept here (none: compiled at every start).
    pub compile_cache: Option<PathBuf>,
    /// OCI pulls (none: `image:` is refused).
    pub oci: Option<host_oci::Options>,
}

/// The default cache directory: `$XDG_CACHE_HOME/wasmhost`, else
/// `~/.cache/wasmhost`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasmhost"))
}

impl Sources {
    /// The bytes of `spec`'s component: its file, or its image (pulled, or
    /// read from the cache).
    async fn bytes(&self, spec: &ComponentSpec) -> anyhow::Result<(Vec<u8>, String)> {
        if let Some(file) = &spec.file {
            let bytes = std::fs::read(file).with_context(|| {
                format!("component `{}`: cannot load {}", spec.name, file.display())
            })?;
            return Ok((bytes, file.display().to_string()));
        }
        let image = spec
            .image
            .as_deref()
            .with_context(|| format!("component `{}` has no file or image", spec.name))?;
        let options = self.oci.as_ref().with_context(|| {
            format!(
                "component `{}`: `image:` needs a cache directory (--cache-dir)",
                spec.name
            )
        })?;
        let mut last = 0;
        let pulled = host_oci::pull(image, options, |progress| {
            // One line per MiB at most, on stdout for scripts and people.
            if progress.done == progress.total || progress.done >= last + (1 << 20) {
                last = progress.done;
                println!("{progress}");
            }
        })
        .await
        .with_context(|| format!("component `{}`", spec.name))?;
        if pulled.downloaded == 0 {
            debug!(image, "component image from the cache");
        } else {
            info!(image, bytes = pulled.downloaded, "component image pulled");
        }
        Ok((pulled.bytes, image.to_string()))
    }

    /// `spec`'s component compiled for `engine`: from the compiled cache
    /// when it is there, else compiled (and kept there).
    #[allow(
        unsafe_code,
        reason = "loading a compiled component: see the SAFETY note"
    )]
    pub(crate) async fn component(
        &self,
        engine: &Engine,
        spec: &ComponentSpec,
    ) -> anyhow::Result<Component> {
        let (bytes, source) = self.bytes(spec).await?;
        let name = &spec.name;
        let Some(dir) = &self.compile_cache else {
            return Component::new(engine, &bytes)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component `{name}`: cannot load {source}"));
        };
        let path = cached_path(dir, engine, &bytes);
        if path.exists() && trusted(&path) {
            // SAFETY: the file was written by `Component::serialize` of this
            // host into a directory only its user can write (see the module
            // documentation); Wasmtime checks it was made for this engine.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    debug!(component = name, path = %path.display(), "compiled component from the cache");
                    return Ok(component);
                }
                Err(err) => debug!(
                    component = name,
                    "compiled cache entry unusable ({err}); compiling"
                ),
            }
        }
        let component = Component::new(engine, &bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{name}`: cannot load {source}"))?;
        if let Err(err) = store(&path, &component) {
            debug!(
                component = name,
                "cannot keep the compiled component: {err:#}"
            );
        }
        Ok(component)
    }
}

/// Whether `path` and its directory belong to this process's user and no
/// one else can write them: only then is its machine code run.
fn trusted(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::geteuid().as_raw();
        let ours = |p: &Path| {
            std::fs::symlink_metadata(p).is_ok_and(|m| {
                m.uid() == me && m.mode() & 0o022 == 0 && !m.file_type().is_symlink()
            })
        };
        let trusted = ours(path) && path.parent().is_some_and(ours);
        if !trusted {
            tracing::warn!(
                path = %path.display(),
                "compiled cache entry not owned by this user or writable by others: compiling instead"
            );
        }
        trusted
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

/// The cache file of `bytes` compiled by `engine`.
fn cached_path(dir: &Path, engine: &Engine, bytes: &[u8]) -> PathBuf {
    let digest = Sha256::digest(bytes);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join("compiled")
        .join(format!("{hex}-{:016x}.cwasm", hasher.finish()))
}

/// Writes `component` compiled to `path`, atomically.
fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    let dir = path.parent().context("no parent directory")?;
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let serialized = component.serialize()?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&serialized)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}
