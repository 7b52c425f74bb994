//! The on-disk cache: blobs by digest, and an index from tag references to
//! manifest digests.
//!
//! Layout under the caller's cache directory:
//! - `blobs/sha256/<hex>`: manifests and layers, named by their digest;
//! - `index.json`: `{"<registry/repo:tag>": "sha256:<hex>"}`;
//! - `tmp/`: downloads in progress, renamed into `blobs/` once verified.
//!
//! Every blob read from the cache is hashed again: one that does not match
//! its name is removed and refused with [`Error::DigestMismatch`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::Error;

/// The `sha256:<hex>` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that `bytes` hash to `expected`; [`Error::DigestMismatch`] (naming
/// `reference`, the expected and the actual digest) when they do not.
pub fn verify(reference: &str, expected: &str, bytes: &[u8]) -> Result<(), Error> {
    let actual = sha256_digest(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            reference: reference.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}

/// The hex part of a `sha256:<64 lowercase hex>` digest: the only form
/// accepted (so a digest never names a path outside the cache).
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// Serialises read-modify-write of `index.json` within this process.
static INDEX_LOCK: Mutex<()> = Mutex::new(());
/// Makes temporary file names unique within this process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Cache {
    /// Opens (creating its folders) the cache at `root`.
    pub(crate) fn open(root: &Path) -> Result<Self, Error> {
        for dir in [root.join("blobs/sha256"), root.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Where the blob with `digest` is kept (the digest must be valid).
    pub(crate) fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        sha256_hex(digest).map(|hex| self.root.join("blobs/sha256").join(hex))
    }

    /// The cached blob `digest`, verified: `None` when absent; a mismatch is
    /// removed from the cache and refused.
    pub(crate) async fn read(
        &self,
        reference: &str,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let (reference, digest) = (reference.to_string(), digest.to_string());
        let checked = tokio::task::spawn_blocking(move || {
            verify(&reference, &digest, &bytes).map(|()| bytes)
        })
        .await
        .expect("hashing does not panic");
        match checked {
            Ok(bytes) => Ok(Some(bytes)),
            Err(mismatch) => {
                tracing::warn!(path = %path.display(), %mismatch, "removing a corrupt cached blob");
                let _ = std::fs::remove_file(&path);
                Err(mismatch)
            }
        }
    }

    /// Stores `bytes` as blob `digest` after checking they hash to it.
    pub(crate) fn put(
        &self,
        reference: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, Error> {
        verify(reference, digest, bytes)?;
        let mut writer = self.writer()?;
        writer.write(bytes)?;
        writer.commit(self, reference, digest)
    }

    /// A new temporary file that becomes a blob once verified.
    pub(crate) fn writer(&self) -> Result<BlobWriter, Error> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join(format!("tmp/{}-{n}", std::process::id()));
        let file = std::fs::File::create(&path).map_err(io_err(&path))?;
        Ok(BlobWriter {
            file,
            path,
            hasher: Sha256::new(),
            len: 0,
        })
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn load_index(&self) -> BTreeMap<String, String> {
        std::fs::read(self.index_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The manifest digest last resolved for a tag reference.
    pub(crate) fn index_get(&self, reference: &str) -> Option<String> {
        self.load_index().remove(reference)
    }

    /// Records that a tag reference resolved to `digest`.
    pub(crate) fn index_put(&self, reference: &str, digest: &str) -> Result<(), Error> {
        let _guard = INDEX_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.load_index();
        if index.get(reference).map(String::as_str) == Some(digest) {
            return Ok(());
        }
        index.insert(reference.to_string(), digest.to_string());
        let json = serde_json::to_vec_pretty(&index).expect("a map of strings serialises");
        let mut writer = self.writer()?;
        writer.write(&json)?;
        let target = self.index_path();
        std::fs::rename(&writer.path, &target).map_err(io_err(&target))
    }
}

/// A blob being written: hashed as it goes, renamed into place only when
/// its digest is the expected one.
#[derive(Debug)]
pub(crate) struct BlobWriter {
    file: std::fs::File,
    path: PathBuf,
    hasher: Sha256,
    len: u64,
}

impl BlobWriter {
    /// Appends a chunk.
    pub(crate) fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        self.file.write_all(chunk).map_err(io_err(&self.path))
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Verifies the digest and moves the file to its place in the cache; on
    /// a mismatch the file is deleted and the error names both digests.
    pub(crate) fn commit(
        self,
        cache: &Cache,
        reference: &str,
        digest: &str,
    ) -> Result<PathBuf, Error> {
        let actual = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        let target = cache.blob_path(digest);
        match target {
            Some(target) if actual == digest => {
                self.file.sync_all().map_err(io_err(&self.path))?;
                std::fs::rename(&self.path, &target).map_err(io_err(&target))?;
                Ok(target)
            }
            _ => {
                let _ = std::fs::remove_file(&self.path);
                Err(Error::DigestMismatch {
                    reference: reference.to_string(),
                    expected: digest.to_string(),
                    actual,
                })
            }
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful commit the file has moved and this fails harmlessly.
        let _ = std::fs::remove_file(&self.path);
    }
}
