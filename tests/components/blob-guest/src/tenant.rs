//! Two tenants sharing container names: `seed` stores the victim's objects,
//! `intrude` (run as another tenant) tries every blobstore operation on them,
//! `intact` (run as the victim again) checks nothing changed.

use std::collections::BTreeSet;

use crate::bindings::blobstore_s3::admin::containers;
use crate::bindings::wasi::blobstore::blobstore;
use crate::bindings::wasi::blobstore::types::ObjectId;
use crate::{check, env_str, fail, list_all, read_sync, write_object_bytes};

/// The victim's objects.
const OBJECTS: [(&str, &[u8]); 2] = [("secret", b"victim data"), ("keep", b"keep me")];

fn id(container: &str, object: &str) -> ObjectId {
    ObjectId {
        container: container.to_string(),
        object: object.to_string(),
    }
}

/// `SCENARIO=seed`: container `CONTAINER` with the victim's objects.
pub fn seed() {
    let name = env_str("CONTAINER", "shared");
    let container = check("create-container", blobstore::create_container(&name));
    for (object, data) in OBJECTS {
        check(&format!("writing `{object}`"), write_object_bytes(&container, object, data));
    }
    println!("seed: ok");
}

/// `SCENARIO=intrude`: every operation on the victim's container and
/// objects, by their names; none may reach them.
pub fn intrude() {
    let name = env_str("CONTAINER", "shared");
    if check("container-exists", blobstore::container_exists(&name)) {
        fail("container-exists sees another tenant's container");
    }
    if blobstore::get_container(&name).is_ok() {
        fail("get-container opened another tenant's container");
    }
    let listed = check("list-containers", containers::list_containers());
    if !listed.is_empty() {
        fail(format!("list-containers lists another tenant's containers: {listed:?}"));
    }
    if blobstore::copy_object(&id(&name, "secret"), &id(&name, "stolen")).is_ok() {
        fail("copy-object copied from another tenant's container");
    }
    if blobstore::move_object(&id(&name, "secret"), &id(&name, "stolen")).is_ok() {
        fail("move-object moved from another tenant's container");
    }
    // Deleting by name reaches at most this tenant's own (absent) container;
    // `intact` shows the victim's is still there.
    let _ = blobstore::delete_container(&name);
    // The same name, created now, is this tenant's own, empty container.
    let container = check("create-container", blobstore::create_container(&name));
    let names = check("listing", list_all(&container, 100));
    if !names.is_empty() {
        fail(format!("list-objects lists another tenant's objects: {names:?}"));
    }
    for (object, _) in OBJECTS {
        if check(&format!("has-object `{object}`"), container.has_object(object)) {
            fail(format!("has-object sees another tenant's `{object}`"));
        }
        if container.object_info(object).is_ok() {
            fail(format!("object-info reads another tenant's `{object}`"));
        }
        if read_sync(&container, object, 0, u64::MAX).is_ok() {
            fail(format!("get-data reads another tenant's `{object}`"));
        }
    }
    // Writes, copies, moves and deletes that would damage the victim's
    // objects if they reached them.
    check("write-data", write_object_bytes(&container, "secret", b"intruder"));
    check("copy-object", blobstore::copy_object(&id(&name, "secret"), &id(&name, "keep")));
    check("move-object", blobstore::move_object(&id(&name, "keep"), &id(&name, "moved")));
    check("delete-object", container.delete_object("secret"));
    check("delete-objects", container.delete_objects(&["keep".to_string(), "moved".to_string()]));
    check("clear", container.clear());
    check("delete-container", blobstore::delete_container(&name));
    println!("intrude: ok");
}

/// `SCENARIO=intact`: the victim's container and objects as `seed` left them.
pub fn intact() {
    let name = env_str("CONTAINER", "shared");
    let container = check("get-container", blobstore::get_container(&name));
    let names: BTreeSet<String> = check("listing", list_all(&container, 100)).into_iter().collect();
    let want: BTreeSet<String> = OBJECTS.iter().map(|(o, _)| (*o).to_string()).collect();
    if names != want {
        fail(format!("listing: {names:?}, expected {want:?}"));
    }
    for (object, data) in OBJECTS {
        let got = check(&format!("reading `{object}`"), read_sync(&container, object, 0, u64::MAX));
        if got != data {
            fail(format!("`{object}` was changed: {:?}", String::from_utf8_lossy(&got)));
        }
    }
    println!("intact: ok");
}
