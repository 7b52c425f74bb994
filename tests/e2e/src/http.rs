//! A real HTTP client (hyper) for the tests of the host's HTTP listener:
//! one request per connection, several over one kept-alive connection, or
//! HTTP/2 with prior knowledge; every exchange under a deadline.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// How long one exchange may take in a test before it counts as a hang.
pub const EXCHANGE_LIMIT: Duration = Duration::from_secs(60);

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status code.
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request for `path` with `Host: host` and `body` (`GET` when empty,
/// else `POST`).
pub fn request(host: &str, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    let body = body.into();
    let method = if body.is_empty() { "GET" } else { "POST" };
    Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host)
        .body(Full::new(body))
        .unwrap_or_else(|_| unreachable!("a valid request"))
}

/// One kept-alive HTTP/1.1 connection.
pub struct Connection(http1::SendRequest<Full<Bytes>>);

impl Connection {
    /// Connects to `addr` (`host:port`).
    ///
    /// # Errors
    ///
    /// It cannot connect.
    pub async fn open(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self(send))
    }

    /// Sends `req` on it and reads the whole response.
    ///
    /// # Errors
    ///
    /// The exchange failed or took longer than [`EXCHANGE_LIMIT`].
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        tokio::time::timeout(EXCHANGE_LIMIT, async {
            self.0.ready().await?;
            let response = self.0.send_request(req).await?;
            read(response).await
        })
        .await
        .context("HTTP exchange hung")?
    }
}

async fn read(response: http::Response<hyper::body::Incoming>) -> anyhow::Result<Reply> {
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Sends `req` to `addr` on a connection of its own.
///
/// # Errors
///
/// As [`Connection::send`].
pub async fn send(addr: &str, req: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
    Connection::open(addr).await?.send(req).await
}

/// Sends `req` to `addr` over HTTP/2 (prior knowledge).
///
/// # Errors
///
/// As [`Connection::send`].
pub async fn send_h2(addr: &str, req: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
    tokio::time::timeout(EXCHANGE_LIMIT, async {
        let stream = TcpStream::connect(addr).await?;
        let (mut send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let response = send.send_request(req).await?;
        read(response).await
    })
    .await
    .context("HTTP/2 exchange hung")?
}

/// A plain HTTP/1.1 server for components to call: answers every request
/// with `body`, counting them.
pub struct Upstream {
    /// `host:port` it listens on.
    pub addr: String,
    /// Requests it received.
    pub received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Listens on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// It cannot bind.
    pub async fn start(body: &'static str) -> anyhow::Result<Self> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let count = std::sync::Arc::clone(&count);
                let service = hyper::service::service_fn(move |_req| {
                    count.fetch_add(1, Ordering::SeqCst);
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(body.as_bytes()),
                        )))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Host API request: `method` on `path` of the host's ops address, with a
/// JSON body (none when empty).
///
/// # Errors
///
/// As [`Connection::send`].
pub async fn api(addr: &str, method: &str, path: &str, body: &str) -> anyhow::Result<Reply> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    send(addr, req).await
}
