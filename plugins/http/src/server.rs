//! The host's HTTP listener: HTTP/1.1 with keep-alive and HTTP/2 (prior
//! knowledge) on one port, each request routed to the workload whose
//! `http:` route it matches.

use core::convert::Infallible;
use core::net::SocketAddr;
use core::time::Duration;

use std::sync::{Arc, Mutex};

use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use transport::TraceContext;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError};

use crate::body::{self, Guarded};
use crate::routes::{InFlight, Route, Routes};

/// Requests a workload answered (or the host for it), by `workload` and
/// `status`.
pub const REQUESTS: &str = "host_http_requests_total";

/// The body of every response the listener sends.
pub(crate) type ResponseBody = Guarded<Option<InFlight>>;

/// Limits of the listener, the same for every workload.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// The most bytes of a request's head (request line and headers); a
    /// larger one gets 431.
    pub max_header_bytes: usize,
    /// The most header fields in a request.
    pub max_headers: usize,
    /// The most connections open at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// How long a client may take to send a request's head.
    pub header_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// The address cannot be listened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {addr}: {error}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// The OS error.
    pub error: std::io::Error,
}

impl core::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpServer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// A bound HTTP listener; it accepts once the plugin starts.
pub struct HttpServer {
    listener: Mutex<Option<TcpListener>>,
    local: SocketAddr,
    limits: HttpLimits,
    pub(crate) routes: Arc<Routes>,
    stop: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks one: see [`local_addr`](Self::local_addr)).
    ///
    /// # Errors
    ///
    /// [`BindError`] naming the address.
    pub async fn bind(addr: SocketAddr, limits: HttpLimits) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| BindError { addr, error })?;
        let local = listener
            .local_addr()
            .map_err(|error| BindError { addr, error })?;
        Ok(Self {
            listener: Mutex::new(Some(listener)),
            local,
            limits,
            routes: Arc::default(),
            stop: Arc::new(Notify::new()),
            task: Mutex::new(None),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Starts accepting connections.
    pub(crate) fn start(&self) {
        let Some(listener) = self.listener.lock().ok().and_then(|mut l| l.take()) else {
            return;
        };
        let task = tokio::spawn(accept(
            listener,
            self.limits,
            Arc::clone(&self.routes),
            Arc::clone(&self.stop),
        ));
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(task);
        }
    }

    /// Stops accepting; lets requests in flight finish within `grace`, then
    /// closes every connection.
    pub(crate) async fn stop(&self, grace: Duration) {
        self.stop.notify_one();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if tokio::time::timeout(grace, task).await.is_err() {
                warn!("HTTP connections still open after {grace:?}; closing them");
            }
        }
    }
}

/// Accepts connections until told to stop, then shuts them down gracefully.
async fn accept(listener: TcpListener, limits: HttpLimits, routes: Arc<Routes>, stop: Arc<Notify>) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .timer(TokioTimer::new());
    loop {
        let accepted = tokio::select! {
            () = stop.notified() => break,
            accepted = async {
                let permit = Arc::clone(&permits).acquire_owned().await;
                (permit, listener.accept().await)
            } => accepted,
        };
        let (permit, stream) = match accepted {
            (Ok(permit), Ok((stream, _))) => (permit, stream),
            (_, Err(err)) => {
                warn!("HTTP accept failed: {err}");
                continue;
            }
            (Err(_), _) => break,
        };
        let _ = stream.set_nodelay(true);
        let routes = Arc::clone(&routes);
        let service = hyper::service::service_fn(move |req| {
            let routes = Arc::clone(&routes);
            async move { Ok::<_, Infallible>(handle(&routes, req).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = watched.await {
                debug!("HTTP connection ended: {err}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The host's own answer: `status` with a line of text.
fn answer(status: StatusCode, message: String) -> Response<ResponseBody> {
    let mut response = Response::new(Guarded::new(body::text(message), None));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The request's host, lower case, without a port.
fn host_of(req: &Request<Incoming>) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let authority: http::uri::Authority = raw.parse().ok()?;
    Some(authority.host().to_ascii_lowercase())
}

/// Routes one request and answers it.
async fn handle(routes: &Routes, req: Request<Incoming>) -> Response<ResponseBody> {
    let host = host_of(&req);
    let path = req.uri().path().to_string();
    let Some(route) = routes.find(host.as_deref(), &path) else {
        return answer(
            StatusCode::NOT_FOUND,
            format!(
                "no workload answers host `{}` path `{path}`\n",
                host.as_deref().unwrap_or("")
            ),
        );
    };
    let Some(guard) = route.enter() else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("workload `{}` is stopping\n", route.workload),
        );
    };
    let max = route.spec.max_request_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body larger than workload `{}`'s limit of {max} bytes\n",
                route.workload
            ),
        );
    }
    let trace = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::root, |t| t.child());
    let req = req.map(|b| body::limited(b, max));
    // The deadline is kept here: a WASI 0.2 guest blocked in a host call
    // is not interrupted by the handler's own expiry until later.
    let response =
        match tokio::time::timeout(route.spec.timeout, route.handler.handle(trace, req)).await {
            Ok(Ok(response)) => response.map(|b| Guarded::new(b, Some(guard))),
            Ok(Err(err)) => failed(&route, &err),
            Err(_) => failed(&route, &ExpirationError.into()),
        };
    metrics::counter!(
        REQUESTS,
        "workload" => route.workload.clone(),
        "status" => response.status().as_str().to_string()
    )
    .increment(1);
    response
}

/// A request the component did not answer: 504 past the deadline, else 500,
/// with a log line naming the workload and component.
fn failed(route: &Route, err: &wasmtime::Error) -> Response<ResponseBody> {
    let component = route.handler.state().component();
    let workload = &route.workload;
    if err.downcast_ref::<ExpirationError>().is_some() {
        let timeout = route.spec.timeout;
        warn!(
            workload,
            component, "HTTP request expired: no response within {timeout:?}"
        );
        return answer(
            StatusCode::GATEWAY_TIMEOUT,
            format!("component `{component}` of workload `{workload}` did not answer within {timeout:?}\n"),
        );
    }
    let reason = match err.downcast_ref::<InstantiationError<TraceContext>>() {
        Some(err) => format!(
            "cannot instantiate: {}",
            host_plugin::describe_trap(&err.error)
        ),
        None => host_plugin::describe_trap(err),
    };
    warn!(workload, component, "HTTP request failed: {reason}");
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("component `{component}` of workload `{workload}` failed: {reason}\n"),
    )
}
