//! The `container`, `stream-object-names`, `outgoing-value` and
//! `incoming-value` resources.

use std::collections::VecDeque;
use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use crate::body::{self, Upload};
use crate::host::bindings::wasi::blobstore::container::{
    Host as ContainerHost, HostContainer, HostStreamObjectNames,
};
use crate::host::bindings::wasi::blobstore::types::{
    ContainerMetadata, Host as TypesHost, HostIncomingValue, HostOutgoingValue, ObjectMetadata,
};
use crate::host::{fs, BlobView, Container, IncomingValue, ObjectNames, Outcome, OutgoingValue};
use crate::root::{self, Root};

/// Largest body `incoming-value-consume-sync` returns; larger ones are read
/// as a stream.
pub(crate) const MAX_SYNC_BYTES: u64 = 16 << 20;

impl ContainerHost for BlobView<'_> {}

impl BlobView<'_> {
    fn name_of(&self, container: &Resource<Container>) -> wasmtime::Result<String> {
        Ok(self.table.get(container)?.name.clone())
    }

    /// The member's directory and the container's name.
    fn target(&self, container: &Resource<Container>) -> wasmtime::Result<(Arc<Root>, String)> {
        Ok((self.root()?, self.name_of(container)?))
    }
}

/// Runs `f` with a container's name on its directory (see [`fs`]).
async fn on<T: Send + 'static>(
    (root, name): (Arc<Root>, String),
    f: impl FnOnce(&Root, &str) -> Result<T, String> + Send + 'static,
) -> Outcome<T> {
    fs(root, move |root| f(root, &name)).await
}

impl HostContainer for BlobView<'_> {
    async fn name(&mut self, container: Resource<Container>) -> Outcome<String> {
        Ok(Ok(self.name_of(&container)?))
    }

    async fn info(&mut self, container: Resource<Container>) -> Outcome<ContainerMetadata> {
        let found = on(self.target(&container)?, Root::container_created).await?;
        let name = self.name_of(&container)?;
        Ok(found.map(|created_at| ContainerMetadata { name, created_at }))
    }

    async fn get_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> Outcome<Resource<IncomingValue>> {
        let opened = on(self.target(&container)?, move |root, c| {
            root.open_range(c, &name, start, end)
        })
        .await?;
        Ok(match opened {
            Ok((file, len)) => Ok(self.table.push(IncomingValue { file, len })?),
            Err(why) => Err(why),
        })
    }

    async fn write_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Outcome<()> {
        if self.table.get(&data)?.target.is_some() {
            return Ok(Err(
                "container.write-data: this outgoing-value is already being written to an object"
                    .into(),
            ));
        }
        let object = name.clone();
        let checked = on(self.target(&container)?, move |root, c| {
            root.object(c, &object).map(drop)
        })
        .await?;
        if checked.is_ok() {
            let c = self.name_of(&container)?;
            self.table.get_mut(&data)?.target = Some((c, name));
        }
        Ok(checked)
    }

    async fn list_objects(
        &mut self,
        container: Resource<Container>,
    ) -> Outcome<Resource<ObjectNames>> {
        Ok(
            match on(self.target(&container)?, Root::list_objects).await? {
                Ok(names) => Ok(self.table.push(ObjectNames(VecDeque::from(names)))?),
                Err(why) => Err(why),
            },
        )
    }

    async fn delete_object(&mut self, container: Resource<Container>, name: String) -> Outcome<()> {
        on(self.target(&container)?, move |root, c| {
            root.delete_objects(c, std::slice::from_ref(&name))
        })
        .await
    }

    async fn delete_objects(
        &mut self,
        container: Resource<Container>,
        names: Vec<String>,
    ) -> Outcome<()> {
        on(self.target(&container)?, move |root, c| {
            root.delete_objects(c, &names)
        })
        .await
    }

    async fn has_object(&mut self, container: Resource<Container>, name: String) -> Outcome<bool> {
        on(self.target(&container)?, move |root, c| {
            root.has_object(c, &name)
        })
        .await
    }

    async fn object_info(
        &mut self,
        container: Resource<Container>,
        name: String,
    ) -> Outcome<ObjectMetadata> {
        let object = name.clone();
        let info = on(self.target(&container)?, move |root, c| {
            root.object_info(c, &object)
        })
        .await?;
        let container = self.name_of(&container)?;
        Ok(info.map(|(created_at, size)| ObjectMetadata {
            name,
            container,
            created_at,
            size,
        }))
    }

    async fn clear(&mut self, container: Resource<Container>) -> Outcome<()> {
        on(self.target(&container)?, Root::clear).await
    }

    async fn drop(&mut self, container: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(container)?;
        Ok(())
    }
}

impl HostStreamObjectNames for BlobView<'_> {
    async fn read_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        len: u64,
    ) -> Outcome<(Vec<String>, bool)> {
        let names = &mut self.table.get_mut(&names)?.0;
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(names.len());
        let batch: Vec<String> = names.drain(..n).collect();
        Ok(Ok((batch, names.is_empty())))
    }

    async fn skip_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        num: u64,
    ) -> Outcome<(u64, bool)> {
        let names = &mut self.table.get_mut(&names)?.0;
        let n = usize::try_from(num).unwrap_or(usize::MAX).min(names.len());
        names.drain(..n);
        Ok(Ok((n as u64, names.is_empty())))
    }

    async fn drop(&mut self, names: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(names)?;
        Ok(())
    }
}

impl TypesHost for BlobView<'_> {}

impl HostOutgoingValue for BlobView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue {
            target: None,
            upload: None,
            body_taken: false,
        })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        if self.table.get(&value)?.body_taken {
            return Ok(Err(()));
        }
        let max = self.root()?.max_object_bytes;
        let (upload, writer) = match self.run(|root| root.stage()).await? {
            Ok(staged) => Upload::start(staged, max),
            // The stream says why at the first write.
            Err(why) => Upload::failed(why),
        };
        let entry = self.table.get_mut(&value)?;
        entry.body_taken = true;
        entry.upload = Some(upload);
        let writer: DynOutputStream = Box::new(writer);
        Ok(Ok(self.table.push(writer)?))
    }

    async fn finish(&mut self, value: Resource<OutgoingValue>) -> Outcome<()> {
        let value = self.table.delete(value)?;
        let staged = match (value.upload, &value.target) {
            (Some(upload), _) => upload.finish().await,
            // No body taken: the object is empty.
            (None, Some(_)) => self.run(|root| root.stage()).await?,
            (None, None) => return Ok(Ok(())),
        };
        let Some((container, object)) = value.target else {
            return Ok(Err(
                "the value was finished without container.write-data: nothing was stored".into(),
            ));
        };
        match staged {
            Ok(staged) => {
                self.run(move |root| root.commit(staged, &container, &object))
                    .await
            }
            Err(why) => Ok(Err(why)),
        }
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        // Unfinished: nothing is stored (the upload removes its file).
        self.table.delete(value)?;
        Ok(())
    }
}

impl HostIncomingValue for BlobView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Outcome<Vec<u8>> {
        let IncomingValue { file, len } = self.table.delete(value)?;
        if len > MAX_SYNC_BYTES {
            return Ok(Err(format!(
                "the value has {len} bytes, more than incoming-value-consume-sync returns ({MAX_SYNC_BYTES}): read it with incoming-value-consume-async"
            )));
        }
        self.run(move |_| root::read_exact(file, len)).await
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Outcome<Resource<DynInputStream>> {
        let IncomingValue { file, len } = self.table.delete(value)?;
        Ok(Ok(self.table.push(body::reader(file, len))?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.len)
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}
