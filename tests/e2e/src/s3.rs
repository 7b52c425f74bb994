//! A direct S3 client (aws-sdk-s3, not the extension) for checking what the
//! extension left in S3 and for preparing buckets: blocking calls on a
//! runtime of its own.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use harness::S3;

/// An S3 client of the test's own, pointed at an [`S3`] server.
pub struct Direct {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Direct {
    /// A client of `s3` with its test credentials.
    pub fn new(s3: &S3) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = s3.sdk_config("tests");
        Self {
            rt,
            client: Client::from_conf(config),
        }
    }

    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        self.rt
            .block_on(self.client.create_bucket().bucket(bucket).send())
            .unwrap();
    }

    /// Puts one small object per name into `bucket`, 32 at a time.
    pub fn put_objects(&self, bucket: &str, names: &[String]) {
        use futures::StreamExt as _;
        self.rt.block_on(async {
            futures::stream::iter(names)
                .map(|name| {
                    self.client
                        .put_object()
                        .bucket(bucket)
                        .key(name)
                        .body(ByteStream::from_static(b"x"))
                        .send()
                })
                .buffer_unordered(32)
                .for_each(|put| async {
                    put.unwrap();
                })
                .await;
        });
    }

    /// The keys of `bucket`.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.rt.block_on(async {
            let mut keys = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                keys.extend(
                    page.unwrap()
                        .contents
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|o| o.key),
                );
            }
            keys
        })
    }

    /// The multipart uploads in progress in `bucket`, as (key, upload id).
    pub fn uploads(&self, bucket: &str) -> Vec<(String, String)> {
        let listed = self
            .rt
            .block_on(self.client.list_multipart_uploads().bucket(bucket).send())
            .unwrap();
        listed
            .uploads
            .unwrap_or_default()
            .into_iter()
            .map(|u| (u.key.unwrap_or_default(), u.upload_id.unwrap_or_default()))
            .collect()
    }
}
