//! `wasi:blobstore@0.2.0-draft` and `blobstore-s3:admin/containers@0.1.0`
//! for guests, on the directory of the running member's `host:` entry (in
//! its slots). Bodies are `wasi:io` streams (see [`crate::body`]); the file
//! system is used from Tokio's blocking threads.

use std::collections::VecDeque;
use std::sync::Arc;

use host_plugin::Ctx;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::body::Upload;
use crate::root::Root;

#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package local:blobstore-host;
            world host {
                import wasi:blobstore/blobstore@0.2.0-draft;
                import blobstore-s3:admin/containers@0.1.0;
            }
        ",
        path: ["../../wit/io", "../../wit/blobstore", "../../wit/blobstore-admin"],
        world: "local:blobstore-host/host",
        imports: { default: async | trappable },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/container.container": crate::host::Container,
            "wasi:blobstore/container.stream-object-names": crate::host::ObjectNames,
            "wasi:blobstore/types.outgoing-value": crate::host::OutgoingValue,
            "wasi:blobstore/types.incoming-value": crate::host::IncomingValue,
        },
    });
}

use bindings::blobstore_s3::admin::containers::{self, ContainerInfo};
use bindings::wasi::blobstore::types::{Error, ObjectId};
use bindings::wasi::blobstore::{blobstore, container, types};

/// An open container: its name.
pub struct Container {
    pub(crate) name: String,
}

/// A container's object names, as they were when it was listed.
pub struct ObjectNames(pub(crate) VecDeque<String>);

/// A body being written: where it goes once `write-data` named it, and its
/// upload once the guest took its stream.
pub struct OutgoingValue {
    pub(crate) target: Option<(String, String)>,
    pub(crate) upload: Option<Upload>,
    pub(crate) body_taken: bool,
}

/// A body to read: the object's file opened at the range's start, and how
/// many bytes the range holds.
pub struct IncomingValue {
    pub(crate) file: std::fs::File,
    pub(crate) len: u64,
}

/// A member's blobstore directory, in its slots.
pub(crate) struct BlobSlot(pub(crate) Arc<Root>);

pub(crate) struct Blobstore;

impl HasData for Blobstore {
    type Data<'a> = BlobView<'a>;
}

/// What the host functions borrow from the store's data.
pub(crate) struct BlobView<'a> {
    root: Option<Arc<Root>>,
    pub(crate) table: &'a mut ResourceTable,
}

fn view(ctx: &mut Ctx) -> BlobView<'_> {
    let root = ctx.get::<BlobSlot>().map(|slot| Arc::clone(&slot.0));
    BlobView {
        root,
        table: ctx.table(),
    }
}

/// Adds the interfaces among `claimed` (instance names) to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>, claimed: &[String]) -> wasmtime::Result<()> {
    let has = |prefix: &str| claimed.iter().any(|c| c.starts_with(prefix));
    if has("wasi:blobstore/types@") {
        types::add_to_linker::<Ctx, Blobstore>(linker, view)?;
    }
    if has("wasi:blobstore/container@") {
        container::add_to_linker::<Ctx, Blobstore>(linker, view)?;
    }
    if has("wasi:blobstore/blobstore@") {
        blobstore::add_to_linker::<Ctx, Blobstore>(linker, view)?;
    }
    if has("blobstore-s3:admin/containers@") {
        containers::add_to_linker::<Ctx, Blobstore>(linker, view)?;
    }
    Ok(())
}

pub(crate) type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl BlobView<'_> {
    /// The member's directory; a trap if it has none (it was not linked
    /// with one).
    pub(crate) fn root(&self) -> wasmtime::Result<Arc<Root>> {
        self.root.clone().ok_or_else(|| {
            wasmtime::format_err!("wasi:blobstore is not served to the running component")
        })
    }

    /// Runs `f` on the member's directory (see [`fs`]).
    pub(crate) async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Root) -> Result<T, String> + Send + 'static,
    ) -> Outcome<T> {
        fs(self.root()?, f).await
    }

    /// As [`run`](Self::run), and a new container resource for `name` when
    /// it succeeds.
    async fn container(
        &mut self,
        name: String,
        f: impl FnOnce(&Root, &str) -> Result<(), String> + Send + 'static,
    ) -> Outcome<Resource<Container>> {
        let checked = name.clone();
        match self.run(move |root| f(root, &checked)).await? {
            Ok(()) => Ok(Ok(self.table.push(Container { name })?)),
            Err(why) => Ok(Err(why)),
        }
    }
}

/// Runs `f` on `root` on a blocking thread: its result is the guest's.
pub(crate) async fn fs<T: Send + 'static>(
    root: Arc<Root>,
    f: impl FnOnce(&Root) -> Result<T, String> + Send + 'static,
) -> Outcome<T> {
    match tokio::task::spawn_blocking(move || f(&root)).await {
        Ok(done) => Ok(done),
        Err(err) => Err(wasmtime::format_err!("blobstore: {err}")),
    }
}

impl blobstore::Host for BlobView<'_> {
    async fn create_container(&mut self, name: String) -> Outcome<Resource<Container>> {
        self.container(name, Root::create_container).await
    }

    async fn get_container(&mut self, name: String) -> Outcome<Resource<Container>> {
        self.container(name, Root::open_container).await
    }

    async fn delete_container(&mut self, name: String) -> Outcome<()> {
        self.run(move |root| root.delete_container(&name)).await
    }

    async fn container_exists(&mut self, name: String) -> Outcome<bool> {
        self.run(move |root| root.container_exists(&name)).await
    }

    async fn copy_object(&mut self, src: ObjectId, dest: ObjectId) -> Outcome<()> {
        self.run(move |root| {
            root.copy(
                (&src.container, &src.object),
                (&dest.container, &dest.object),
            )
        })
        .await
    }

    async fn move_object(&mut self, src: ObjectId, dest: ObjectId) -> Outcome<()> {
        if (&src.container, &src.object) == (&dest.container, &dest.object) {
            return Ok(Ok(()));
        }
        self.run(move |root| {
            root.rename(
                (&src.container, &src.object),
                (&dest.container, &dest.object),
            )
        })
        .await
    }
}

impl containers::Host for BlobView<'_> {
    async fn list_containers(&mut self) -> wasmtime::Result<Result<Vec<ContainerInfo>, String>> {
        let listed = self.run(Root::list_containers).await?;
        Ok(listed.map(|all| {
            all.into_iter()
                .map(|(name, created_at)| ContainerInfo { name, created_at })
                .collect()
        }))
    }
}
