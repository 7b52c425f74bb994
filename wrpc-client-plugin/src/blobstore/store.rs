//! `wasi:blobstore/blobstore` and the `container` resource.

use std::collections::VecDeque;

use bytes::BufMut as _;
use transport::async_values::{Buffered, ByteChunks, Chunks};
use transport::frame::put_leb_u64;
use transport::schema::codec::Value;
use transport::schema::Type;
use transport::Incoming;
use wasmtime::component::Resource;
use wrpc_transport::Index as _;

use super::bindings::wasi::blobstore::blobstore::Host as BlobstoreHost;
use super::bindings::wasi::blobstore::container::{Host as ContainerHost, HostContainer};
use super::bindings::wasi::blobstore::types::{ContainerMetadata, Error, ObjectId, ObjectMetadata};
use super::body::{self, BodyReader, Source, Status};
use super::wire;
use super::{
    object_params, BlobstoreView, Container, IncomingValue, ObjectNames, OutgoingValue, FUTURE,
    STREAM_AND_FUTURE,
};

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl BlobstoreHost for BlobstoreView<'_> {
    async fn create_container(&mut self, name: String) -> Outcome<Resource<Container>> {
        let created: Result<(), String> = self
            .wire()
            .call(
                "blobstore",
                "create-container",
                "create-container",
                (name.clone(),),
            )
            .await;
        Ok(match created {
            Ok(()) => Ok(self.table.push(Container { name })?),
            Err(why) => Err(why),
        })
    }

    async fn get_container(&mut self, name: String) -> Outcome<Resource<Container>> {
        let exists: Result<bool, String> = self
            .wire()
            .call(
                "blobstore",
                "get-container",
                "container-exists",
                (name.clone(),),
            )
            .await;
        Ok(match exists {
            Ok(true) => Ok(self.table.push(Container { name })?),
            Ok(false) => Err(format!("container `{name}` does not exist")),
            Err(why) => Err(why),
        })
    }

    async fn delete_container(&mut self, name: String) -> Outcome<()> {
        Ok(self
            .wire()
            .call("blobstore", "delete-container", "delete-container", (name,))
            .await)
    }

    async fn container_exists(&mut self, name: String) -> Outcome<bool> {
        Ok(self
            .wire()
            .call("blobstore", "container-exists", "container-exists", (name,))
            .await)
    }

    async fn copy_object(&mut self, src: ObjectId, dest: ObjectId) -> Outcome<()> {
        Ok(self
            .wire()
            .call(
                "blobstore",
                "copy-object",
                "copy-object",
                ((src.container, src.object), (dest.container, dest.object)),
            )
            .await)
    }

    async fn move_object(&mut self, src: ObjectId, dest: ObjectId) -> Outcome<()> {
        Ok(self
            .wire()
            .call(
                "blobstore",
                "move-object",
                "move-object",
                ((src.container, src.object), (dest.container, dest.object)),
            )
            .await)
    }
}

impl ContainerHost for BlobstoreView<'_> {}

impl BlobstoreView<'_> {
    fn container_name(&self, container: &Resource<Container>) -> wasmtime::Result<String> {
        Ok(self.table.get(container)?.name.clone())
    }
}

impl HostContainer for BlobstoreView<'_> {
    async fn name(&mut self, container: Resource<Container>) -> Outcome<String> {
        Ok(Ok(self.container_name(&container)?))
    }

    async fn info(&mut self, container: Resource<Container>) -> Outcome<ContainerMetadata> {
        let name = self.container_name(&container)?;
        let created: Result<u64, String> = self
            .wire()
            .call(
                "container",
                "container.info",
                "get-container-info",
                (name.clone(),),
            )
            .await;
        Ok(created.map(|created_at| ContainerMetadata { name, created_at }))
    }

    async fn get_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> Outcome<Resource<IncomingValue>> {
        let container = self.container_name(&container)?;
        let func = "container.get-data";
        let mut params = match object_params(&container, &name) {
            Ok(params) => params,
            Err(err) => return Ok(Err(format!("{func}: {err}"))),
        };
        put_leb_u64(&mut params, start);
        put_leb_u64(&mut params, end);
        let started = self
            .wire()
            .start("get-container-data", params.freeze(), STREAM_AND_FUTURE)
            .await;
        let (results, _tx, rx) = match started {
            Ok(started) => started,
            Err(err) => return Ok(Err(self.wire().failed("container", func, &err))),
        };
        let limits = self.wire().limits();
        let parsed = (|| -> std::io::Result<Result<(Source, Status), String>> {
            let (stream, future) =
                match wire::result("get-container-data", &results, &limits)?.into_result() {
                    Some(Ok(Some(Value::Items(parts)))) => pair(parts)?,
                    Some(Err(why)) => return Ok(Err(text(why))),
                    _ => return Err(malformed("get-container-data")),
                };
            let source = match stream {
                Value::Bytes(body) => Source::Inline(bytes::Bytes::from(body)),
                Value::Pending(path) => Source::Stream(Box::new(ByteChunks::new(at(&rx, &path)?))),
                _ => return Err(malformed("get-container-data")),
            };
            Ok(Ok((source, status(future, &rx)?)))
        })();
        Ok(match parsed {
            Ok(Ok((source, status))) => Ok(self.table.push(IncomingValue {
                reader: BodyReader::new(source, status, limits),
                container,
                object: name,
                start,
                end,
            })?),
            Ok(Err(why)) => Err(why),
            Err(err) => Err(self.wire().failed("container", func, &err.into())),
        })
    }

    async fn write_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Outcome<()> {
        let container = self.container_name(&container)?;
        let func = "container.write-data";
        let pipe = {
            let value = self.table.get(&data)?;
            if value.writing.is_some() {
                return Ok(Err(format!(
                    "{func}: this outgoing-value is already being written to an object"
                )));
            }
            std::sync::Arc::clone(&value.pipe)
        };
        let mut params = match object_params(&container, &name) {
            Ok(params) => params,
            Err(err) => return Ok(Err(format!("{func}: {err}"))),
        };
        // The body: a stream whose bytes follow on its own path.
        params.put_u8(0);
        let started = self
            .wire()
            .start("write-container-data", params.freeze(), FUTURE)
            .await;
        let (results, tx, rx) = match started {
            Ok(started) => started,
            Err(err) => return Ok(Err(self.wire().failed("container", func, &err))),
        };
        let limits = self.wire().limits();
        let parsed = (|| -> std::io::Result<Result<(super::Outgoing, Status), String>> {
            let future =
                match wire::result("write-container-data", &results, &limits)?.into_result() {
                    Some(Ok(Some(future))) => future,
                    Some(Err(why)) => return Ok(Err(text(why))),
                    _ => return Err(malformed("write-container-data")),
                };
            let status = status(future, &rx)?;
            let body = tx.index(&[1]).map_err(std::io::Error::other)?;
            Ok(Ok((body, status)))
        })();
        let (body, status) = match parsed {
            Ok(Ok(started)) => started,
            Ok(Err(why)) => return Ok(Err(why)),
            Err(err) => return Ok(Err(self.wire().failed("container", func, &err.into()))),
        };
        let pump = tokio::spawn(body::pump(pipe, body, status, limits));
        self.table.get_mut(&data)?.writing = Some(pump);
        Ok(Ok(()))
    }

    async fn list_objects(
        &mut self,
        container: Resource<Container>,
    ) -> Outcome<Resource<ObjectNames>> {
        let container = self.container_name(&container)?;
        let func = "container.list-objects";
        let mut params = bytes::BytesMut::new();
        if let Err(err) = wire::put_string(&mut params, &container) {
            return Ok(Err(format!("{func}: {err}")));
        }
        // limit: none, offset: none
        params.put_u8(0);
        params.put_u8(0);
        let started = self
            .wire()
            .start("list-container-objects", params.freeze(), STREAM_AND_FUTURE)
            .await;
        let (results, _tx, rx) = match started {
            Ok(started) => started,
            Err(err) => return Ok(Err(self.wire().failed("container", func, &err))),
        };
        let limits = self.wire().limits();
        let parsed = (|| -> std::io::Result<Result<ObjectNames, String>> {
            let (stream, future) =
                match wire::result("list-container-objects", &results, &limits)?.into_result() {
                    Some(Ok(Some(Value::Items(parts)))) => pair(parts)?,
                    Some(Err(why)) => return Ok(Err(text(why))),
                    _ => return Err(malformed("list-container-objects")),
                };
            let (inline, stream) = match stream {
                Value::Items(names) => (
                    names.into_iter().filter_map(Value::into_string).collect(),
                    None,
                ),
                Value::Pending(path) => (
                    VecDeque::new(),
                    Some(Chunks::new(at(&rx, &path)?, Some(Type::String), limits)),
                ),
                _ => return Err(malformed("list-container-objects")),
            };
            Ok(Ok(ObjectNames {
                inline,
                stream,
                status: status(future, &rx)?,
                ended: None,
            }))
        })();
        Ok(match parsed {
            Ok(Ok(names)) => Ok(self.table.push(names)?),
            Ok(Err(why)) => Err(why),
            Err(err) => Err(self.wire().failed("container", func, &err.into())),
        })
    }

    async fn delete_object(&mut self, container: Resource<Container>, name: String) -> Outcome<()> {
        let container = self.container_name(&container)?;
        Ok(self
            .wire()
            .call(
                "container",
                "container.delete-object",
                "delete-object",
                ((container, name),),
            )
            .await)
    }

    async fn delete_objects(
        &mut self,
        container: Resource<Container>,
        names: Vec<String>,
    ) -> Outcome<()> {
        let container = self.container_name(&container)?;
        Ok(self
            .wire()
            .call(
                "container",
                "container.delete-objects",
                "delete-objects",
                (container, names),
            )
            .await)
    }

    async fn has_object(&mut self, container: Resource<Container>, name: String) -> Outcome<bool> {
        let container = self.container_name(&container)?;
        Ok(self
            .wire()
            .call(
                "container",
                "container.has-object",
                "has-object",
                ((container, name),),
            )
            .await)
    }

    async fn object_info(
        &mut self,
        container: Resource<Container>,
        name: String,
    ) -> Outcome<ObjectMetadata> {
        let container = self.container_name(&container)?;
        let info: Result<(u64, u64), String> = self
            .wire()
            .call(
                "container",
                "container.object-info",
                "get-object-info",
                ((container.clone(), name.clone()),),
            )
            .await;
        Ok(info.map(|(created_at, size)| ObjectMetadata {
            name,
            container,
            created_at,
            size,
        }))
    }

    async fn clear(&mut self, container: Resource<Container>) -> Outcome<()> {
        let container = self.container_name(&container)?;
        Ok(self
            .wire()
            .call(
                "container",
                "container.clear",
                "clear-container",
                (container,),
            )
            .await)
    }

    async fn drop(&mut self, container: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(container)?;
        Ok(())
    }
}

/// A result's `tuple<stream, future>`.
fn pair(mut parts: Vec<Value>) -> std::io::Result<(Value, Value)> {
    match (parts.pop(), parts.pop(), parts.is_empty()) {
        (Some(future), Some(stream), true) => Ok((stream, future)),
        _ => Err(malformed("a tuple that is not a stream and a future")),
    }
}

/// The call's async value at `path`.
fn at(rx: &Incoming, path: &[usize]) -> std::io::Result<Incoming> {
    rx.index(path).map_err(std::io::Error::other)
}

/// A transfer's status: known now, or read later off the future's path.
fn status(future: Value, rx: &Incoming) -> std::io::Result<Status> {
    match future {
        Value::Ready(Some(status)) => Ok(Status::Known(wire::status(*status)?)),
        Value::Pending(path) => Ok(Status::Pending(Buffered::new(at(rx, &path)?))),
        _ => Err(malformed("a status that is not a future")),
    }
}

/// The extension's error text.
fn text(why: Option<Value>) -> String {
    why.and_then(Value::into_string).unwrap_or_default()
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("malformed results from the extension: {what}"),
    )
}
