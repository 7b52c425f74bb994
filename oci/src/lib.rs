//! Wasm components from OCI registries: [`pull`] into a digest-addressed
//! on-disk cache, and [`push`] a component file as a Wasm OCI artifact.
//!
//! References are `registry/repo:tag` or `registry/repo@sha256:<hex>`. A
//! digest reference whose manifest and layer are cached is served with no
//! network at all; a tag reference re-resolves the tag (one manifest request)
//! unless [`Options::refresh_tags`] is off, and never downloads a layer it
//! has. See `docs/OCI.md` for the cache layout, credentials and errors.

mod artifact;
mod auth;
mod cache;
mod error;
mod pull;
mod push;
mod session;

use std::path::PathBuf;
use std::time::Duration;

pub use artifact::{
    DOCKER_MANIFEST_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE,
    WASM_CONFIG_MEDIA_TYPES, WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPES,
};
pub use auth::{docker_config_path, Credentials, ENV_PASSWORD, ENV_USERNAME};
pub use cache::{sha256_digest, verify};
pub use error::Error;
pub use pull::pull;
pub use push::push;

/// The default deadline of each network call: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on a layer's size: 256 MiB.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 256 * 1024 * 1024;

/// How to reach registries and where to cache what is pulled.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cache directory (`blobs/sha256/<hex>`, `index.json`, `tmp/`).
    pub cache_dir: PathBuf,
    /// Registries reached over plain http, as `host` (any port) or
    /// `host:port`. No registry is implicitly insecure, localhost included.
    pub insecure: Vec<String>,
    /// The deadline of each network call (connect, request, and each read of
    /// a transfer: a stalled transfer fails, a slow one goes on).
    pub timeout: Duration,
    /// The largest layer a pull accepts, and the largest file a push sends.
    pub max_layer_bytes: u64,
    /// Where credentials come from.
    pub credentials: Credentials,
    /// Whether a tag reference is resolved again on each pull (the default);
    /// when off, a tag already in the cache index is served with no network.
    pub refresh_tags: bool,
}

impl Options {
    /// Defaults: no insecure registries, [`DEFAULT_TIMEOUT`],
    /// [`DEFAULT_MAX_LAYER_BYTES`], [`Credentials::Auto`], tags refreshed.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            insecure: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_layer_bytes: DEFAULT_MAX_LAYER_BYTES,
            credentials: Credentials::Auto,
            refresh_tags: true,
        }
    }
}

/// Progress of one layer's download (reported at its start, about every
/// MiB, and at its end; also logged with `tracing` at info level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The reference being pulled, as given.
    pub reference: String,
    /// The layer's digest.
    pub digest: String,
    /// Bytes received so far.
    pub done: u64,
    /// The layer's size.
    pub total: u64,
}

impl std::fmt::Display for Progress {
    /// `pulling REF: N/M bytes`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Progress {
            reference,
            done,
            total,
            ..
        } = self;
        write!(f, "pulling {reference}: {done}/{total} bytes")
    }
}

/// A pulled component.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest's digest (pin with `registry/repo@<this>`).
    pub manifest_digest: String,
    /// The Wasm layer's digest.
    pub layer_digest: String,
    /// The verified layer in the cache.
    pub path: PathBuf,
    /// The component's bytes, verified against `layer_digest`.
    pub bytes: Vec<u8>,
    /// Bytes downloaded by this pull (manifest and layer; 0 on a cache hit).
    pub downloaded: u64,
}

/// What a push published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The Wasm layer's digest.
    pub layer_digest: String,
    /// `registry/repo@<manifest digest>`: the pinned reference.
    pub pinned: String,
}
