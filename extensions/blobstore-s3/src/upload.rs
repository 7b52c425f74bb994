//! Writing one object from a streamed body, in bounded memory.
//!
//! A body that ends within the first part is stored with one `PutObject`.
//! A longer one becomes a multipart upload: parts of `part_size` bytes, at
//! most `parts_in_flight` of them being sent while the next fills, so a
//! write holds at most `part_size × (parts_in_flight + 1)` bytes. The
//! object appears only when `CompleteMultipartUpload` succeeds; any failure
//! (the body breaking off, the caller going away, a part failing, the call
//! being cancelled) aborts the upload, so no parts and no partial object
//! are left behind.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use sdk::IncomingBytes;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::errors::{describe, is_no_such_bucket};

/// Where the object goes and how to send it.
pub struct Upload {
    /// The client of data requests (`--s3-transfer-timeout`).
    pub s3: Client,
    pub bucket: String,
    pub key: String,
    pub part_size: usize,
    pub parts_in_flight: usize,
    pub auto_create: bool,
}

/// The body, read a part at a time.
struct Body {
    data: IncomingBytes,
    pending: BytesMut,
    received: u64,
    ended: bool,
}

impl Body {
    /// The next part: `part_size` bytes, or fewer at the end of the body.
    async fn next_part(&mut self, part_size: usize) -> Result<Bytes, String> {
        while !self.ended && self.pending.len() < part_size {
            match self.data.next().await {
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    if self.pending.capacity() == 0 {
                        self.pending.reserve(part_size + sdk::CHUNK);
                    }
                    self.pending.extend_from_slice(&chunk);
                }
                Some(Err(err)) => {
                    return Err(format!(
                        "the body broke off after {} bytes: {err}",
                        self.received
                    ))
                }
                None => self.ended = true,
            }
        }
        let n = self.pending.len().min(part_size);
        // The remainder (under one chunk) moves to a buffer of its own, so the
        // part's allocation is freed as soon as the part is sent.
        let rest = BytesMut::from(&self.pending[n..]);
        self.pending.truncate(n);
        let part = std::mem::replace(&mut self.pending, rest).freeze();
        Ok(part)
    }

    fn done(&self) -> bool {
        self.ended && self.pending.is_empty()
    }
}

impl Upload {
    /// Reads `data` to its end and stores it; `Err` says why nothing was stored.
    pub async fn run(self, data: IncomingBytes) -> Result<(), String> {
        let mut body = Body {
            data,
            pending: BytesMut::new(),
            received: 0,
            ended: false,
        };
        let first = body.next_part(self.part_size).await?;
        if body.done() {
            return self.put(first).await;
        }
        let upload_id = self.create().await?;
        let mut guard = AbortOnDrop {
            upload: Some((
                self.s3.clone(),
                self.bucket.clone(),
                self.key.clone(),
                upload_id.clone(),
            )),
        };
        match self.parts(&upload_id, first, &mut body).await {
            Ok(parts) => {
                let done = self.complete(&upload_id, parts).await;
                if done.is_ok() {
                    guard.upload = None;
                } else {
                    guard
                        .abort(done.as_ref().err().map_or("", String::as_str))
                        .await;
                }
                done
            }
            Err(why) => {
                guard.abort(&why).await;
                Err(why)
            }
        }
    }

    async fn put(&self, bytes: Bytes) -> Result<(), String> {
        let what = format!("writing `{}` to bucket `{}`", self.key, self.bucket);
        let send = || {
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_length(bytes.len() as i64)
                .body(ByteStream::from(bytes.clone()))
                .send()
        };
        match send().await {
            Ok(_) => Ok(()),
            Err(err) if self.auto_create && is_no_such_bucket(&err) => {
                self.create_bucket().await?;
                send()
                    .await
                    .map(|_| ())
                    .map_err(|err| describe(&what, &err))
            }
            Err(err) => Err(describe(&what, &err)),
        }
    }

    async fn create(&self) -> Result<String, String> {
        let what = format!(
            "starting an upload of `{}` to bucket `{}`",
            self.key, self.bucket
        );
        let send = || {
            self.s3
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .send()
        };
        let created = match send().await {
            Ok(created) => created,
            Err(err) if self.auto_create && is_no_such_bucket(&err) => {
                self.create_bucket().await?;
                send().await.map_err(|err| describe(&what, &err))?
            }
            Err(err) => return Err(describe(&what, &err)),
        };
        created
            .upload_id
            .ok_or_else(|| format!("{what}: S3 returned no upload id"))
    }

    async fn create_bucket(&self) -> Result<(), String> {
        info!(bucket = %self.bucket, "creating the missing bucket (--auto-create)");
        match self.s3.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    crate::errors::code(&err),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(describe(
                &format!("creating bucket `{}`", self.bucket),
                &err,
            )),
        }
    }

    /// Sends every part, at most `parts_in_flight` at once; returns them in order.
    async fn parts(
        &self,
        upload_id: &str,
        first: Bytes,
        body: &mut Body,
    ) -> Result<Vec<CompletedPart>, String> {
        let mut sending: JoinSet<Result<CompletedPart, String>> = JoinSet::new();
        let mut done = Vec::new();
        let mut next = Some(first);
        let mut number: i32 = 0;
        while let Some(part) = next.take() {
            number = number
                .checked_add(1)
                .filter(|n| *n <= 10_000)
                .ok_or("the body needs more than 10000 parts: raise --part-size")?;
            while sending.len() >= self.parts_in_flight {
                done.push(joined(sending.join_next().await)?);
            }
            sending.spawn(send_part(
                self.s3.clone(),
                self.bucket.clone(),
                self.key.clone(),
                upload_id.to_string(),
                number,
                part,
            ));
            // Reading the next part overlaps the parts being sent; a part
            // that fails ends the upload without waiting for the body.
            let read = body.next_part(self.part_size);
            tokio::pin!(read);
            let part = loop {
                tokio::select! {
                    part = &mut read => break part?,
                    sent = sending.join_next(), if !sending.is_empty() => done.push(joined(sent)?),
                }
            };
            if !part.is_empty() {
                next = Some(part);
            }
        }
        while let Some(sent) = sending.join_next().await {
            done.push(joined(Some(sent))?);
        }
        done.sort_by_key(|p| p.part_number);
        Ok(done)
    }

    async fn complete(&self, upload_id: &str, parts: Vec<CompletedPart>) -> Result<(), String> {
        self.s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                describe(
                    &format!(
                        "completing the upload of `{}` to bucket `{}`",
                        self.key, self.bucket
                    ),
                    &err,
                )
            })
    }
}

fn joined(
    sent: Option<Result<Result<CompletedPart, String>, tokio::task::JoinError>>,
) -> Result<CompletedPart, String> {
    match sent {
        Some(Ok(part)) => part,
        Some(Err(err)) => Err(format!("a part upload failed: {err}")),
        None => Err("no part upload was running".into()),
    }
}

async fn send_part(
    s3: Client,
    bucket: String,
    key: String,
    upload_id: String,
    number: i32,
    part: Bytes,
) -> Result<CompletedPart, String> {
    let sent = s3
        .upload_part()
        .bucket(&bucket)
        .key(&key)
        .upload_id(upload_id)
        .part_number(number)
        .content_length(part.len() as i64)
        .body(ByteStream::from(part))
        .send()
        .await
        .map_err(|err| {
            describe(
                &format!("sending part {number} of `{key}` to bucket `{bucket}`"),
                &err,
            )
        })?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(sent.e_tag)
        .build())
}

/// Aborts a multipart upload unless it completed: awaited on failures, and
/// spawned when the upload is dropped midway (the call was cancelled).
struct AbortOnDrop {
    upload: Option<(Client, String, String, String)>,
}

impl AbortOnDrop {
    async fn abort(&mut self, why: &str) {
        if let Some((s3, bucket, key, id)) = self.upload.take() {
            abort(s3, bucket, key, id, why.to_string()).await;
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some((s3, bucket, key, id)) = self.upload.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(abort(s3, bucket, key, id, "the call was cancelled".into()));
            }
        }
    }
}

async fn abort(s3: Client, bucket: String, key: String, id: String, why: String) {
    match s3
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
    {
        Ok(_) => warn!(%bucket, %key, upload_id = %id, "aborted multipart upload: {why}"),
        Err(err) => warn!(
            %bucket, %key, upload_id = %id,
            "failed to abort multipart upload ({why}): {}",
            describe("aborting", &err)
        ),
    }
}
