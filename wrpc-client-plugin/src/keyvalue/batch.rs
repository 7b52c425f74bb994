//! `wasi:keyvalue/batch`.

use bytes::Bytes;
use wasmtime::component::Resource;

use super::bindings::wasi::keyvalue::batch::{Error, Host};
use super::wire::wrpc::keyvalue::batch as wire;
use super::{Bucket, KeyvalueView};

impl Host for KeyvalueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, Error>> {
        let name = self.bucket(&bucket)?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let res = wire::get_many(self.router(), self.caller(), &name, &keys).await;
        Ok(self.finish("batch", "get-many", res).map(|values| {
            values
                .into_iter()
                .map(|kv| kv.map(|(k, v)| (k, Vec::from(v))))
                .collect()
        }))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let name = self.bucket(&bucket)?;
        let owned: Vec<(String, Bytes)> =
            key_values.into_iter().map(|(k, v)| (k, v.into())).collect();
        let key_values: Vec<(&str, &Bytes)> = owned.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let res = wire::set_many(self.router(), self.caller(), &name, &key_values).await;
        Ok(self.finish("batch", "set-many", res))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let name = self.bucket(&bucket)?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let res = wire::delete_many(self.router(), self.caller(), &name, &keys).await;
        Ok(self.finish("batch", "delete-many", res))
    }
}
