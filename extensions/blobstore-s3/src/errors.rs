//! S3 failures as the interface's error strings: what was being done, and
//! S3's error code and message (or why S3 could not be reached).

use core::fmt::Debug;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// `` `{what}`: S3 {code}: {message}`` for a service error, a plain reason
/// otherwise (counted in `/metrics` as a backend error).
pub fn describe<E, R>(what: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) if !message.is_empty() => {
                    format!("{what}: S3 {code}: {message}")
                }
                (Some(code), _) => format!("{what}: S3 {code}"),
                (None, _) => format!("{what}: {}", DisplayErrorContext(err)),
            }
        }
        SdkError::TimeoutError(_) => {
            sdk::backend_error("s3", "timeout");
            format!("{what}: S3 did not answer in time")
        }
        SdkError::DispatchFailure(failure) => {
            sdk::backend_error("s3", "connection");
            let why = if failure.is_timeout() {
                "timed out".to_string()
            } else {
                format!("{}", DisplayErrorContext(err))
            };
            format!("{what}: S3 is unreachable: {why}")
        }
        _ => {
            sdk::backend_error("s3", "other");
            format!("{what}: {}", DisplayErrorContext(err))
        }
    }
}

/// S3's error code of `err`, if S3 answered with one.
pub fn code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// The HTTP status S3 answered with, if it answered.
pub fn status<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Whether S3 said the bucket or object does not exist.
pub fn is_not_found<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    status(err) == Some(404) || matches!(code(err), Some("NoSuchKey" | "NoSuchBucket" | "NotFound"))
}

/// Whether S3 said the bucket does not exist.
pub fn is_no_such_bucket<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    code(err) == Some("NoSuchBucket")
}
