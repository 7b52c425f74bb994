//! The S3-backed handler of `wrpc:blobstore/blobstore@0.2.0`.

use std::sync::Arc;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::Stream;
use sdk::blobstore::{
    body, names, Completion, ContainerMetadata, Handler, ObjectId, ObjectMetadata, Outcome,
};
use sdk::{CallerContext, IncomingBytes, OutgoingBytes, OutgoingStream};
use tracing::debug;

use crate::config::S3Args;
use crate::errors::{code, describe, is_no_such_bucket, is_not_found, status};
use crate::names::Buckets;
use crate::upload::Upload;

/// Most keys one `DeleteObjects` request takes.
const DELETE_BATCH: usize = 1000;

/// Serves blobstore calls from one S3 client.
#[derive(Clone)]
pub struct S3Store(Arc<Inner>);

struct Inner {
    s3: Client,
    /// `s3` with the longer attempt deadline of requests that move data.
    transfer: Client,
    buckets: Buckets,
    region: String,
    auto_create: bool,
    part_size: usize,
    parts_in_flight: usize,
    list_page: i32,
}

impl S3Store {
    pub fn new(s3: Client, args: &S3Args) -> Self {
        Self(Arc::new(Inner {
            transfer: args.transfer_client(&s3),
            s3,
            buckets: Buckets::new(args.aliases.clone(), args.isolate_namespaces),
            region: args.s3_region.clone(),
            auto_create: args.auto_create,
            part_size: usize::try_from(args.part_size).unwrap_or(usize::MAX),
            parts_in_flight: args.parts_in_flight as usize,
            list_page: args.list_page,
        }))
    }

    /// Ready when S3 answers at all (an access error is an answer).
    pub async fn ping(&self) -> Result<(), String> {
        match self.0.s3.list_buckets().max_buckets(1).send().await {
            Ok(_) => Ok(()),
            Err(err) if status(&err).is_some() => Ok(()),
            Err(err) => Err(describe("reaching S3", &err)),
        }
    }

    fn bucket(&self, cx: &CallerContext, container: &str) -> Result<String, String> {
        self.0.buckets.bucket(cx.namespace(), container)
    }

    /// Every container the caller can open, with its creation time.
    pub async fn list_containers(&self, cx: &CallerContext) -> Result<Vec<(String, u64)>, String> {
        let mut out = Vec::new();
        let mut pages = self.0.s3.list_buckets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| describe("listing buckets", &err))?;
            for bucket in page.buckets.unwrap_or_default() {
                let Some(name) = bucket.name else { continue };
                if let Some(container) = self.0.buckets.container(cx.namespace(), &name) {
                    let created = bucket.creation_date.map_or(0, |d| secs(&d));
                    out.push((container, created));
                }
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// Deletes every object of `bucket` (and aborts uploads in progress when
    /// `uploads` is set).
    async fn empty(&self, bucket: &str, uploads: bool) -> Result<(), String> {
        let s3 = &self.0.s3;
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(self.0.list_page)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| describe(&format!("listing bucket `{bucket}`"), &err))?;
            let keys: Vec<String> = page
                .contents
                .unwrap_or_default()
                .into_iter()
                .filter_map(|o| o.key)
                .collect();
            self.delete_keys(bucket, keys).await?;
        }
        if uploads {
            let listed = s3
                .list_multipart_uploads()
                .bucket(bucket)
                .send()
                .await
                .map_err(|err| describe(&format!("listing uploads of bucket `{bucket}`"), &err))?;
            for upload in listed.uploads.unwrap_or_default() {
                if let (Some(key), Some(id)) = (upload.key, upload.upload_id) {
                    s3.abort_multipart_upload()
                        .bucket(bucket)
                        .key(&key)
                        .upload_id(id)
                        .send()
                        .await
                        .map_err(|err| describe(&format!("aborting an upload of `{key}`"), &err))?;
                }
            }
        }
        Ok(())
    }

    async fn delete_keys(&self, bucket: &str, keys: Vec<String>) -> Result<(), String> {
        for batch in keys.chunks(DELETE_BATCH) {
            if batch.is_empty() {
                continue;
            }
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| format!("deleting objects: {err}"))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|err| format!("deleting objects: {err}"))?;
            let out = self
                .0
                .s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|err| describe(&format!("deleting objects of bucket `{bucket}`"), &err))?;
            let errors = out.errors.unwrap_or_default();
            if let Some(first) = errors.first() {
                return Err(format!(
                    "deleting objects of bucket `{bucket}`: {} of {} failed, first `{}`: S3 {}: {}",
                    errors.len(),
                    batch.len(),
                    first.key().unwrap_or("?"),
                    first.code().unwrap_or("unknown error"),
                    first.message().unwrap_or("")
                ));
            }
        }
        Ok(())
    }

    async fn copy(
        &self,
        cx: &CallerContext,
        src: &ObjectId,
        dest: &ObjectId,
    ) -> Result<(), String> {
        let from = self.bucket(cx, &src.container)?;
        let to = self.bucket(cx, &dest.container)?;
        let what = format!(
            "copying `{}` of `{}` to `{}` of `{}`",
            src.object, src.container, dest.object, dest.container
        );
        let source = format!("{from}/{}", percent_encode(&src.object));
        let send = || {
            self.0
                .transfer
                .copy_object()
                .copy_source(&source)
                .bucket(&to)
                .key(&dest.object)
                .send()
        };
        match send().await {
            Ok(_) => Ok(()),
            Err(err) if self.0.auto_create && is_no_such_bucket(&err) && from != to => {
                // The destination may be the missing one; creating the source
                // does no harm, the retry then says it has no such key.
                self.create_bucket(&to).await.or_else(already_exists)?;
                send()
                    .await
                    .map(|_| ())
                    .map_err(|err| describe(&what, &err))
            }
            Err(err) => Err(describe(&what, &err)),
        }
    }

    /// HeadObject of `key` in `bucket`.
    async fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<HeadObjectOutput, SdkError<HeadObjectError>> {
        self.0.s3.head_object().bucket(bucket).key(key).send().await
    }

    async fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let mut create = self.0.s3.create_bucket().bucket(bucket);
        if self.0.region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(self.0.region.as_str().into())
                    .build(),
            );
        }
        create.send().await.map(|_| ()).map_err(|err| {
            let described = describe(&format!("creating bucket `{bucket}`"), &err);
            match code(&err) {
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists") => {
                    format!("already exists: {described}")
                }
                _ => described,
            }
        })
    }
}

/// Treats "already exists" as success (auto-create racing another writer).
fn already_exists(why: String) -> Result<(), String> {
    if why.starts_with("already exists") {
        Ok(())
    } else {
        Err(why)
    }
}

/// Seconds since the Unix epoch, 0 for earlier times.
fn secs(t: &aws_sdk_s3::primitives::DateTime) -> u64 {
    u64::try_from(t.secs()).unwrap_or(0)
}

/// Encodes an object key for `x-amz-copy-source`: every byte but unreserved
/// characters and `/`.
fn percent_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The HTTP `Range` of offsets `start..=end`; `None` when it asks for nothing.
fn range(start: u64, end: u64) -> Result<String, String> {
    if end < start {
        return Err(format!("the range ends ({end}) before it starts ({start})"));
    }
    Ok(if end == u64::MAX {
        format!("bytes={start}-")
    } else {
        format!("bytes={start}-{end}")
    })
}

/// Byte chunks of an S3 body, merged while more are ready, up to
/// [`sdk::CHUNK`] bytes: fewer, larger frames on the wire. The body is read
/// only as fast as the chunks are taken.
fn chunks(
    body: aws_sdk_s3::primitives::ByteStream,
    what: String,
) -> impl Stream<Item = Result<Bytes, String>> + Send {
    futures::stream::unfold(Some(body), move |body| {
        let what = what.clone();
        async move {
            let mut body = body?;
            let mut merged = bytes::BytesMut::new();
            loop {
                let next = if merged.is_empty() {
                    body.next().await
                } else {
                    match futures::FutureExt::now_or_never(body.next()) {
                        Some(next) => next,
                        None => return Some((Ok(merged.freeze()), Some(body))),
                    }
                };
                match next {
                    Some(Ok(chunk)) => {
                        merged.extend_from_slice(&chunk);
                        if merged.len() >= sdk::CHUNK {
                            return Some((Ok(merged.freeze()), Some(body)));
                        }
                    }
                    Some(Err(err)) => {
                        return Some((Err(format!("{what}: reading from S3 failed: {err}")), None))
                    }
                    None if merged.is_empty() => return None,
                    None => return Some((Ok(merged.freeze()), None)),
                }
            }
        }
    })
}

impl Handler for S3Store {
    async fn clear_container(&self, cx: CallerContext, name: String) -> Outcome<()> {
        let bucket = match self.bucket(&cx, &name) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        Ok(self.empty(&bucket, false).await)
    }

    async fn container_exists(&self, cx: CallerContext, name: String) -> Outcome<bool> {
        let bucket = match self.bucket(&cx, &name) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        Ok(match self.0.s3.head_bucket().bucket(&bucket).send().await {
            Ok(_) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(describe(&format!("looking up bucket `{bucket}`"), &err)),
        })
    }

    async fn create_container(&self, cx: CallerContext, name: String) -> Outcome<()> {
        let bucket = match self.bucket(&cx, &name) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        Ok(self.create_bucket(&bucket).await.map_err(|why| {
            match why.strip_prefix("already exists: ") {
                Some(detail) => format!("container `{name}` already exists ({detail})"),
                None => why,
            }
        }))
    }

    async fn delete_container(&self, cx: CallerContext, name: String) -> Outcome<()> {
        let bucket = match self.bucket(&cx, &name) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        if let Err(why) = self.empty(&bucket, true).await {
            return Ok(Err(why));
        }
        Ok(self
            .0
            .s3
            .delete_bucket()
            .bucket(&bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| describe(&format!("deleting bucket `{bucket}`"), &err)))
    }

    async fn get_container_info(
        &self,
        cx: CallerContext,
        name: String,
    ) -> Outcome<ContainerMetadata> {
        let bucket = match self.bucket(&cx, &name) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let mut pages = self.0.s3.list_buckets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(err) => return Ok(Err(describe("listing buckets", &err))),
            };
            if let Some(found) = page
                .buckets
                .unwrap_or_default()
                .into_iter()
                .find(|b| b.name.as_deref() == Some(bucket.as_str()))
            {
                let created_at = found.creation_date.map_or(0, |d| secs(&d));
                return Ok(Ok(ContainerMetadata { created_at }));
            }
        }
        Ok(Err(format!(
            "container `{name}` does not exist: S3 NoSuchBucket: bucket `{bucket}` is not among the account's buckets"
        )))
    }

    async fn list_container_objects(
        &self,
        cx: CallerContext,
        name: String,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Outcome<(OutgoingStream<String>, Completion)> {
        let bucket = match self.bucket(&cx, &name) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        // The first page is fetched before answering, so a missing bucket is
        // the call's error rather than the stream's.
        let s3 = self.0.s3.clone();
        let page_size = self.0.list_page;
        let fetch = move |token: Option<String>| {
            let s3 = s3.clone();
            let bucket = bucket.clone();
            async move {
                let page = s3
                    .list_objects_v2()
                    .bucket(&bucket)
                    .max_keys(page_size)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|err| describe(&format!("listing bucket `{bucket}`"), &err))?;
                let keys: Vec<String> = page
                    .contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| o.key)
                    .collect();
                let next = page
                    .is_truncated
                    .unwrap_or(false)
                    .then_some(page.next_continuation_token)
                    .flatten();
                Ok::<_, String>((keys, next))
            }
        };
        let first = match fetch(None).await {
            Ok(first) => first,
            Err(why) => return Ok(Err(why)),
        };
        struct State<F> {
            fetch: F,
            page: Option<(Vec<String>, Option<String>)>,
            skip: u64,
            left: u64,
            failed: bool,
        }
        let state = State {
            fetch,
            page: Some(first),
            skip: offset.unwrap_or(0),
            left: limit.unwrap_or(u64::MAX),
            failed: false,
        };
        let batches = futures::stream::unfold(state, |mut st| async move {
            if st.failed || st.left == 0 {
                return None;
            }
            let (mut keys, next) = match st.page.take() {
                Some(page) => page,
                None => return None,
            };
            if let Some(token) = next {
                // The next page is fetched only when this batch has been taken.
                st.page = Some(match (st.fetch)(Some(token)).await {
                    Ok(page) => page,
                    Err(why) => {
                        st.failed = true;
                        return Some((Err(why), st));
                    }
                });
            }
            let skip = usize::try_from(st.skip)
                .unwrap_or(usize::MAX)
                .min(keys.len());
            keys.drain(..skip);
            st.skip -= skip as u64;
            if (keys.len() as u64) > st.left {
                keys.truncate(usize::try_from(st.left).unwrap_or(usize::MAX));
            }
            st.left -= keys.len() as u64;
            Some((Ok(keys), st))
        });
        Ok(Ok(names(batches)))
    }

    async fn copy_object(&self, cx: CallerContext, src: ObjectId, dest: ObjectId) -> Outcome<()> {
        Ok(self.copy(&cx, &src, &dest).await)
    }

    async fn delete_object(&self, cx: CallerContext, id: ObjectId) -> Outcome<()> {
        let bucket = match self.bucket(&cx, &id.container) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        Ok(self
            .0
            .s3
            .delete_object()
            .bucket(&bucket)
            .key(&id.object)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                describe(
                    &format!("deleting `{}` of `{}`", id.object, id.container),
                    &err,
                )
            }))
    }

    async fn delete_objects(
        &self,
        cx: CallerContext,
        container: String,
        objects: Vec<String>,
    ) -> Outcome<()> {
        let bucket = match self.bucket(&cx, &container) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        Ok(self.delete_keys(&bucket, objects).await)
    }

    async fn get_container_data(
        &self,
        cx: CallerContext,
        id: ObjectId,
        start: u64,
        end: u64,
    ) -> Outcome<(OutgoingBytes, Completion)> {
        let bucket = match self.bucket(&cx, &id.container) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let range = match range(start, end) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let what = format!("reading `{}` of `{}`", id.object, id.container);
        let got = self
            .0
            .s3
            .get_object()
            .bucket(&bucket)
            .key(&id.object)
            .range(&range)
            .send()
            .await;
        match got {
            Ok(got) => Ok(Ok(body(chunks(got.body, what)))),
            // A range past the end: the object may be empty, which every
            // range of reads as nothing.
            Err(err) if status(&err) == Some(416) => match self.head(&bucket, &id.object).await {
                Ok(head) if head.content_length.unwrap_or(0) == 0 || start == 0 => {
                    debug!("empty range of `{}`", id.object);
                    Ok(Ok(body(futures::stream::empty())))
                }
                Ok(head) => Ok(Err(format!(
                    "{what}: the range starts at {start}, past the object's {} bytes",
                    head.content_length.unwrap_or(0)
                ))),
                Err(err) => Ok(Err(describe(&what, &err))),
            },
            Err(err) => Ok(Err(describe(&what, &err))),
        }
    }

    async fn get_object_info(&self, cx: CallerContext, id: ObjectId) -> Outcome<ObjectMetadata> {
        let bucket = match self.bucket(&cx, &id.container) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let what = format!("looking up `{}` of `{}`", id.object, id.container);
        Ok(match self.head(&bucket, &id.object).await {
            Ok(head) => match head.last_modified {
                Some(modified) => Ok(ObjectMetadata {
                    created_at: secs(&modified),
                    size: u64::try_from(head.content_length.unwrap_or(0)).unwrap_or(0),
                }),
                None => Err(format!("{what}: S3 sent no Last-Modified time")),
            },
            Err(err) if is_not_found(&err) => Err(format!("{what}: S3 NoSuchKey: no such object")),
            Err(err) => Err(describe(&what, &err)),
        })
    }

    async fn has_object(&self, cx: CallerContext, id: ObjectId) -> Outcome<bool> {
        let bucket = match self.bucket(&cx, &id.container) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let what = format!("looking up `{}` of `{}`", id.object, id.container);
        Ok(match self.head(&bucket, &id.object).await {
            Ok(_) => Ok(true),
            Err(err) if status(&err) == Some(404) && !is_no_such_bucket(&err) => Ok(false),
            Err(err) => Err(describe(&what, &err)),
        })
    }

    async fn move_object(&self, cx: CallerContext, src: ObjectId, dest: ObjectId) -> Outcome<()> {
        if src == dest {
            return Ok(Ok(()));
        }
        if let Err(why) = self.copy(&cx, &src, &dest).await {
            return Ok(Err(why));
        }
        self.delete_object(cx, src).await
    }

    async fn write_container_data(
        &self,
        cx: CallerContext,
        id: ObjectId,
        data: IncomingBytes,
    ) -> Outcome<Completion> {
        let bucket = match self.bucket(&cx, &id.container) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let upload = Upload {
            s3: self.0.transfer.clone(),
            bucket,
            key: id.object,
            part_size: self.0.part_size,
            parts_in_flight: self.0.parts_in_flight,
            auto_create: self.0.auto_create,
        };
        Ok(Ok(Box::pin(upload.run(data))))
    }
}

#[cfg(test)]
mod tests {
    use super::{percent_encode, range};

    #[test]
    fn ranges_are_inclusive() {
        assert_eq!(range(0, 0).unwrap(), "bytes=0-0");
        assert_eq!(range(10, 19).unwrap(), "bytes=10-19");
        assert_eq!(range(5, u64::MAX).unwrap(), "bytes=5-");
        assert!(range(2, 1).is_err());
    }

    #[test]
    fn copy_sources_are_encoded() {
        assert_eq!(percent_encode("a/b c+ü"), "a/b%20c%2B%C3%BC");
    }
}
