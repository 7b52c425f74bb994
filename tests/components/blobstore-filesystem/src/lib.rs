//! A library component exporting `wasi:blobstore@0.2.0-draft` (`blobstore`,
//! `container`, `types`) on a directory: the component's first preopened
//! directory, reached through `wasi:filesystem@0.2.6`.
//!
//! Layout, relative to the preopen:
//!
//! - a container is a subdirectory `<container>/`, an object a regular file
//!   `<container>/<object>` in it (other entries of a container directory
//!   are not objects and are left alone, except by `delete-container`);
//! - `.blobstore-partial/` holds bodies being written (and ranges being read
//!   as streams): an `outgoing-value` gets its body stream before anyone
//!   says which container it goes to, so its file is created here and
//!   renamed to `<container>/<object>` by `finish`. The name is refused as a
//!   container name.
//!
//! Names are refused when empty, `.` or `..`, longer than 255 bytes, or
//! when they contain `/`, `\` or NUL; every failure is the WIT's `error`
//! string, never a trap.
//!
//! The `wasi:io` streams of bodies are the host's own file streams
//! (`descriptor.write-via-stream` / `read-via-stream`): this component
//! imports `wasi:io/streams`, the interface its exported `types` uses, and
//! hands out the handles `wasi:filesystem` gives it. See `values.rs`.
//!
//! It also exports `blobstore-s3:admin/containers`: `list-containers` lists
//! the container directories, with their modification time as `created-at`.

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit/io", "../../../wit/blobstore", "../../../wit/blobstore-admin", "wit"],
        world: "test:blobstore-filesystem/component",
        generate_all,
    });
}

mod container;
mod fs;
mod values;

use bindings::exports::blobstore_s3::admin::containers::{ContainerInfo, Guest as AdminGuest};
use bindings::exports::wasi::blobstore::blobstore::Guest as BlobstoreGuest;
use bindings::exports::wasi::blobstore::container::{Container, Guest as ContainerGuest};
use bindings::exports::wasi::blobstore::types::{Error, Guest as TypesGuest, ObjectId};
use bindings::wasi::filesystem::types::{DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags};

use container::{FsContainer, FsNames};
use fs::{check_container, check_object, failed, object_path, require_container, with_root};
use values::{FsIncoming, FsOutgoing};

struct Component;

impl TypesGuest for Component {
    type OutgoingValue = FsOutgoing;
    type IncomingValue = FsIncoming;
}

impl ContainerGuest for Component {
    type Container = FsContainer;
    type StreamObjectNames = FsNames;
}

impl BlobstoreGuest for Component {
    fn create_container(name: String) -> Result<Container, Error> {
        check_container(&name)?;
        with_root(|root| match root.create_directory_at(&name) {
            Ok(()) => Ok(()),
            Err(ErrorCode::Exist) => Err(format!("container `{name}` already exists")),
            Err(e) => Err(failed(&format!("creating container `{name}`"), e)),
        })?;
        Ok(Container::new(FsContainer::new(name)))
    }

    fn get_container(name: String) -> Result<Container, Error> {
        check_container(&name)?;
        with_root(|root| require_container(root, &name))?;
        Ok(Container::new(FsContainer::new(name)))
    }

    fn delete_container(name: String) -> Result<(), Error> {
        check_container(&name)?;
        with_root(|root| {
            require_container(root, &name)?;
            fs::remove_tree(root, &name)
        })
    }

    fn container_exists(name: String) -> Result<bool, Error> {
        check_container(&name)?;
        with_root(|root| match fs::stat_at(root, &name) {
            Ok(Some(stat)) => Ok(stat.type_ == DescriptorType::Directory),
            Ok(None) => Ok(false),
            Err(e) => Err(failed(&format!("looking up container `{name}`"), e)),
        })
    }

    fn copy_object(src: ObjectId, dest: ObjectId) -> Result<(), Error> {
        check_id(&src)?;
        check_id(&dest)?;
        with_root(|root| {
            require_container(root, &src.container)?;
            require_container(root, &dest.container)?;
            let from = object_path(&src.container, &src.object);
            let file = match root.open_at(PathFlags::empty(), &from, OpenFlags::empty(), DescriptorFlags::READ) {
                Ok(file) => file,
                Err(ErrorCode::NoEntry) => return Err(fs::no_object(&src.container, &src.object)),
                Err(e) => return Err(failed(&format!("opening `{from}`"), e)),
            };
            let stat = file.stat().map_err(|e| failed(&format!("looking up `{from}`"), e))?;
            if stat.type_ != DescriptorType::RegularFile {
                return Err(fs::no_object(&src.container, &src.object));
            }
            let mut partial = fs::Partial::create(root)?;
            fs::copy_range(&file, 0, stat.size, partial.file(), &from)?;
            partial.rename_to(root, &dest.container, &dest.object)
        })
    }

    fn move_object(src: ObjectId, dest: ObjectId) -> Result<(), Error> {
        check_id(&src)?;
        check_id(&dest)?;
        with_root(|root| {
            require_container(root, &src.container)?;
            require_container(root, &dest.container)?;
            let from = object_path(&src.container, &src.object);
            match fs::stat_at(root, &from) {
                Ok(Some(stat)) if stat.type_ == DescriptorType::RegularFile => {}
                Ok(_) => return Err(fs::no_object(&src.container, &src.object)),
                Err(e) => return Err(failed(&format!("looking up `{from}`"), e)),
            }
            let to = object_path(&dest.container, &dest.object);
            if from == to {
                return Ok(());
            }
            root.rename_at(&from, root, &to)
                .map_err(|e| failed(&format!("moving `{from}` to `{to}`"), e))
        })
    }
}

impl AdminGuest for Component {
    fn list_containers() -> Result<Vec<ContainerInfo>, String> {
        with_root(|root| {
            let mut containers = Vec::new();
            for entry in fs::entries(root, ".")? {
                if entry.type_ != DescriptorType::Directory || check_container(&entry.name).is_err() {
                    continue;
                }
                let stat = require_container(root, &entry.name)?;
                containers.push(ContainerInfo {
                    created_at: fs::modified(&stat),
                    name: entry.name,
                });
            }
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(containers)
        })
    }
}

fn check_id(id: &ObjectId) -> Result<(), Error> {
    check_container(&id.container)?;
    check_object(&id.object)
}

bindings::export!(Component with_types_in bindings);
