//! The `outgoing-value`, `incoming-value` and `stream-object-names` resources.

use std::sync::Arc;

use transport::schema::codec::{Chunk, ToValue, Value};
use transport::schema::ValueLimits;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::bindings::wasi::blobstore::container::HostStreamObjectNames;
use super::bindings::wasi::blobstore::types::{
    Error, Host as TypesHost, HostIncomingValue, HostOutgoingValue,
};
use super::body::{read_all, BodyWriter, Pipe};
use super::{BlobstoreView, IncomingValue, ObjectNames, OutgoingValue, INSTANCE};

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl TypesHost for BlobstoreView<'_> {}

impl HostOutgoingValue for BlobstoreView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue {
            pipe: Pipe::new(),
            body_taken: false,
            writing: None,
        })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let idle = self
            .wire()
            .router()
            .idle_timeout(INSTANCE)
            .unwrap_or(transport::client::IDLE_TIMEOUT);
        let entry = self.table.get_mut(&value)?;
        if entry.body_taken {
            return Ok(Err(()));
        }
        entry.body_taken = true;
        let writer: DynOutputStream = Box::new(BodyWriter::new(Arc::clone(&entry.pipe), idle));
        Ok(Ok(self.table.push(writer)?))
    }

    async fn finish(&mut self, value: Resource<OutgoingValue>) -> Outcome<()> {
        let mut value = self.table.delete(value)?;
        value.pipe.finish();
        let Some(writing) = value.writing.take() else {
            return Ok(if value.pipe.touched() && value.body_taken {
                Err(
                    "the value was finished without container.write-data: nothing was stored"
                        .into(),
                )
            } else {
                Ok(())
            });
        };
        Ok(match writing.await {
            Ok(verdict) => verdict,
            Err(err) => Err(format!("writing the object failed: {err}")),
        })
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        // Dropping it unfinished discards the object (see `OutgoingValue`).
        self.table.delete(value)?;
        Ok(())
    }
}

impl HostIncomingValue for BlobstoreView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Outcome<Vec<u8>> {
        let mut value = self.table.delete(value)?;
        let max = self.wire().router().limits().max_frame;
        Ok(read_all(&mut value.reader, max).await)
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Outcome<Resource<DynInputStream>> {
        let value = self.table.delete(value)?;
        let stream: DynInputStream = Box::new(value.reader);
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        let (container, object, start, end) = {
            let v = self.table.get(&value)?;
            (v.container.clone(), v.object.clone(), v.start, v.end)
        };
        // The wire answers bodies without their size: ask for the object's,
        // and clamp the range to it.
        let info: Result<(u64, u64), String> = self
            .wire()
            .call(
                "types",
                "incoming-value.size",
                "get-object-info",
                ((container, object),),
            )
            .await;
        match info {
            Ok((_, size)) => Ok(end.saturating_add(1).min(size).saturating_sub(start)),
            // `size` has no error result: a failure can only trap.
            Err(why) => Err(wasmtime::format_err!("incoming-value.size: {why}")),
        }
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}

impl ObjectNames {
    /// The next name, `Ok(None)` at the end of a complete listing.
    async fn next(&mut self, limits: &ValueLimits) -> Result<Option<String>, String> {
        loop {
            if let Some(name) = self.inline.pop_front() {
                return Ok(Some(name));
            }
            if let Some(ended) = &self.ended {
                return ended.clone().map(|()| None);
            }
            // A chunk of names at a time (bounded by the max-frame limit).
            let next = match &mut self.stream {
                Some(stream) => stream
                    .next(&mut ToValue)
                    .await
                    .map_err(|err| format!("reading the object names failed: {err}")),
                None => Ok(None),
            };
            match next {
                Ok(Some(Chunk::Items(names))) => self
                    .inline
                    .extend(names.into_iter().filter_map(Value::into_string)),
                Ok(Some(_)) => {
                    let why = "the object names are not strings".to_string();
                    self.ended = Some(Err(why.clone()));
                    return Err(why);
                }
                Ok(None) => {
                    let status = self.status.get(limits).await;
                    self.ended = Some(status.clone());
                    return status.map(|()| None);
                }
                Err(why) => {
                    self.ended = Some(Err(why.clone()));
                    return Err(why);
                }
            }
        }
    }
}

impl HostStreamObjectNames for BlobstoreView<'_> {
    async fn read_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        len: u64,
    ) -> Outcome<(Vec<String>, bool)> {
        let limits = self.wire().limits();
        let names = self.table.get_mut(&names)?;
        let mut out = Vec::new();
        while (out.len() as u64) < len {
            match names.next(&limits).await {
                Ok(Some(name)) => out.push(name),
                Ok(None) => return Ok(Ok((out, true))),
                Err(why) => return Ok(Err(why)),
            }
        }
        Ok(Ok((out, false)))
    }

    async fn skip_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        num: u64,
    ) -> Outcome<(u64, bool)> {
        let limits = self.wire().limits();
        let names = self.table.get_mut(&names)?;
        let mut skipped = 0;
        while skipped < num {
            match names.next(&limits).await {
                Ok(Some(_)) => skipped += 1,
                Ok(None) => return Ok(Ok((skipped, true))),
                Err(why) => return Ok(Err(why)),
            }
        }
        Ok(Ok((skipped, false)))
    }

    async fn drop(&mut self, names: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(names)?;
        Ok(())
    }
}
