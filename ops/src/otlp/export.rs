//! The exporter's thread: builds an OTLP span exporter (HTTP protobuf over
//! hyper and rustls, or gRPC over tonic) on a runtime of its own, and
//! sends the queued spans in batches.

use core::time::Duration;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
use opentelemetry_otlp::{
    ExporterBuildError, RetryPolicy, SpanExporter, WithExportConfig as _, WithHttpConfig as _,
    WithTonicConfig as _,
};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;

use super::{Config, Protocol, BATCH, DROPPED, INTERVAL, REQUEST_TIMEOUT};

/// Builds the exporter for `config`, as `service`. Call it within a Tokio
/// runtime: gRPC channels start a task on it.
pub(super) fn build(config: &Config, service: &str) -> Result<SpanExporter, ExporterBuildError> {
    let target = config.endpoint.target(config.protocol);
    let mut exporter = match config.protocol {
        Protocol::HttpProtobuf => {
            let headers: HashMap<String, String> = config
                .headers
                .0
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect();
            SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(http_client(config)?)
                .with_endpoint(target)
                .with_headers(headers)
                .with_timeout(REQUEST_TIMEOUT)
                .with_retry_policy(RetryPolicy::disabled())
                .build()?
        }
        Protocol::Grpc => {
            let mut builder = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(target)
                .with_metadata(MetadataMap::from_headers(config.headers.0.clone()))
                .with_timeout(REQUEST_TIMEOUT)
                .with_retry_policy(RetryPolicy::disabled());
            if config.endpoint.is_https() {
                let tls = ClientTlsConfig::new();
                let tls = match &config.certificate {
                    Some(ca) => tls.ca_certificate(Certificate::from_pem(ca.pem())),
                    None => tls.with_webpki_roots(),
                };
                builder = builder.with_tls_config(tls);
            }
            builder.build()?
        }
    };
    exporter.set_resource(
        &Resource::builder_empty()
            .with_service_name(service.to_string())
            .build(),
    );
    Ok(exporter)
}

/// A hyper client speaking plain HTTP or HTTPS (rustls with ring, trusting
/// the configured CA, else the Mozilla roots).
fn http_client(config: &Config) -> Result<impl opentelemetry_http::HttpClient, ExporterBuildError> {
    let fail = |e: &dyn core::fmt::Display| ExporterBuildError::InternalFailure(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    match &config.certificate {
        Some(ca) => {
            for cert in ca.certificates() {
                roots.add(cert.clone()).map_err(|e| fail(&e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(&e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(opentelemetry_http::hyper::HyperClient::new(
        connector,
        REQUEST_TIMEOUT,
        None,
    ))
}

/// The exporter thread's loop: batches of at most [`BATCH`] spans, sent at
/// least every [`INTERVAL`], and at once on a flush request (answered once
/// everything queued before it was sent). Returns when the layer is gone.
pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    exporter: &SpanExporter,
    endpoint: &str,
    spans: &Receiver<SpanData>,
    flushes: &Receiver<SyncSender<()>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut warned = false;
    let mut send = |batch: &mut Vec<SpanData>| {
        if batch.is_empty() {
            return;
        }
        let spans = core::mem::replace(batch, Vec::with_capacity(BATCH));
        let count = spans.len() as u64;
        match runtime.block_on(exporter.export(spans)) {
            Ok(()) => warned = false,
            Err(why) => {
                metrics::counter!(DROPPED).increment(count);
                if !warned {
                    tracing::warn!(target: "ops::otlp", "cannot send spans to {endpoint}: {why}");
                    warned = true;
                }
            }
        }
    };
    loop {
        let deadline = Instant::now() + INTERVAL;
        let mut flush = None;
        let mut closed = false;
        while batch.len() < BATCH {
            if let Ok(done) = flushes.try_recv() {
                flush = Some(done);
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // Short waits, so a flush is seen within 50 ms.
            match spans.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(span) => batch.push(span),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if flush.is_some() {
            while let Ok(span) = spans.try_recv() {
                batch.push(span);
                if batch.len() == BATCH {
                    send(&mut batch);
                }
            }
        }
        send(&mut batch);
        if let Some(done) = flush {
            let _ = done.try_send(());
        }
        if closed {
            return;
        }
    }
}
