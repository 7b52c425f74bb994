//! `wasi:keyvalue/atomics`.

use wasmtime::component::Resource;

use super::bindings::wasi::keyvalue::atomics::{Error, Host};
use super::wire::wrpc::keyvalue::atomics as wire;
use super::{Bucket, KeyvalueView};

impl Host for KeyvalueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let name = self.bucket(&bucket)?;
        let res = wire::increment(self.router(), self.caller(), &name, &key, delta).await;
        Ok(self.finish("atomics", "increment", res))
    }
}
