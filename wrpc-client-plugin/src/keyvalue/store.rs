//! `wasi:keyvalue/store`: `open` and the bucket's methods.

use wasmtime::component::Resource;

use super::bindings::wasi::keyvalue::store::{Error, Host, HostBucket, KeyResponse};
use super::wire::wrpc::keyvalue::store as wire;
use super::{Bucket, KeyvalueView};

impl Host for KeyvalueView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        // The wire interface is stateless: opening only names the bucket.
        Ok(Ok(self.table.push(Bucket { name: identifier })?))
    }
}

impl HostBucket for KeyvalueView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let name = self.bucket(&bucket)?;
        let res = wire::get(self.router(), self.caller(), &name, &key).await;
        Ok(self.finish("store", "get", res).map(|v| v.map(Vec::from)))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let name = self.bucket(&bucket)?;
        let res = wire::set(self.router(), self.caller(), &name, &key, &value.into()).await;
        Ok(self.finish("store", "set", res))
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let name = self.bucket(&bucket)?;
        let res = wire::delete(self.router(), self.caller(), &name, &key).await;
        Ok(self.finish("store", "delete", res))
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let name = self.bucket(&bucket)?;
        let res = wire::exists(self.router(), self.caller(), &name, &key).await;
        Ok(self.finish("store", "exists", res))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let name = self.bucket(&bucket)?;
        let res = wire::list_keys(self.router(), self.caller(), &name, cursor).await;
        Ok(self.finish("store", "list-keys", res).map(|r| KeyResponse {
            keys: r.keys,
            cursor: r.cursor,
        }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}
