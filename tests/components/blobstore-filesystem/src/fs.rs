//! The directory under the blobstore: the preopen, names, paths, errors,
//! partial files and copies.

use std::cell::{Cell, OnceCell};

use crate::bindings::wasi::clocks::wall_clock;
use crate::bindings::wasi::filesystem::preopens;
use crate::bindings::wasi::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode, OpenFlags, PathFlags,
};

/// Where bodies being written (and ranges being streamed) live, relative to
/// the preopen. Refused as a container name.
pub const PARTIAL_DIR: &str = ".blobstore-partial";

/// The longest container or object name, in bytes (NAME_MAX).
pub const MAX_NAME: usize = 255;

/// How many bytes a copy moves at a time.
const CHUNK: u64 = 1 << 20;

thread_local! {
    static ROOT: OnceCell<Result<Descriptor, String>> = const { OnceCell::new() };
    static COUNTER: Cell<u64> = const { Cell::new(0) };
    static SWEPT: Cell<bool> = const { Cell::new(false) };
}

/// Partial files untouched for this long are left over by an instance that
/// ended mid-write (no destructor ran), and removed.
const ABANDONED_SECS: u64 = 24 * 60 * 60;

/// Runs `f` on the first preopened directory (looked up once).
pub fn with_root<T>(f: impl FnOnce(&Descriptor) -> Result<T, String>) -> Result<T, String> {
    ROOT.with(|cell| {
        let root = cell.get_or_init(|| {
            preopens::get_directories()
                .into_iter()
                .next()
                .map(|(dir, _)| dir)
                .ok_or_else(|| "the blobstore has no directory: no preopened directory".to_string())
        });
        match root {
            Ok(dir) => f(dir),
            Err(e) => Err(e.clone()),
        }
    })
}

/// `what` failed with `e`, as an `error` string.
pub fn failed(what: &str, e: ErrorCode) -> String {
    format!("{what}: {} ({})", e.name(), e.message())
}

pub fn no_object(container: &str, object: &str) -> String {
    format!("object `{object}` not found in container `{container}`")
}

fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} name is empty"));
    }
    if name.len() > MAX_NAME {
        let start: String = name.chars().take(32).collect();
        return Err(format!(
            "{kind} name `{start}…` is {} bytes long, longer than {MAX_NAME}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{kind} name `{name}` is not allowed"));
    }
    for (c, what) in [('/', "`/`"), ('\\', "`\\`"), ('\0', "a NUL byte")] {
        if name.contains(c) {
            return Err(format!("{kind} name `{}` contains {what}", name.escape_debug()));
        }
    }
    Ok(())
}

pub fn check_container(name: &str) -> Result<(), String> {
    check_name("container", name)?;
    if name == PARTIAL_DIR {
        return Err(format!("container name `{name}` is reserved"));
    }
    Ok(())
}

pub fn check_object(name: &str) -> Result<(), String> {
    check_name("object", name)
}

/// An object's path relative to the preopen (both names checked).
pub fn object_path(container: &str, object: &str) -> String {
    format!("{container}/{object}")
}

/// `stat-at` without following a final symlink; `None` when nothing is there.
pub fn stat_at(root: &Descriptor, path: &str) -> Result<Option<DescriptorStat>, ErrorCode> {
    match root.stat_at(PathFlags::empty(), path) {
        Ok(stat) => Ok(Some(stat)),
        Err(ErrorCode::NoEntry | ErrorCode::NotDirectory) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The stat of container `name`, or an error saying it does not exist.
pub fn require_container(root: &Descriptor, name: &str) -> Result<DescriptorStat, String> {
    match stat_at(root, name) {
        Ok(Some(stat)) if stat.type_ == DescriptorType::Directory => Ok(stat),
        Ok(_) => Err(format!("container `{name}` does not exist")),
        Err(e) => Err(failed(&format!("looking up container `{name}`"), e)),
    }
}

/// Seconds since the epoch of the last modification, 0 if unknown.
pub fn modified(stat: &DescriptorStat) -> u64 {
    stat.data_modification_timestamp.map_or(0, |t| t.seconds)
}

pub fn open_dir(root: &Descriptor, path: &str) -> Result<Descriptor, String> {
    root.open_at(PathFlags::empty(), path, OpenFlags::DIRECTORY, DescriptorFlags::READ)
        .map_err(|e| failed(&format!("opening directory `{path}`"), e))
}

/// Every entry of `dir` but `.` and `..`.
pub fn entries(dir: &Descriptor, path: &str) -> Result<Vec<DirectoryEntry>, String> {
    let what = || format!("listing `{path}`");
    let stream = dir.read_directory().map_err(|e| failed(&what(), e))?;
    let mut out = Vec::new();
    while let Some(entry) = stream.read_directory_entry().map_err(|e| failed(&what(), e))? {
        if entry.name != "." && entry.name != ".." {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Removes the file `path`; a missing one is not an error.
pub fn unlink(root: &Descriptor, path: &str) -> Result<(), String> {
    match root.unlink_file_at(path) {
        Ok(()) | Err(ErrorCode::NoEntry) => Ok(()),
        Err(ErrorCode::IsDirectory) => Err(format!("`{path}` is a directory, not an object")),
        Err(e) => Err(failed(&format!("deleting `{path}`"), e)),
    }
}

/// Removes directory `path` and everything in it.
pub fn remove_tree(root: &Descriptor, path: &str) -> Result<(), String> {
    let dir = open_dir(root, path)?;
    for entry in entries(&dir, path)? {
        let child = format!("{path}/{}", entry.name);
        if entry.type_ == DescriptorType::Directory {
            remove_tree(root, &child)?;
        } else {
            unlink(root, &child)?;
        }
    }
    drop(dir);
    root.remove_directory_at(path)
        .map_err(|e| failed(&format!("removing directory `{path}`"), e))
}

/// Copies `len` bytes of `src` from `start` to the start of `dst`, a chunk
/// at a time (`src_name` names the source in errors).
pub fn copy_range(src: &Descriptor, start: u64, len: u64, dst: &Descriptor, src_name: &str) -> Result<(), String> {
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(CHUNK);
        let (bytes, _eof) = src
            .read(want, start + done)
            .map_err(|e| failed(&format!("reading `{src_name}`"), e))?;
        if bytes.is_empty() {
            return Err(format!("`{src_name}` ended {} bytes early", len - done));
        }
        let mut written = 0usize;
        while written < bytes.len() {
            let n = dst
                .write(&bytes[written..], done + written as u64)
                .map_err(|e| failed("writing a partial file", e))?;
            if n == 0 {
                return Err("writing a partial file: no progress".into());
            }
            written += n as usize;
        }
        done += bytes.len() as u64;
    }
    Ok(())
}

/// `len` bytes of `src` from `start`, in memory.
pub fn read_range(src: &Descriptor, start: u64, len: u64, src_name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        let want = (len - out.len() as u64).min(CHUNK);
        let (bytes, _eof) = src
            .read(want, start + out.len() as u64)
            .map_err(|e| failed(&format!("reading `{src_name}`"), e))?;
        if bytes.is_empty() {
            return Err(format!("`{src_name}` ended {} bytes early", len - out.len() as u64));
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// Removes the partial files nobody wrote for `ABANDONED_SECS` (once per
/// instance; failures are ignored).
fn sweep_abandoned(root: &Descriptor) {
    let Some(cutoff) = wall_clock::now().seconds.checked_sub(ABANDONED_SECS) else {
        return;
    };
    let Ok(dir) = open_dir(root, PARTIAL_DIR) else {
        return;
    };
    for entry in entries(&dir, PARTIAL_DIR).unwrap_or_default() {
        let path = format!("{PARTIAL_DIR}/{}", entry.name);
        if let Ok(Some(stat)) = stat_at(root, &path) {
            let age_known = modified(&stat) != 0;
            if stat.type_ == DescriptorType::RegularFile && age_known && modified(&stat) < cutoff {
                let _ = root.unlink_file_at(&path);
            }
        }
    }
}

/// A file in `.blobstore-partial/`, unlinked when dropped unless it was
/// renamed into a container or unlinked already.
pub struct Partial {
    path: String,
    file: Option<Descriptor>,
    linked: bool,
}

impl Partial {
    /// A new, empty file with a name nobody else has.
    pub fn create(root: &Descriptor) -> Result<Self, String> {
        match root.create_directory_at(PARTIAL_DIR) {
            Ok(()) | Err(ErrorCode::Exist) => {}
            Err(e) => return Err(failed(&format!("creating directory `{PARTIAL_DIR}`"), e)),
        }
        if !SWEPT.with(|s| s.replace(true)) {
            sweep_abandoned(root);
        }
        for _ in 0..16 {
            let now = wall_clock::now();
            let n = COUNTER.with(|c| {
                let n = c.get();
                c.set(n + 1);
                n
            });
            let path = format!("{PARTIAL_DIR}/{:x}.{:08x}.{n:x}", now.seconds, now.nanoseconds);
            match root.open_at(
                PathFlags::empty(),
                &path,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::READ | DescriptorFlags::WRITE,
            ) {
                Ok(file) => return Ok(Partial { path, file: Some(file), linked: true }),
                Err(ErrorCode::Exist) => continue,
                Err(e) => return Err(failed(&format!("creating `{path}`"), e)),
            }
        }
        Err(format!("no free name for a partial file in `{PARTIAL_DIR}`"))
    }

    pub fn file(&self) -> &Descriptor {
        self.file.as_ref().expect("a partial file is open until it is taken")
    }

    /// Makes it object `object` of `container` (replacing any).
    pub fn rename_to(&mut self, root: &Descriptor, container: &str, object: &str) -> Result<(), String> {
        require_container(root, container)?;
        let to = object_path(container, object);
        root.rename_at(&self.path, root, &to).map_err(|e| match e {
            ErrorCode::IsDirectory | ErrorCode::NotEmpty | ErrorCode::Exist => {
                format!("`{to}` is a directory, not an object")
            }
            e => failed(&format!("storing `{to}`"), e),
        })?;
        self.linked = false;
        Ok(())
    }

    /// Removes its name now; the open descriptor stays readable.
    pub fn unlink_keep_open(mut self, root: &Descriptor) -> Descriptor {
        if root.unlink_file_at(&self.path).is_ok() {
            self.linked = false;
        }
        // A name that could not be removed now is tried again on drop.
        self.file.take().expect("a partial file is open until it is taken")
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.linked {
            let path = &self.path;
            let _ = with_root(|root| Ok(root.unlink_file_at(path)));
        }
    }
}
