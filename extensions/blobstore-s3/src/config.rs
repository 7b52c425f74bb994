//! The S3 flags, and the client they build.

use core::fmt;
use core::time::Duration;

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};

/// The smallest part S3 accepts in a multipart upload (but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// The first retry's longest wait; each next one may wait twice as long.
/// The SDK's 1 s would keep a call made during an S3 outage waiting up to
/// 3 s after S3 is back, past a caller's deadline.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait before any retry.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// How to reach S3 and how to lay containers out in it.
#[derive(Clone, clap::Args)]
pub struct S3Args {
    /// S3 endpoint, e.g. http://127.0.0.1:9000 for an S3-compatible server
    /// (default: AWS's endpoint for the region).
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Region to sign requests for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Address buckets as ENDPOINT/BUCKET instead of BUCKET.ENDPOINT (most
    /// S3-compatible servers want this).
    #[arg(long, env = "S3_PATH_STYLE")]
    pub s3_path_style: bool,

    /// PEM file of a CA to trust besides the system's (an S3-compatible
    /// server with a private CA).
    #[arg(long, env = "S3_CA_FILE")]
    pub s3_ca_file: Option<PathBuf>,

    /// Deadline of each S3 request attempt, and of connecting; a streamed
    /// body is bounded by the transfer's idle timeout instead.
    #[arg(long, env = "S3_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub s3_timeout: Duration,

    /// Deadline of each attempt of a request that carries or assembles
    /// object data (PutObject, UploadPart, CompleteMultipartUpload,
    /// CopyObject): S3 may take minutes to assemble a large object, and a
    /// retry racing a completion still under way fails.
    #[arg(long, env = "S3_TRANSFER_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub s3_transfer_timeout: Duration,

    /// Attempts per S3 request (1 = no retries); retries back off (a random
    /// wait up to 100 ms, doubling, at most 1 s) and only happen for errors
    /// S3 marks as transient.
    #[arg(long, env = "S3_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub s3_max_attempts: u32,

    /// A container name that maps to a given bucket, as NAME=BUCKET
    /// (repeatable; env: space- or comma-separated). Aliased containers are
    /// shared by every namespace.
    #[arg(long = "alias", env = "BLOBSTORE_ALIASES", value_delimiter = ',', value_parser = parse_alias)]
    pub aliases: Vec<(String, String)>,

    /// Keep the containers of different namespaces apart: container C of
    /// namespace N is bucket `<len(N)>-N-C` (namespace from the caller's
    /// headers, `default` when it names none).
    #[arg(long, env = "BLOBSTORE_ISOLATE_NAMESPACES")]
    pub isolate_namespaces: bool,

    /// Create a missing container when an object is written to it.
    #[arg(long, env = "BLOBSTORE_AUTO_CREATE")]
    pub auto_create: bool,

    /// Bodies up to this size are stored with one PutObject; larger ones in a
    /// multipart upload of parts this size (at least 5 MiB).
    #[arg(long, env = "BLOBSTORE_PART_SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub part_size: u64,

    /// Parts of one upload sent to S3 at once. A write holds at most
    /// part size × (this + 1) bytes.
    #[arg(long, env = "BLOBSTORE_PARTS_IN_FLIGHT", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub parts_in_flight: u32,

    /// Names asked of S3 per page when listing objects (at most 1000).
    #[arg(long, env = "BLOBSTORE_LIST_PAGE", default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub list_page: i32,
}

impl fmt::Debug for S3Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Args")
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_path_style", &self.s3_path_style)
            .field("s3_timeout", &self.s3_timeout)
            .field("s3_transfer_timeout", &self.s3_transfer_timeout)
            .field("aliases", &self.aliases)
            .field("isolate_namespaces", &self.isolate_namespaces)
            .field("auto_create", &self.auto_create)
            .field("part_size", &self.part_size)
            .field("parts_in_flight", &self.parts_in_flight)
            .finish_non_exhaustive()
    }
}

/// Standard retries, `max_attempts` in all, backing off from [`RETRY_BACKOFF`].
fn retry_config(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(RETRY_BACKOFF)
        .with_max_backoff(MAX_RETRY_BACKOFF)
}

fn parse_alias(s: &str) -> Result<(String, String), String> {
    let (name, bucket) = s
        .trim()
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=BUCKET"))?;
    if name.is_empty() || bucket.is_empty() {
        return Err(format!("`{s}` is not NAME=BUCKET"));
    }
    crate::names::check_bucket(bucket).map_err(|why| format!("alias `{name}`: {why}"))?;
    Ok((name.to_string(), bucket.to_string()))
}

/// `8MiB`, `5242880`, `16 MiB`, `1GiB`: a byte count.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is not a size"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` (use B, KiB, MiB or GiB)")),
    };
    let size = n
        .checked_mul(scale)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if !(MIN_PART_SIZE..=5 << 30).contains(&size) {
        return Err(format!("`{s}`: S3 parts are 5 MiB to 5 GiB"));
    }
    Ok(size)
}

impl S3Args {
    /// The S3 client these flags describe. Credentials come from the
    /// standard AWS chain: environment (`AWS_ACCESS_KEY_ID`, …), profile
    /// files, web identity (Kubernetes service accounts), ECS and EC2
    /// instance metadata.
    pub async fn client(&self) -> anyhow::Result<aws_sdk_s3::Client> {
        let mut trust = TrustStore::default();
        if let Some(path) = &self.s3_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --s3-ca-file {}", path.display()))?;
            trust = trust.with_pem_certificate(pem);
        }
        let tls = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .context("TLS settings for S3")?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls)
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.s3_timeout)
            .operation_attempt_timeout(self.s3_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(self.s3_region.clone()))
            .timeout_config(timeouts)
            .retry_config(retry_config(self.s3_max_attempts));
        if let Some(endpoint) = &self.s3_endpoint {
            if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                bail!("--s3-endpoint `{endpoint}` must start with http:// or https://");
            }
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(self.s3_path_style)
            // Checksums only where S3 requires them: S3-compatible servers
            // differ in which trailers they understand.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(aws_sdk_s3::Client::from_conf(config))
    }

    /// `s3` with `--s3-transfer-timeout` as its attempt deadline: the client
    /// of requests that move object data.
    pub fn transfer_client(&self, s3: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.s3_timeout)
            .operation_attempt_timeout(self.s3_transfer_timeout)
            .build();
        aws_sdk_s3::Client::from_conf(s3.config().to_builder().timeout_config(timeouts).build())
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_alias, parse_size, retry_config};
    use core::time::Duration;

    /// A call made during an S3 outage is retried soon after S3 is back:
    /// the waits between attempts stay short (the fault suite's S3 restart
    /// measures the recovery).
    #[test]
    fn retries_back_off_from_100ms_to_at_most_1s() {
        let retry = retry_config(3);
        assert_eq!(retry.max_attempts(), 3);
        assert_eq!(retry.initial_backoff(), Duration::from_millis(100));
        assert_eq!(retry.max_backoff(), Duration::from_secs(1));
    }

    #[test]
    fn sizes_and_aliases() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("5242880"), Ok(5 << 20));
        assert!(parse_size("1MiB").unwrap_err().contains("5 MiB to 5 GiB"));
        assert!(parse_size("8 mb").unwrap_err().contains("unknown unit"));
        assert_eq!(
            parse_alias("photos=my-photos"),
            Ok(("photos".into(), "my-photos".into()))
        );
        assert!(parse_alias("photos").is_err());
        assert!(parse_alias("photos=Bad_Bucket")
            .unwrap_err()
            .contains("alias `photos`"));
    }
}
