//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` for guests: the
//! bucket resource holds only its name; every call goes to the store of the
//! running member (in its slots).

use std::sync::Arc;

use host_plugin::Ctx;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::store::Kv;

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/keyvalue",
        world: "imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::store::{Error, HostBucket, KeyResponse};
use bindings::wasi::keyvalue::{atomics, batch, store};

/// An open bucket: its name (any name opens, as with `keyvalue-redis`).
pub struct Bucket {
    name: String,
}

/// A member's store, in its slots.
pub(crate) struct KvSlot(pub(crate) Arc<Kv>);

struct Keyvalue;

impl HasData for Keyvalue {
    type Data<'a> = KvView<'a>;
}

/// What the host functions borrow from the store's data.
struct KvView<'a> {
    kv: Option<Arc<Kv>>,
    table: &'a mut ResourceTable,
}

fn view(ctx: &mut Ctx) -> KvView<'_> {
    let kv = ctx.get::<KvSlot>().map(|slot| Arc::clone(&slot.0));
    KvView {
        kv,
        table: ctx.table(),
    }
}

/// Adds the interfaces among `claimed` (instance names) to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>, claimed: &[String]) -> wasmtime::Result<()> {
    let has = |iface: &str| {
        claimed
            .iter()
            .any(|c| c.starts_with(&format!("wasi:keyvalue/{iface}@")))
    };
    if has("store") {
        store::add_to_linker::<Ctx, Keyvalue>(linker, view)?;
    }
    if has("atomics") {
        atomics::add_to_linker::<Ctx, Keyvalue>(linker, view)?;
    }
    if has("batch") {
        batch::add_to_linker::<Ctx, Keyvalue>(linker, view)?;
    }
    Ok(())
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl KvView<'_> {
    /// The store and the bucket's name; a trap if the member has no store
    /// (it was not linked with one) or the handle is not a bucket.
    fn target(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<(Arc<Kv>, String)> {
        let kv = self.kv.clone().ok_or_else(|| {
            wasmtime::format_err!("wasi:keyvalue is not served to the running component")
        })?;
        Ok((kv, self.table.get(bucket)?.name.clone()))
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        Ok(Ok(self.table.push(Bucket { name: identifier })?))
    }
}

impl HostBucket for KvView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let (kv, name) = self.target(&bucket)?;
        Ok(Ok(kv.read(|d| d.get(&name, &key).map(<[u8]>::to_vec))))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let (kv, name) = self.target(&bucket)?;
        let done = kv.write(|d, l| d.set(l, &name, &key, value)).await;
        Ok(done.map_err(Error::Other))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let (kv, name) = self.target(&bucket)?;
        let done = kv
            .write(|d, _| {
                d.delete(&name, &key);
                Ok(())
            })
            .await;
        Ok(done.map_err(Error::Other))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let (kv, name) = self.target(&bucket)?;
        Ok(Ok(kv.read(|d| d.get(&name, &key).is_some())))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Outcome<KeyResponse> {
        let (kv, name) = self.target(&bucket)?;
        let (keys, cursor) = kv.read(|d| d.list(&name, cursor));
        Ok(Ok(KeyResponse { keys, cursor }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        let (kv, name) = self.target(&bucket)?;
        let done = kv.write(|d, l| d.increment(l, &name, &key, delta)).await;
        Ok(done.map_err(Error::Other))
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let (kv, name) = self.target(&bucket)?;
        Ok(Ok(kv.read(|d| {
            keys.into_iter()
                .map(|k| d.get(&name, &k).map(|v| v.to_vec()).map(|v| (k, v)))
                .collect()
        })))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let (kv, name) = self.target(&bucket)?;
        let done = kv.write(|d, l| d.set_many(l, &name, key_values)).await;
        Ok(done.map_err(Error::Other))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let (kv, name) = self.target(&bucket)?;
        let done = kv
            .write(|d, _| {
                for key in &keys {
                    d.delete(&name, key);
                }
                Ok(())
            })
            .await;
        Ok(done.map_err(Error::Other))
    }
}
