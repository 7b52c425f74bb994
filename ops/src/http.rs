//! The HTTP endpoint: `/healthz` (the process runs), `/readyz`
//! ([`Readiness`]) and `/metrics` (Prometheus text format).

use core::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Readiness;

/// The endpoint's address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (the /healthz, /readyz and /metrics endpoint): {error}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// The OS error.
    pub error: std::io::Error,
}

/// A bound endpoint, not yet serving.
pub struct OpsEndpoint {
    listener: TcpListener,
    local: SocketAddr,
}

impl OpsEndpoint {
    /// Binds `addr` (port 0 picks a free port; see [`OpsEndpoint::local_addr`]).
    ///
    /// # Errors
    ///
    /// [`BindError`] naming the address.
    pub async fn bind(addr: SocketAddr) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| BindError { addr, error })?;
        let local = listener
            .local_addr()
            .map_err(|error| BindError { addr, error })?;
        Ok(Self { listener, local })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves on a task of its own until `stop` is cancelled. Installs the
    /// metrics recorder if nothing did yet.
    pub fn spawn(self, readiness: Readiness, stop: CancellationToken) {
        crate::metrics::install();
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/readyz",
                get(move || {
                    let readiness = readiness.clone();
                    async move {
                        let report = readiness.report().await;
                        let status = if report.ready {
                            StatusCode::OK
                        } else {
                            StatusCode::SERVICE_UNAVAILABLE
                        };
                        (status, report.body)
                    }
                }),
            )
            .route(
                "/metrics",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        crate::metrics::render(),
                    )
                        .into_response()
                }),
            );
        tokio::spawn(async move {
            let served = axum::serve(self.listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::warn!(%err, "the health endpoint stopped");
            }
        });
    }
}
