//! Large objects: a guest's put and get of one object through the host and
//! blobstore-s3 over TCP and over NATS, next to a direct aws-sdk-s3 put and
//! get against the same S3-compatible server (moto) in the same run, with
//! the peak resident set (`VmHWM`) of the host and of the extension.
//!
//! Each guest transfer gets a fresh host and a fresh extension, so each peak
//! belongs to one transfer. The direct put sends the same parts the
//! extension would (8 MiB, 2 in flight), the direct get reads the body and
//! drops it, as the guest does.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use harness::{spawn_host, Extension, Nats, S3};

use crate::report::{BlobRow, Transport};

/// Part size and parts in flight: the extension's defaults.
const PART: usize = 8 << 20;
const IN_FLIGHT: usize = 2;

/// Message size of the raw NATS reference: the sdk's result chunk.
const MESSAGE: usize = 256 * 1024;

/// The bucket every transfer uses.
const BUCKET: &str = "bench";

/// A hang guard for one transfer.
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// The servers of the blob benchmark.
pub struct BlobStack {
    s3: S3,
    nats: Nats,
    direct: Direct,
}

impl BlobStack {
    /// Starts moto and nats-server and creates the bucket.
    pub fn start() -> anyhow::Result<Self> {
        let s3 = S3::start()?;
        let nats = Nats::start()?;
        let direct = Direct::new(&s3)?;
        direct.create_bucket()?;
        Ok(Self { s3, nats, direct })
    }

    /// Every row, in the order measured: each guest transfer right after the
    /// direct one it is compared with.
    pub fn measure(&self, size: u64, progress: impl Fn(&str)) -> anyhow::Result<Vec<BlobRow>> {
        let mut rows = Vec::new();
        progress("blob: direct aws-sdk-s3 put");
        rows.push(self.direct.put("direct", size)?);
        for t in [Transport::Tcp, Transport::Nats] {
            progress(&format!("blob: guest put over {}", t.label()));
            rows.push(self.guest(t, true, size)?);
        }
        progress("blob: direct aws-sdk-s3 get");
        rows.push(self.direct.get("direct", size)?);
        for t in [Transport::Tcp, Transport::Nats] {
            progress(&format!("blob: guest get over {}", t.label()));
            rows.push(self.guest(t, false, size)?);
        }
        progress("blob: raw NATS reference");
        rows.push(self.raw_nats(size)?);
        Ok(rows)
    }

    /// What NATS alone moves here: `size` bytes from one async-nats client to
    /// another through the same nats-server, in [`MESSAGE`]-byte messages
    /// with at most the transport's window unacknowledged, the receiver
    /// acknowledging every half window, as the transport's credits do.
    fn raw_nats(&self, size: u64) -> anyhow::Result<BlobRow> {
        use futures::StreamExt as _;
        const DATA: &str = "bench.blob.data";
        const ACK: &str = "bench.blob.ack";
        let window = transport::nats::STREAM_WINDOW;
        let url = self.nats.url();
        let rt = &self.direct.rt;
        let secs = rt.block_on(rt.spawn(async move {
            let publisher = async_nats::connect(&url).await?;
            let subscriber = async_nats::connect(&url).await?;
            let mut data = subscriber.subscribe(DATA).await?;
            let mut acks = publisher.subscribe(ACK).await?;
            subscriber.flush().await?;
            publisher.flush().await?;
            let start = Instant::now();
            let receiver = tokio::spawn(async move {
                let (mut got, mut acked) = (0u64, 0u64);
                while got < size {
                    let msg = data.next().await.context("the data subscription ended")?;
                    got += msg.payload.len() as u64;
                    if got - acked >= window / 2 || got == size {
                        subscriber.publish(ACK, got.to_string().into()).await?;
                        acked = got;
                    }
                }
                subscriber.flush().await?;
                anyhow::Ok(got)
            });
            let message = Bytes::from(vec![7u8; MESSAGE]);
            let (mut sent, mut acked) = (0u64, 0u64);
            while sent < size {
                let n = (size - sent).min(MESSAGE as u64);
                while sent - acked + n > window {
                    let ack = acks.next().await.context("the ack subscription ended")?;
                    acked = std::str::from_utf8(&ack.payload)?.parse()?;
                }
                publisher.publish(DATA, message.slice(..n as usize)).await?;
                sent += n;
            }
            publisher.flush().await?;
            let got = receiver.await??;
            anyhow::ensure!(got == size, "the subscriber got {got} of {size} bytes");
            anyhow::Ok(start.elapsed().as_secs_f64())
        }))??;
        Ok(BlobRow {
            path: format!(
                "reference: raw async-nats publish → nats-server → subscriber, {} KiB messages, {} MiB window (no S3)",
                MESSAGE >> 10,
                window >> 20
            ),
            put: false,
            bytes: size,
            secs,
            host_peak_kib: None,
            ext_peak_kib: None,
        })
    }

    /// One guest transfer of `object-<transport>` through a fresh extension.
    fn guest(&self, t: Transport, put: bool, size: u64) -> anyhow::Result<BlobRow> {
        let listen = match t {
            Transport::Nats => self.nats.url(),
            _ => "tcp://127.0.0.1:0".to_string(),
        };
        let ext = Extension::start_with_env(
            &harness::bin("blobstore-s3")?,
            &self.s3.args(),
            &[listen],
            &S3::env(),
        )?;
        let target = match t {
            Transport::Nats => self.nats.url(),
            _ => ext.address("tcp").context("no tcp listener")?.to_string(),
        };
        let scenario = if put { "bench-put" } else { "bench-get" };
        let object = format!("object-{}", t.label());
        let manifest = format!(
            "name: bench\nnamespace: bench\ncomponents:\n  - name: blob\n    file: ./guest.wasm\n    config: {{ SCENARIO: \"{scenario}\", CONTAINER: \"{BUCKET}\", NAME: \"{object}\", SIZE: \"{size}\" }}\nwrpc:\n  - interface: wasi:blobstore\n    target: \"{target}\"\n  - interface: blobstore-s3:admin\n    target: \"{target}\"\n"
        );
        let host = spawn_host(&manifest, guests::BLOB_GUEST.as_ref(), &[])?;
        let (run, host_peak) = host.wait_with_peak_rss(RUN_LIMIT)?;
        if run.code != Some(0) {
            bail!(
                "guest {scenario} over {} failed (exit {:?})\nstdout: {}\nstderr: {}",
                t.label(),
                run.code,
                run.stdout,
                run.stderr
            );
        }
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("bench put:") || l.starts_with("bench get:"))
            .with_context(|| format!("no bench line in {}", run.stdout))?;
        let bytes: u64 = crate::report::field(line, "bytes=")?;
        let ns: u64 = crate::report::field(line, "ns=")?;
        let ext_peak = ext.peak_rss_kib()?;
        if !put {
            self.direct.delete(&object)?;
        }
        Ok(BlobRow {
            path: format!(
                "guest {} → {} → blobstore-s3 → S3",
                if put { "put" } else { "get" },
                t.label()
            ),
            put,
            bytes,
            secs: ns as f64 / 1e9,
            host_peak_kib: Some(host_peak),
            ext_peak_kib: Some(ext_peak),
        })
    }
}

/// aws-sdk-s3 from the bench process, on a runtime of its own.
struct Direct {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

impl Direct {
    fn new(s3: &S3) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Runtime::new()?;
        let config = s3.sdk_config("bench");
        Ok(Self {
            rt,
            client: aws_sdk_s3::Client::from_conf(config),
        })
    }

    fn create_bucket(&self) -> anyhow::Result<()> {
        self.rt
            .block_on(self.client.create_bucket().bucket(BUCKET).send())?;
        Ok(())
    }

    fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.rt
            .block_on(self.client.delete_object().bucket(BUCKET).key(key).send())?;
        Ok(())
    }

    /// A multipart upload of `size` bytes, `IN_FLIGHT` parts at a time.
    fn put(&self, key: &str, size: u64) -> anyhow::Result<BlobRow> {
        let client = self.client.clone();
        let key = key.to_string();
        let secs = self.rt.block_on(self.rt.spawn(async move {
            let part = Bytes::from(vec![7u8; PART]);
            let start = Instant::now();
            let id = client
                .create_multipart_upload()
                .bucket(BUCKET)
                .key(&key)
                .send()
                .await?
                .upload_id
                .context("no upload id")?;
            let mut sending = tokio::task::JoinSet::new();
            let mut parts = Vec::new();
            let mut at = 0u64;
            let mut number = 0;
            while at < size {
                let n = (size - at).min(PART as u64) as usize;
                number += 1;
                while sending.len() >= IN_FLIGHT {
                    parts.push(sending.join_next().await.context("no part")???);
                }
                let (client, key, id, body) =
                    (client.clone(), key.clone(), id.clone(), part.slice(..n));
                sending.spawn(async move {
                    let sent = client
                        .upload_part()
                        .bucket(BUCKET)
                        .key(&key)
                        .upload_id(&id)
                        .part_number(number)
                        .body(ByteStream::from(body))
                        .send()
                        .await?;
                    anyhow::Ok(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(sent.e_tag)
                            .build(),
                    )
                });
                at += n as u64;
            }
            while let Some(part) = sending.join_next().await {
                parts.push(part??);
            }
            parts.sort_by_key(|p| p.part_number);
            client
                .complete_multipart_upload()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await?;
            anyhow::Ok(start.elapsed().as_secs_f64())
        }))??;
        Ok(BlobRow {
            path: "baseline: direct aws-sdk-s3 put (multipart, 8 MiB parts, 2 in flight)".into(),
            put: true,
            bytes: size,
            secs,
            host_peak_kib: None,
            ext_peak_kib: None,
        })
    }

    /// A streamed get of the whole object, its bytes dropped.
    fn get(&self, key: &str, size: u64) -> anyhow::Result<BlobRow> {
        let client = self.client.clone();
        let owned = key.to_string();
        let (secs, bytes) = self.rt.block_on(self.rt.spawn(async move {
            let start = Instant::now();
            let mut body = client
                .get_object()
                .bucket(BUCKET)
                .key(&owned)
                .send()
                .await?
                .body;
            let mut bytes = 0u64;
            while let Some(chunk) = body.next().await {
                bytes += chunk?.len() as u64;
            }
            anyhow::Ok((start.elapsed().as_secs_f64(), bytes))
        }))??;
        if bytes != size {
            bail!("the direct get read {bytes} of {size} bytes");
        }
        self.delete(key)?;
        Ok(BlobRow {
            path: "baseline: direct aws-sdk-s3 get".into(),
            put: false,
            bytes,
            secs,
            host_peak_kib: None,
            ext_peak_kib: None,
        })
    }
}
