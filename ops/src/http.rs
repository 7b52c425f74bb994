//! The HTTP endpoint: `/healthz` (the process runs), `/readyz`
//! ([`Readiness`]), `/metrics` (Prometheus text format) and, for
//! extensions, `/describe` (what they serve, as JSON).

use core::net::SocketAddr;

use std::sync::{Arc, OnceLock};

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

/// A JSON document served at `/describe` once it is set (503 before).
pub type Description = Arc<OnceLock<String>>;

/// A bound endpoint, not yet serving.
pub struct OpsEndpoint {
    listener: TcpListener,
    local: SocketAddr,
    description: Option<Description>,
    extra: Option<Router>,
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
        Ok(Self {
            listener,
            local,
            description: None,
            extra: None,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Also serves `description` at `/describe` (JSON).
    #[must_use]
    pub fn describe(mut self, description: Description) -> Self {
        self.description = Some(description);
        self
    }

    /// Also serves `routes` (a host's control API, …).
    #[must_use]
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra = Some(match self.extra.take() {
            Some(extra) => extra.merge(routes),
            None => routes,
        });
        self
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
        let app = match self.description {
            Some(description) => app.route(
                "/describe",
                get(move || {
                    let description = description.get().cloned();
                    async move {
                        match description {
                            Some(json) => (
                                StatusCode::OK,
                                [(header::CONTENT_TYPE, "application/json")],
                                json,
                            ),
                            None => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                [(header::CONTENT_TYPE, "text/plain")],
                                "starting\n".to_string(),
                            ),
                        }
                    }
                }),
            ),
            None => app,
        };
        let app = match self.extra {
            Some(extra) => app.merge(extra),
            None => app,
        };
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
