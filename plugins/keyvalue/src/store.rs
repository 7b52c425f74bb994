//! A store as the plugin serves it: its data behind a lock, shared by every
//! Wasmtime store of the workloads using it, and the file it is kept in.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::data::{Data, Limits};
use crate::file;

/// One store's data, and where it is saved (if anywhere).
pub(crate) struct Shared {
    data: Mutex<Data>,
    file: Option<Saved>,
}

/// The file a store is saved in, and the version of the data it holds.
struct Saved {
    path: PathBuf,
    /// Held while saving: writers that finish together share one save.
    version: tokio::sync::Mutex<u64>,
}

impl Shared {
    /// A store in memory only.
    pub(crate) fn in_memory() -> Self {
        Self {
            data: Mutex::new(Data::default()),
            file: None,
        }
    }

    /// The store kept in `path`, loaded from it.
    ///
    /// # Errors
    ///
    /// The file cannot be read or is not a keyvalue file (named).
    pub(crate) fn load(path: PathBuf) -> Result<Self, String> {
        let data = file::load(&path)?;
        Ok(Self {
            file: Some(Saved {
                version: tokio::sync::Mutex::new(data.version),
                path,
            }),
            data: Mutex::new(data),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Saves the data unless its file already holds this version. Returns
    /// once the file holds every change made before the call.
    async fn save(&self) -> Result<(), String> {
        let Some(saved) = &self.file else {
            return Ok(());
        };
        let mut version = saved.version.lock().await;
        let (latest, bytes) = {
            let data = self.lock();
            if data.version == *version {
                return Ok(());
            }
            (data.version, file::encode(&data))
        };
        let path = saved.path.clone();
        let written = tokio::task::spawn_blocking(move || file::save(&path, &bytes)).await;
        match written {
            Ok(Ok(())) => {
                *version = latest;
                Ok(())
            }
            Ok(Err(err)) => Err(format!("cannot save {}: {err}", saved.path.display())),
            Err(err) => Err(format!("cannot save {}: {err}", saved.path.display())),
        }
    }
}

/// What one `host:` entry serves: a store, and the bounds its writes are
/// checked against.
pub(crate) struct Kv {
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: Limits,
}

impl Kv {
    /// Reads the data.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Data) -> T) -> T {
        f(&self.shared.lock())
    }

    /// Changes the data, then saves it (with `path:`) before returning. A
    /// change that cannot be saved stays in memory, and the error names
    /// the file; the next save that succeeds writes it too.
    pub(crate) async fn write<T>(
        &self,
        f: impl FnOnce(&mut Data, &Limits) -> Result<T, String>,
    ) -> Result<T, String> {
        let out = f(&mut self.shared.lock(), &self.limits);
        let saved = self.shared.save().await;
        let out = out?;
        saved.map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_change_is_in_the_file_when_the_write_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let kv = Kv {
            shared: Arc::new(Shared::load(path.clone()).unwrap()),
            limits: Limits::default(),
        };
        kv.write(|d, l| d.set(l, "b", "k", b"v".to_vec()))
            .await
            .unwrap();
        kv.write(|d, l| d.increment(l, "b", "n", 7)).await.unwrap();
        let err = kv
            .write(|d, l| d.set(l, "b", "big", vec![0; 2 << 20]))
            .await
            .unwrap_err();
        assert!(err.contains("max_value_bytes"), "{err}");
        let back = Shared::load(path).unwrap();
        assert_eq!(back.lock().get("b", "k"), Some(&b"v"[..]));
        assert_eq!(back.lock().get("b", "n"), Some(&b"7"[..]));
        assert_eq!(back.lock().usage(), (2, 4));
    }

    #[tokio::test]
    async fn a_save_that_fails_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone/kv.db");
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        let kv = Kv {
            shared: Arc::new(Shared::load(path.clone()).unwrap()),
            limits: Limits::default(),
        };
        std::fs::remove_dir(dir.path().join("gone")).unwrap();
        let err = kv
            .write(|d, l| d.set(l, "b", "k", Vec::new()))
            .await
            .unwrap_err();
        assert!(
            err.starts_with(&format!("cannot save {}: ", path.display())),
            "{err}"
        );
        assert_eq!(kv.read(|d| d.usage()), (1, 1), "kept in memory");
    }
}
