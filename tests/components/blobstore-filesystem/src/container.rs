//! `wasi:blobstore/container`: a container is a directory, its objects the
//! regular files in it.

use std::cell::{Cell, RefCell};

use crate::bindings::exports::wasi::blobstore::container::{
    GuestContainer, GuestStreamObjectNames, IncomingValue, OutgoingValueBorrow, StreamObjectNames,
};
use crate::bindings::exports::wasi::blobstore::types::{ContainerMetadata, Error, ObjectMetadata};
use crate::bindings::wasi::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, DirectoryEntryStream, ErrorCode, OpenFlags, PathFlags,
};
use crate::fs::{self, check_object, failed, no_object, object_path, require_container, with_root};
use crate::values::{FsIncoming, FsOutgoing};

/// An open container: its name; every call looks the directory up again, so
/// a container deleted meanwhile gives "does not exist" errors.
pub struct FsContainer {
    name: String,
}

impl FsContainer {
    pub fn new(name: String) -> Self {
        FsContainer { name }
    }

    fn path(&self, object: &str) -> String {
        object_path(&self.name, object)
    }

    /// The regular files of the container.
    fn objects(&self, root: &Descriptor) -> Result<Vec<String>, String> {
        require_container(root, &self.name)?;
        let dir = fs::open_dir(root, &self.name)?;
        Ok(fs::entries(&dir, &self.name)?
            .into_iter()
            .filter(|e| e.type_ == DescriptorType::RegularFile)
            .map(|e| e.name)
            .collect())
    }
}

impl GuestContainer for FsContainer {
    fn name(&self) -> Result<String, Error> {
        Ok(self.name.clone())
    }

    fn info(&self) -> Result<ContainerMetadata, Error> {
        let stat = with_root(|root| require_container(root, &self.name))?;
        Ok(ContainerMetadata {
            name: self.name.clone(),
            // WASI exposes no birth time: the directory's last modification
            // (its creation, until objects are added or removed).
            created_at: fs::modified(&stat),
        })
    }

    fn get_data(&self, name: String, start: u64, end: u64) -> Result<IncomingValue, Error> {
        check_object(&name)?;
        if start > end {
            return Err(format!("get-data of `{name}`: start {start} is after end {end}"));
        }
        with_root(|root| {
            let path = self.path(&name);
            let file = match root.open_at(PathFlags::empty(), &path, OpenFlags::empty(), DescriptorFlags::READ) {
                Ok(file) => file,
                Err(ErrorCode::NoEntry | ErrorCode::NotDirectory) => {
                    require_container(root, &self.name)?;
                    return Err(no_object(&self.name, &name));
                }
                Err(e) => return Err(failed(&format!("opening `{path}`"), e)),
            };
            let stat = file.stat().map_err(|e| failed(&format!("looking up `{path}`"), e))?;
            if stat.type_ != DescriptorType::RegularFile {
                return Err(no_object(&self.name, &name));
            }
            // Both ends included, clamped to the object.
            let len = if start >= stat.size {
                0
            } else {
                end.min(stat.size - 1) - start + 1
            };
            Ok(IncomingValue::new(FsIncoming::new(path, file, start, len, stat.size)))
        })
    }

    fn write_data(&self, name: String, data: OutgoingValueBorrow<'_>) -> Result<(), Error> {
        check_object(&name)?;
        with_root(|root| require_container(root, &self.name))?;
        data.get::<FsOutgoing>().set_target(&self.name, &name)
    }

    fn list_objects(&self) -> Result<StreamObjectNames, Error> {
        let (dir, entries) = with_root(|root| {
            require_container(root, &self.name)?;
            let dir = fs::open_dir(root, &self.name)?;
            let entries = dir
                .read_directory()
                .map_err(|e| failed(&format!("listing container `{}`", self.name), e))?;
            Ok((dir, entries))
        })?;
        Ok(StreamObjectNames::new(FsNames {
            container: self.name.clone(),
            _dir: dir,
            entries,
            peeked: RefCell::new(None),
            done: Cell::new(false),
        }))
    }

    fn delete_object(&self, name: String) -> Result<(), Error> {
        check_object(&name)?;
        with_root(|root| {
            require_container(root, &self.name)?;
            fs::unlink(root, &self.path(&name))
        })
    }

    fn delete_objects(&self, names: Vec<String>) -> Result<(), Error> {
        for name in &names {
            check_object(name)?;
        }
        with_root(|root| {
            require_container(root, &self.name)?;
            // Every name is tried; the first failure is reported.
            let mut first = Ok(());
            for name in &names {
                if let Err(e) = fs::unlink(root, &self.path(name)) {
                    first = first.and(Err(e));
                }
            }
            first
        })
    }

    fn has_object(&self, name: String) -> Result<bool, Error> {
        check_object(&name)?;
        with_root(|root| {
            require_container(root, &self.name)?;
            let path = self.path(&name);
            match fs::stat_at(root, &path) {
                Ok(stat) => Ok(stat.is_some_and(|s| s.type_ == DescriptorType::RegularFile)),
                Err(e) => Err(failed(&format!("looking up `{path}`"), e)),
            }
        })
    }

    fn object_info(&self, name: String) -> Result<ObjectMetadata, Error> {
        check_object(&name)?;
        with_root(|root| {
            require_container(root, &self.name)?;
            let path = self.path(&name);
            match fs::stat_at(root, &path) {
                Ok(Some(stat)) if stat.type_ == DescriptorType::RegularFile => Ok(ObjectMetadata {
                    name: name.clone(),
                    container: self.name.clone(),
                    // Objects are replaced by renaming a fully written file:
                    // its last modification is when it was written.
                    created_at: fs::modified(&stat),
                    size: stat.size,
                }),
                Ok(_) => Err(no_object(&self.name, &name)),
                Err(e) => Err(failed(&format!("looking up `{path}`"), e)),
            }
        })
    }

    fn clear(&self) -> Result<(), Error> {
        with_root(|root| {
            for name in self.objects(root)? {
                fs::unlink(root, &self.path(&name))?;
            }
            Ok(())
        })
    }
}

/// The names of a container's objects, read from its directory as the
/// caller asks for them; one name is looked ahead to tell the end.
pub struct FsNames {
    container: String,
    _dir: Descriptor,
    entries: DirectoryEntryStream,
    peeked: RefCell<Option<String>>,
    done: Cell<bool>,
}

impl FsNames {
    fn next(&self) -> Result<Option<String>, Error> {
        if let Some(name) = self.peeked.borrow_mut().take() {
            return Ok(Some(name));
        }
        while !self.done.get() {
            match self.entries.read_directory_entry() {
                Ok(Some(e)) if e.type_ == DescriptorType::RegularFile => return Ok(Some(e.name)),
                Ok(Some(_)) => {}
                Ok(None) => self.done.set(true),
                Err(e) => return Err(failed(&format!("listing container `{}`", self.container), e)),
            }
        }
        Ok(None)
    }

    fn at_end(&self) -> Result<bool, Error> {
        if self.peeked.borrow().is_some() {
            return Ok(false);
        }
        let next = self.next()?;
        let end = next.is_none();
        *self.peeked.borrow_mut() = next;
        Ok(end)
    }
}

impl GuestStreamObjectNames for FsNames {
    fn read_stream_object_names(&self, len: u64) -> Result<(Vec<String>, bool), Error> {
        let mut names = Vec::new();
        while (names.len() as u64) < len {
            match self.next()? {
                Some(name) => names.push(name),
                None => break,
            }
        }
        Ok((names, self.at_end()?))
    }

    fn skip_stream_object_names(&self, num: u64) -> Result<(u64, bool), Error> {
        let mut skipped = 0;
        while skipped < num && self.next()?.is_some() {
            skipped += 1;
        }
        Ok((skipped, self.at_end()?))
    }
}
