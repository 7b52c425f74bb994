//! The directory a blobstore lives in: one subdirectory per container, one
//! file per object, and `.partial/` for bodies being written. Every name a
//! guest gives is checked before it becomes a path, so nothing outside the
//! directory can be named.
//!
//! Errors are the interface's strings and follow the `blobstore-s3`
//! extension where the interface leaves room: creating a container that
//! exists, opening, deleting or listing one that does not, and reading or
//! describing a missing object are errors; deleting a missing object is not.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::NamedTempFile;

/// Where bodies being written are staged (not a container name: those
/// never start with `.`).
const STAGING: &str = ".partial";

/// Longest container or object name, in bytes (a file name's limit).
const MAX_NAME: usize = 255;

/// Why `name` cannot name a container (`container`) or an object.
fn invalid(name: &str, container: bool) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not names")
    } else if name.contains(['/', '\\']) {
        Some("it contains a path separator")
    } else if name.contains('\0') {
        Some("it contains a NUL character")
    } else if name.len() > MAX_NAME {
        Some("it is longer than 255 bytes")
    } else if container && name.starts_with('.') {
        Some("a container name cannot start with `.`")
    } else {
        None
    }
}

/// The blobstore directory of one `host:` entry.
#[derive(Debug)]
pub(crate) struct Root {
    dir: PathBuf,
    /// Largest object a body may write.
    pub(crate) max_object_bytes: u64,
}

/// Seconds since the Unix epoch of a file's creation (its last change where
/// the file system keeps no creation time).
fn created(meta: &std::fs::Metadata) -> u64 {
    meta.created()
        .or_else(|_| meta.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch of a file's last change.
fn modified(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Root {
    /// The blobstore in `dir` (which must exist).
    pub(crate) fn new(dir: PathBuf, max_object_bytes: u64) -> Self {
        Self {
            dir,
            max_object_bytes,
        }
    }

    /// The directory of container `name`, checked.
    fn container(&self, name: &str) -> Result<PathBuf, String> {
        match invalid(name, true) {
            Some(why) => Err(format!("invalid container name {name:?}: {why}")),
            None => Ok(self.dir.join(name)),
        }
    }

    /// The directory of container `name`, which must exist.
    fn existing(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.container(name)?;
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(format!("container `{name}` does not exist"))
        }
    }

    /// The file of object `object` in container `container` (which must
    /// exist), checked.
    pub(crate) fn object(&self, container: &str, object: &str) -> Result<PathBuf, String> {
        let dir = self.existing(container)?;
        match invalid(object, false) {
            Some(why) => Err(format!("invalid object name {object:?}: {why}")),
            None => Ok(dir.join(object)),
        }
    }

    pub(crate) fn create_container(&self, name: &str) -> Result<(), String> {
        match std::fs::create_dir(self.container(name)?) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(format!("container `{name}` already exists"))
            }
            Err(err) => Err(format!("creating container `{name}`: {err}")),
        }
    }

    /// Checks that container `name` exists.
    pub(crate) fn open_container(&self, name: &str) -> Result<(), String> {
        self.existing(name).map(drop)
    }

    pub(crate) fn delete_container(&self, name: &str) -> Result<(), String> {
        std::fs::remove_dir_all(self.existing(name)?)
            .map_err(|err| format!("deleting container `{name}`: {err}"))
    }

    pub(crate) fn container_exists(&self, name: &str) -> Result<bool, String> {
        Ok(self.container(name)?.is_dir())
    }

    /// When container `name` was created.
    pub(crate) fn container_created(&self, name: &str) -> Result<u64, String> {
        let meta = std::fs::metadata(self.existing(name)?)
            .map_err(|err| format!("looking up container `{name}`: {err}"))?;
        Ok(created(&meta))
    }

    /// Every container, sorted by name, with when it was created.
    pub(crate) fn list_containers(&self) -> Result<Vec<(String, u64)>, String> {
        let mut out = Vec::new();
        for (name, meta) in self.entries(&self.dir, "listing containers")? {
            if meta.is_dir() && invalid(&name, true).is_none() {
                out.push((name, created(&meta)));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The names of container `name`'s objects, sorted.
    pub(crate) fn list_objects(&self, name: &str) -> Result<Vec<String>, String> {
        let dir = self.existing(name)?;
        let what = format!("listing container `{name}`");
        let mut out: Vec<String> = self
            .entries(&dir, &what)?
            .into_iter()
            .filter(|(_, meta)| meta.is_file())
            .map(|(name, _)| name)
            .collect();
        out.sort();
        Ok(out)
    }

    /// The entries of `dir` whose names are UTF-8, with their metadata.
    fn entries(&self, dir: &Path, what: &str) -> Result<Vec<(String, std::fs::Metadata)>, String> {
        let read = std::fs::read_dir(dir).map_err(|err| format!("{what}: {err}"))?;
        let mut out = Vec::new();
        for entry in read {
            let entry = entry.map_err(|err| format!("{what}: {err}"))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Ok(meta) = entry.metadata() {
                out.push((name, meta));
            }
        }
        Ok(out)
    }

    /// When object `object` was last written, and its size.
    pub(crate) fn object_info(&self, container: &str, object: &str) -> Result<(u64, u64), String> {
        let path = self.object(container, object)?;
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok((modified(&meta), meta.len())),
            _ => Err(missing(container, object)),
        }
    }

    pub(crate) fn has_object(&self, container: &str, object: &str) -> Result<bool, String> {
        Ok(self.object(container, object)?.is_file())
    }

    pub(crate) fn delete_objects(&self, container: &str, objects: &[String]) -> Result<(), String> {
        let paths = objects
            .iter()
            .map(|o| self.object(container, o))
            .collect::<Result<Vec<_>, _>>()?;
        for (path, object) in paths.iter().zip(objects) {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(format!("deleting `{object}` of `{container}`: {err}")),
            }
        }
        Ok(())
    }

    /// Deletes every object of container `name`.
    pub(crate) fn clear(&self, name: &str) -> Result<(), String> {
        let objects = self.list_objects(name)?;
        self.delete_objects(name, &objects)
    }

    /// Copies object `src` over `dest`, through a staged file.
    pub(crate) fn copy(&self, src: (&str, &str), dest: (&str, &str)) -> Result<(), String> {
        let from = self.object(src.0, src.1)?;
        self.object(dest.0, dest.1)?;
        if !from.is_file() {
            return Err(missing(src.0, src.1));
        }
        let staged = self.stage()?;
        std::fs::copy(&from, staged.path())
            .map_err(|err| format!("copying `{}` of `{}`: {err}", src.1, src.0))?;
        self.commit(staged, dest.0, dest.1)
    }

    /// Moves object `src` over `dest` (a rename).
    pub(crate) fn rename(&self, src: (&str, &str), dest: (&str, &str)) -> Result<(), String> {
        let from = self.object(src.0, src.1)?;
        let to = self.object(dest.0, dest.1)?;
        if !from.is_file() {
            return Err(missing(src.0, src.1));
        }
        std::fs::rename(&from, &to)
            .map_err(|err| format!("moving `{}` of `{}`: {err}", src.1, src.0))
    }

    /// Object `object` opened at `start` for reading up to offset `end`
    /// (included), and how many bytes that is. Every range of an empty
    /// object is empty; a range starting past a non-empty object's end is
    /// refused, as S3 does.
    pub(crate) fn open_range(
        &self,
        container: &str,
        object: &str,
        start: u64,
        end: u64,
    ) -> Result<(std::fs::File, u64), String> {
        let path = self.object(container, object)?;
        if end < start {
            return Err(format!("the range ends ({end}) before it starts ({start})"));
        }
        let mut file = match std::fs::File::open(&path) {
            Ok(file) if path.is_file() => file,
            _ => return Err(missing(container, object)),
        };
        let what = format!("reading `{object}` of `{container}`");
        let size = file
            .metadata()
            .map_err(|err| format!("{what}: {err}"))?
            .len();
        if size == 0 {
            return Ok((file, 0));
        }
        if start >= size {
            return Err(format!(
                "{what}: the range starts at {start}, past the object's {size} bytes"
            ));
        }
        file.seek(SeekFrom::Start(start))
            .map_err(|err| format!("{what}: {err}"))?;
        Ok((file, end.min(size - 1) - start + 1))
    }

    /// A new empty file to write a body to, in the staging directory (with
    /// the permissions of any new file: `0666` less the umask).
    pub(crate) fn stage(&self) -> Result<NamedTempFile, String> {
        let dir = self.dir.join(STAGING);
        let mut builder = tempfile::Builder::new();
        builder.prefix("body-");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        std::fs::create_dir_all(&dir)
            .and_then(|()| builder.tempfile_in(&dir))
            .map_err(|err| format!("cannot stage a body in {}: {err}", dir.display()))
    }

    /// Makes the staged file `staged` object `object` of `container` (the
    /// container's directory synced after the rename).
    pub(crate) fn commit(
        &self,
        staged: NamedTempFile,
        container: &str,
        object: &str,
    ) -> Result<(), String> {
        let path = self.object(container, object)?;
        let failed = |err: std::io::Error| format!("storing `{object}` of `{container}`: {err}");
        staged.persist(&path).map_err(|err| failed(err.error))?;
        std::fs::File::open(self.dir.join(container))
            .and_then(|dir| dir.sync_all())
            .map_err(failed)
    }
}

/// The error for a missing object.
fn missing(container: &str, object: &str) -> String {
    format!("object `{object}` of container `{container}` does not exist")
}

/// Reads `len` bytes of `file` from where it is.
pub(crate) fn read_exact(mut file: std::fs::File, len: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(len as usize);
    file.by_ref()
        .take(len)
        .read_to_end(&mut out)
        .map_err(|err| format!("reading the object: {err}"))?;
    Ok(out)
}
