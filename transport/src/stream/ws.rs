//! wRPC framing over WebSocket, so a server can sit behind an HTTP-only ingress.
//!
//! [`WsStream`] turns a WebSocket connection into a plain byte stream
//! ([`AsyncRead`] + [`AsyncWrite`]); [`connect`] opens one as a client (`ws://` or `wss://`),
//! [`WsAcceptor`] accepts one on a server for a single upgrade path.
//!
//! # Half-close
//!
//! wRPC shuts down the write half of a connection once the last outgoing frame is written and
//! keeps reading the peer's frames afterwards (like a TCP half-close). A WebSocket close frame
//! ends *both* directions (the peer may not send anything after it), so `poll_shutdown` does not
//! start with a close frame: it sends an *empty binary message*, which the peer's [`WsStream`]
//! reads as EOF while its own write side stays open. Writes never produce an empty message, so
//! the marker is unambiguous. When a side shuts down after it has already read the peer's EOF,
//! it also sends a close frame, so a completed exchange ends with a regular WebSocket close.
//! A close frame or a TCP EOF from the peer also reads as EOF.
//!
//! TLS is done with `tokio-rustls` and the `ring` provider only; no process-wide default
//! provider is needed.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, Stream};
use http::header::{HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::handshake::server::{create_response, write_response, Request};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as TError, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, trace};

/// Largest HTTP request head the acceptor reads before answering 431.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// ALPN protocol offered/accepted for the upgrade (WebSocket needs HTTP/1.1).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Errors of [`connect`], [`WsAcceptor::new`] and [`WsAcceptor::accept`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The URL is not a usable `ws://` / `wss://` URL.
    #[error("invalid WebSocket URL: {0}")]
    Url(String),
    /// An extra header name or value is invalid or reserved for the handshake.
    #[error("invalid header: {0}")]
    Header(String),
    /// Socket I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// TLS configuration (files, keys) or the TLS handshake failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The WebSocket/HTTP handshake failed (malformed or non-upgrade request, bad response...).
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    /// Server side: the upgrade request was for another path (answered with HTTP 404).
    #[error("upgrade request for unknown path {0:?}")]
    NotFound(String),
    /// Connecting (TCP + TLS + upgrade) took longer than the given timeout.
    #[error("WebSocket connect timed out")]
    Timeout,
    /// The server answered the upgrade request with a non-101 status.
    #[error("WebSocket upgrade rejected with HTTP status {status}")]
    Rejected {
        /// The HTTP status code of the server's answer.
        status: u16,
    },
}

/// Options shared by both sides.
#[derive(Clone, Copy, Debug)]
pub struct WsLimits {
    /// Largest message (and frame) accepted from the peer; a peer sending more loses the
    /// connection with a read error. Default 1 MiB.
    pub max_message: usize,
    /// Largest binary message one write produces (longer writes are short writes); clamped to
    /// `1..=max_message`. Default 64 KiB.
    pub max_write: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            max_message: 1 << 20,
            max_write: 64 << 10,
        }
    }
}

impl WsLimits {
    fn config(&self) -> WebSocketConfig {
        let max = self.max_message.max(1);
        WebSocketConfig::default()
            .read_buffer_size(32 << 10)
            // Every message is written to the socket right away; at most one message (plus
            // queued control frames) stays buffered while the socket is not writable.
            .write_buffer_size(0)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }

    fn write_chunk(&self) -> usize {
        self.max_write.clamp(1, self.max_message.max(1))
    }
}

/// TLS material for the client side of wss://.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// PEM CA certificate(s) the server must chain to; without it the webpki (Mozilla) roots
    /// are used.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mTLS (needs `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// TLS material for a wss:// listener.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// PEM certificate chain of the server.
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file`.
    pub key_file: PathBuf,
    /// PEM CA certificate(s); when set, clients must present a certificate chaining to it
    /// (mTLS). See [`MaybeTlsStream::peer_certificates`].
    pub client_ca_file: Option<PathBuf>,
}

/// The transport under a [`WsStream`]: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum MaybeTlsStream<T> {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`wss://`).
    Tls(Box<T>),
}

impl MaybeTlsStream<tokio_rustls::client::TlsStream<TcpStream>> {
    /// The underlying TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.get_ref().0,
        }
    }
}

impl MaybeTlsStream<tokio_rustls::server::TlsStream<TcpStream>> {
    /// The underlying TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.get_ref().0,
        }
    }

    /// The client's verified certificate chain (mTLS), if any.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(s) => s.get_ref().1.peer_certificates(),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTlsStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTlsStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The client side of an established connection over plain TCP or TLS.
pub type ClientStream = WsStream<MaybeTlsStream<tokio_rustls::client::TlsStream<TcpStream>>>;
/// The server side of an accepted connection over plain TCP or TLS.
pub type ServerStream = WsStream<MaybeTlsStream<tokio_rustls::server::TlsStream<TcpStream>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadState {
    Open,
    Eof,
    Failed,
}

/// A WebSocket connection used as a byte stream: each write becomes one binary message,
/// reads return the bytes of binary messages in order.
///
/// Text messages are a protocol error (`InvalidData`), as is a message over
/// [`WsLimits::max_message`]; ping/pong are answered/ignored transparently; an empty binary
/// message, a close frame or the TCP EOF reads as EOF. `poll_shutdown` sends the empty binary
/// message (half-close, see the module docs), plus a close frame if the peer's EOF was already
/// read, and flushes.
#[derive(Debug)]
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The rest of the message being read.
    read_buf: Bytes,
    read_state: ReadState,
    /// The EOF marker (empty binary message) was queued.
    eof_sent: bool,
    /// The close frame was queued (or the connection is closed anyway).
    close_sent: bool,
    max_write: usize,
}

impl<S> WsStream<S> {
    fn new(inner: WebSocketStream<S>, limits: WsLimits) -> Self {
        Self {
            inner,
            read_buf: Bytes::new(),
            read_state: ReadState::Open,
            eof_sent: false,
            close_sent: false,
            max_write: limits.write_chunk(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// The transport under the WebSocket (e.g. to read the peer address or certificates).
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, msg: Message) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_ready(cx)).map_err(write_err)?;
        Pin::new(&mut self.inner)
            .start_send(msg)
            .map_err(write_err)?;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !this.read_buf.is_empty() {
                let n = buf.remaining().min(this.read_buf.len());
                buf.put_slice(&this.read_buf.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match this.read_state {
                ReadState::Open => {}
                ReadState::Eof => return Poll::Ready(Ok(())),
                ReadState::Failed => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "WebSocket read side failed earlier",
                    )))
                }
            }
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => {
                    if data.is_empty() {
                        trace!("peer half-closed the WebSocket stream");
                        this.read_state = ReadState::Eof;
                    } else {
                        this.read_buf = data;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    trace!(?frame, "peer closed the WebSocket");
                    this.read_state = ReadState::Eof;
                    // The peer may not receive anything more; tungstenite answers the close.
                    this.eof_sent = true;
                    this.close_sent = true;
                }
                Some(Ok(Message::Text(_))) => {
                    this.read_state = ReadState::Failed;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected WebSocket text message (binary expected)",
                    )));
                }
                None => {
                    this.read_state = ReadState::Eof;
                }
                Some(Err(TError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                    trace!("WebSocket transport reached EOF without a close frame");
                    this.read_state = ReadState::Eof;
                }
                Some(Err(err)) => {
                    debug!(%err, "WebSocket read failed");
                    this.read_state = ReadState::Failed;
                    return Poll::Ready(Err(read_err(err)));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.eof_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "WebSocket stream is shut down for writing",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(this.max_write);
        ready!(this.poll_send(cx, Message::Binary(Bytes::copy_from_slice(&buf[..n]))))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_flush(cx)
            .map_err(write_err)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.eof_sent {
            match ready!(this.poll_send(cx, Message::Binary(Bytes::new()))) {
                Ok(()) => {}
                // The connection is closed already: nothing to half-close.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => this.close_sent = true,
                Err(e) => return Poll::Ready(Err(e)),
            }
            this.eof_sent = true;
        }
        if !this.close_sent && this.read_state != ReadState::Open {
            match ready!(this.poll_send(cx, Message::Close(None))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            this.close_sent = true;
        }
        match ready!(Pin::new(&mut this.inner).poll_flush(cx)) {
            Ok(()) | Err(TError::ConnectionClosed | TError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(write_err(e))),
        }
    }
}

fn read_err(err: TError) -> io::Error {
    match err {
        TError::Io(e) => e,
        TError::ConnectionClosed | TError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::ConnectionAborted, "WebSocket closed")
        }
        e @ (TError::Protocol(_) | TError::Capacity(_) | TError::Utf8(_)) => {
            io::Error::new(io::ErrorKind::InvalidData, e.to_string())
        }
        e => io::Error::other(e.to_string()),
    }
}

fn write_err(err: TError) -> io::Error {
    match err {
        TError::Io(e) => e,
        TError::ConnectionClosed
        | TError::AlreadyClosed
        | TError::Protocol(ProtocolError::SendAfterClosing) => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        e @ (TError::Protocol(_) | TError::Capacity(_) | TError::Utf8(_)) => {
            io::Error::new(io::ErrorKind::InvalidData, e.to_string())
        }
        e => io::Error::other(e.to_string()),
    }
}

fn client_config(tls: &ClientTls) -> Result<Arc<rustls::ClientConfig>, WsError> {
    let files = crate::endpoint::TlsFiles {
        ca_file: tls.ca_file.clone(),
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
    };
    crate::tls::client_config(&files, ALPN_HTTP11).map_err(|e| WsError::Tls(e.to_string()))
}

fn server_config(tls: &ServerTls) -> Result<Arc<rustls::ServerConfig>, WsError> {
    crate::tls::server_config(
        &tls.cert_file,
        &tls.key_file,
        tls.client_ca_file.as_deref(),
        ALPN_HTTP11,
    )
    .map_err(|e| WsError::Tls(e.to_string()))
}

/// Maps an I/O error of the TLS layer: rustls errors (bad certificate, alert...) become
/// [`WsError::Tls`].
fn tls_io_err(e: io::Error) -> WsError {
    if let Some(tls) = crate::tls::rustls_error(&e) {
        WsError::Tls(tls.to_string())
    } else {
        WsError::Io(e)
    }
}

struct Target {
    uri: Uri,
    tls: bool,
    host: String,
    port: u16,
}

impl Target {
    fn parse(url: &str) -> Result<Self, WsError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| WsError::Url(format!("{url:?}: {e}")))?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(WsError::Url(format!("{url:?}: scheme must be ws or wss"))),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| WsError::Url(format!("{url:?}: no host")))?;
        if authority.as_str().contains('@') {
            return Err(WsError::Url(format!("{url:?}: user info is not supported")));
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        if host.is_empty() {
            return Err(WsError::Url(format!("{url:?}: no host")));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            uri,
            tls,
            host,
            port,
        })
    }
}

fn build_request(uri: &Uri, headers: &[(String, String)]) -> Result<Request, WsError> {
    let mut request = uri
        .into_client_request()
        .map_err(|e| WsError::Url(e.to_string()))?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| WsError::Header(format!("{name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| WsError::Header(format!("value of {name}: {e}")))?;
        match name.as_str() {
            "host" => {
                request.headers_mut().insert(name, value);
            }
            "connection"
            | "upgrade"
            | "sec-websocket-key"
            | "sec-websocket-version"
            | "sec-websocket-accept"
            | "content-length"
            | "transfer-encoding" => {
                return Err(WsError::Header(format!(
                    "{name} is set by the WebSocket handshake"
                )))
            }
            _ => {
                request.headers_mut().append(name, value);
            }
        }
    }
    Ok(request)
}

/// Connects to `url` (`ws://host:port/path` or `wss://...`), sending `headers` on the upgrade
/// request. `timeout` bounds TCP connect + TLS + upgrade together.
///
/// For wss://, the server certificate must chain to `tls.ca_file` when given, else to the
/// webpki (Mozilla) roots; a client certificate is presented when `cert_file` and `key_file`
/// are given. ALPN offers `http/1.1`.
pub async fn connect(
    url: &str,
    headers: &[(String, String)],
    tls: &ClientTls,
    limits: WsLimits,
    timeout: Duration,
) -> Result<ClientStream, WsError> {
    let target = Target::parse(url)?;
    let request = build_request(&target.uri, headers)?;
    let tls_config = if target.tls {
        Some(client_config(tls)?)
    } else {
        None
    };
    tokio::time::timeout(timeout, connect_inner(target, request, tls_config, limits))
        .await
        .unwrap_or(Err(WsError::Timeout))
}

async fn connect_inner(
    target: Target,
    request: Request,
    tls: Option<Arc<rustls::ClientConfig>>,
    limits: WsLimits,
) -> Result<ClientStream, WsError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    tcp.set_nodelay(true)?;
    let io = match tls {
        None => MaybeTlsStream::Plain(tcp),
        Some(config) => {
            let name =
                crate::tls::server_name(&target.host).map_err(|e| WsError::Url(e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| match tls_io_err(e) {
                    WsError::Io(e) => WsError::Tls(format!("TLS handshake failed: {e}")),
                    e => e,
                })?;
            MaybeTlsStream::Tls(Box::new(stream))
        }
    };
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, io, Some(limits.config()))
            .await
            .map_err(|e| match e {
                TError::Http(response) => WsError::Rejected {
                    status: response.status().as_u16(),
                },
                TError::Io(e) => tls_io_err(e),
                e => WsError::Handshake(e.to_string()),
            })?;
    Ok(WsStream::new(ws, limits))
}

/// A server-side acceptor for one upgrade path, with optional TLS.
#[derive(Clone)]
pub struct WsAcceptor {
    path: String,
    limits: WsLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl fmt::Debug for WsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsAcceptor")
            .field("path", &self.path)
            .field("limits", &self.limits)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl WsAcceptor {
    /// An acceptor for upgrade requests to `path` (e.g. `/wrpc`), over TLS when `tls` is given
    /// (the certificate files are read here).
    pub fn new(path: &str, tls: Option<&ServerTls>, limits: WsLimits) -> Result<Self, WsError> {
        if !path.starts_with('/') {
            return Err(WsError::Url(format!(
                "upgrade path {path:?} must start with '/'"
            )));
        }
        let tls = tls
            .map(server_config)
            .transpose()?
            .map(tokio_rustls::TlsAcceptor::from);
        Ok(Self {
            path: path.to_string(),
            limits,
            tls,
        })
    }

    /// Performs the TLS (if any) and WebSocket handshakes on an accepted TCP stream.
    ///
    /// A request for another path gets HTTP 404 ([`WsError::NotFound`]), a malformed or
    /// non-upgrade request 400, a request head over 16 KiB 431. Returns the stream and the
    /// request's headers (lower-case names, only values that are valid UTF-8). There is no
    /// timeout here: wrap the call in one.
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<(ServerStream, Vec<(String, String)>), WsError> {
        tcp.set_nodelay(true)?;
        let mut io = match &self.tls {
            None => MaybeTlsStream::Plain(tcp),
            Some(acceptor) => {
                let stream = acceptor
                    .accept(tcp)
                    .await
                    .map_err(|e| match tls_io_err(e) {
                        WsError::Io(e) => WsError::Tls(format!("TLS handshake failed: {e}")),
                        e => e,
                    })?;
                MaybeTlsStream::Tls(Box::new(stream))
            }
        };

        let (request, rest) = match read_request(&mut io).await {
            Ok(r) => r,
            Err((status, err)) => {
                if let Some(status) = status {
                    reject(&mut io, status).await;
                }
                return Err(err);
            }
        };
        let path = request.uri().path();
        if path != self.path {
            let path = path.to_string();
            reject(&mut io, StatusCode::NOT_FOUND).await;
            return Err(WsError::NotFound(path));
        }
        let response = match create_response(&request) {
            Ok(r) => r,
            Err(e) => {
                reject(&mut io, StatusCode::BAD_REQUEST).await;
                return Err(WsError::Handshake(e.to_string()));
            }
        };
        let mut head = Vec::with_capacity(256);
        write_response(&mut head, &response).map_err(|e| WsError::Handshake(e.to_string()))?;
        io.write_all(&head).await.map_err(tls_io_err)?;
        io.flush().await.map_err(tls_io_err)?;

        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let ws = WebSocketStream::from_partially_read(
            io,
            rest,
            Role::Server,
            Some(self.limits.config()),
        )
        .await;
        Ok((WsStream::new(ws, self.limits), headers))
    }
}

/// Reads and parses the HTTP request head; on failure returns the status to answer (if any).
async fn read_request<S: AsyncRead + Unpin>(
    io: &mut S,
) -> Result<(Request, Vec<u8>), (Option<StatusCode>, WsError)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = io
            .read(&mut chunk)
            .await
            .map_err(|e| (None, tls_io_err(e)))?;
        if n == 0 {
            return Err((
                None,
                WsError::Handshake("connection closed before the request was complete".into()),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        match Request::try_parse(&buf) {
            Ok(Some((len, request))) => return Ok((request, buf.split_off(len))),
            Ok(None) if buf.len() >= MAX_REQUEST_HEAD => {
                return Err((
                    Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
                    WsError::Handshake("request head too large".into()),
                ))
            }
            Ok(None) => {}
            Err(e) => {
                return Err((
                    Some(StatusCode::BAD_REQUEST),
                    WsError::Handshake(format!("bad upgrade request: {e}")),
                ))
            }
        }
    }
}

/// Best-effort HTTP error answer, then shutdown.
async fn reject<S: AsyncWrite + Unpin>(io: &mut S, status: StatusCode) {
    let head = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if io.write_all(head.as_bytes()).await.is_ok() {
        let _ = io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    type Accepted = Result<(ServerStream, Vec<(String, String)>), WsError>;

    const T: Duration = Duration::from_secs(10);

    async fn serve_one(acceptor: WsAcceptor) -> (SocketAddr, JoinHandle<Accepted>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::time::timeout(T, acceptor.accept(tcp))
                .await
                .expect("accept timed out")
        });
        (addr, task)
    }

    fn plain(path: &str, limits: WsLimits) -> WsAcceptor {
        WsAcceptor::new(path, None, limits).unwrap()
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Server echoes everything until EOF, then shuts down; the client writes 1 MiB at once
    /// plus many small writes, shuts down (half-close) and reads the echo until EOF.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_echo_headers_and_half_close() {
        let (addr, server) = serve_one(plain("/wrpc", WsLimits::default())).await;
        let server = tokio::spawn(async move {
            let (stream, headers) = server.await.unwrap().unwrap();
            let (mut r, mut w) = tokio::io::split(stream);
            let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
            w.shutdown().await.unwrap();
            (headers, n)
        });

        let headers = vec![
            ("wrpc-workload".to_string(), "demo".to_string()),
            ("X-Caller".to_string(), "a b".to_string()),
        ];
        let client = connect(
            &format!("ws://{addr}/wrpc"),
            &headers,
            &ClientTls::default(),
            WsLimits::default(),
            T,
        )
        .await
        .unwrap();
        let (mut r, mut w) = tokio::io::split(client);
        let big = pattern(1 << 20, 7);
        let mut expected = big.clone();
        let small: Vec<Vec<u8>> = (0..2000).map(|i| pattern(1 + i % 37, i as u8)).collect();
        for s in &small {
            expected.extend_from_slice(s);
        }
        let writer = tokio::spawn(async move {
            w.write_all(&big).await.unwrap();
            for s in &small {
                w.write_all(s).await.unwrap();
            }
            w.flush().await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        tokio::time::timeout(T, r.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "echo differs");

        let (server_headers, n) = server.await.unwrap();
        assert_eq!(n as usize, expected.len());
        assert!(server_headers.contains(&("wrpc-workload".into(), "demo".into())));
        assert!(server_headers.contains(&("x-caller".into(), "a b".into())));
        assert!(server_headers.iter().any(|(k, _)| k == "host"));
    }

    /// The server half-closes first: the client reads EOF and can still send.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn server_shutdown_reads_as_eof_on_client() {
        let (addr, server) = serve_one(plain("/", WsLimits::default())).await;
        let server = tokio::spawn(async move {
            let (mut s, _) = server.await.unwrap().unwrap();
            s.write_all(b"hello").await.unwrap();
            s.shutdown().await.unwrap();
            assert!(s.write_all(b"late").await.is_err());
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut c = connect(
            &format!("ws://{addr}/"),
            &[],
            &ClientTls::default(),
            WsLimits::default(),
            T,
        )
        .await
        .unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        // EOF is sticky.
        assert_eq!(c.read(&mut [0u8; 8]).await.unwrap(), 0);
        c.write_all(b"bye").await.unwrap();
        c.shutdown().await.unwrap();
        assert_eq!(server.await.unwrap(), b"bye");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_path_is_rejected_with_404() {
        let (addr, server) = serve_one(plain("/wrpc", WsLimits::default())).await;
        let err = connect(
            &format!("ws://{addr}/other"),
            &[],
            &ClientTls::default(),
            WsLimits::default(),
            T,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, WsError::Rejected { status: 404 }), "{err:?}");
        let err = server.await.unwrap().unwrap_err();
        assert!(
            matches!(err, WsError::NotFound(ref p) if p == "/other"),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn non_upgrade_request_gets_400() {
        let (addr, server) = serve_one(plain("/wrpc", WsLimits::default())).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /wrpc HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut resp = Vec::new();
        tokio::time::timeout(T, tcp.read_to_end(&mut resp))
            .await
            .unwrap()
            .unwrap();
        assert!(resp.starts_with(b"HTTP/1.1 400"), "{resp:?}");
        let err = server.await.unwrap().unwrap_err();
        assert!(matches!(err, WsError::Handshake(_)), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garbage_and_silence_do_not_hang_accept() {
        // Garbage: accept fails at once.
        let (addr, server) = serve_one(plain("/wrpc", WsLimits::default())).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
            .await
            .unwrap();
        let err = server.await.unwrap().unwrap_err();
        assert!(matches!(err, WsError::Handshake(_)), "{err:?}");

        // Silence: the caller's timeout ends the accept.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _tcp = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let acceptor = plain("/wrpc", WsLimits::default());
        let res = tokio::time::timeout(Duration::from_millis(200), acceptor.accept(stream)).await;
        assert!(res.is_err(), "accept must still be waiting");

        // A TLS acceptor fed plain HTTP fails with a TLS error.
        let pki = Pki::new();
        let (addr, server) = serve_one(
            WsAcceptor::new("/wrpc", Some(&pki.server_tls(false)), WsLimits::default()).unwrap(),
        )
        .await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /wrpc HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let err = server.await.unwrap().unwrap_err();
        assert!(matches!(err, WsError::Tls(_)), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_timeout() {
        // The listener never accepts: TCP connects (backlog) but the upgrade never completes.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let err = connect(
            &format!("ws://{addr}/wrpc"),
            &[],
            &ClientTls::default(),
            WsLimits::default(),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, WsError::Timeout), "{err:?}");
        drop(listener);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_urls_and_headers() {
        let c = |url: &'static str, h: Vec<(String, String)>| async move {
            connect(url, &h, &ClientTls::default(), WsLimits::default(), T)
                .await
                .unwrap_err()
        };
        assert!(matches!(c("http://x/", vec![]).await, WsError::Url(_)));
        assert!(matches!(c("not a url", vec![]).await, WsError::Url(_)));
        let bad = vec![("bad name".to_string(), "v".to_string())];
        assert!(matches!(
            c("ws://127.0.0.1:1/", bad).await,
            WsError::Header(_)
        ));
        let reserved = vec![("Upgrade".to_string(), "h2c".to_string())];
        assert!(matches!(
            c("ws://127.0.0.1:1/", reserved).await,
            WsError::Header(_)
        ));
    }

    async fn raw_client(addr: SocketAddr) -> WebSocketStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/wrpc"), tcp)
            .await
            .unwrap();
        ws
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_message_is_invalid_data() {
        let (addr, server) = serve_one(plain("/wrpc", WsLimits::default())).await;
        let mut raw = raw_client(addr).await;
        let (mut s, _) = server.await.unwrap().unwrap();
        raw.send(Message::Binary(Bytes::from_static(b"ok")))
            .await
            .unwrap();
        raw.send(Message::text("nope")).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).await.unwrap(), 2);
        let err = s.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(s.read(&mut buf).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_message_is_a_read_error() {
        let limits = WsLimits {
            max_message: 64 << 10,
            max_write: 16 << 10,
        };
        let (addr, server) = serve_one(plain("/wrpc", limits)).await;
        let mut raw = raw_client(addr).await;
        let (mut s, _) = server.await.unwrap().unwrap();
        // Exactly the limit passes, one byte more does not.
        let writer = tokio::spawn(async move {
            raw.send(Message::Binary(pattern(64 << 10, 1).into()))
                .await
                .unwrap();
            let _ = raw
                .send(Message::Binary(pattern((64 << 10) + 1, 2).into()))
                .await;
            raw
        });
        let mut got = vec![0u8; 64 << 10];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got, pattern(64 << 10, 1));
        let err = s.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        drop(writer.await.unwrap());
    }

    /// Pings are answered while reading; writes are split at `max_write`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_and_write_chunking() {
        let limits = WsLimits {
            max_message: 1 << 20,
            max_write: 1000,
        };
        let (addr, server) = serve_one(plain("/wrpc", limits)).await;
        let mut raw = raw_client(addr).await;
        let (mut s, _) = server.await.unwrap().unwrap();
        raw.send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        raw.send(Message::Binary(Bytes::from_static(b"x")))
            .await
            .unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        s.write_all(&pattern(2500, 3)).await.unwrap();
        s.flush().await.unwrap();
        let mut sizes = Vec::new();
        let mut pong = false;
        while sizes.iter().sum::<usize>() < 2500 {
            match raw.next().await.unwrap().unwrap() {
                Message::Pong(p) => {
                    assert_eq!(&p[..], b"p");
                    pong = true;
                }
                Message::Binary(d) => sizes.push(d.len()),
                m => panic!("unexpected {m:?}"),
            }
        }
        assert!(pong);
        assert_eq!(sizes, vec![1000, 1000, 500]);
        // A close frame from the peer reads as EOF.
        raw.close(None).await.unwrap();
        assert_eq!(s.read(&mut b).await.unwrap(), 0);
    }

    static DIRS: AtomicUsize = AtomicUsize::new(0);

    struct Pki {
        dir: PathBuf,
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
    }

    impl Pki {
        /// `ca.pem`, `server.pem`/`server.key` (SAN 127.0.0.1), `client.pem`/`client.key`,
        /// `other-ca.pem` (an unrelated CA).
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "ws-test-{}-{}",
                std::process::id(),
                DIRS.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let w = |name: &str, data: String| std::fs::write(dir.join(name), data).unwrap();
            let ca = ca("test ca");
            w("ca.pem", ca.pem());
            w("other-ca.pem", self::ca("other ca").pem());
            for (name, san, eku) in [
                ("server", "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth),
                ("client", "client-a", ExtendedKeyUsagePurpose::ClientAuth),
            ] {
                let key = KeyPair::generate().unwrap();
                let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
                p.distinguished_name.push(DnType::CommonName, san);
                p.extended_key_usages = vec![eku];
                let cert = p.signed_by(&key, &ca).unwrap();
                w(&format!("{name}.pem"), cert.pem());
                w(&format!("{name}.key"), key.serialize_pem());
            }
            Self { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.join(name)
        }

        fn server_tls(&self, mtls: bool) -> ServerTls {
            ServerTls {
                cert_file: self.path("server.pem"),
                key_file: self.path("server.key"),
                client_ca_file: mtls.then(|| self.path("ca.pem")),
            }
        }

        fn client_tls(&self, ca: &str, cert: bool) -> ClientTls {
            ClientTls {
                ca_file: Some(self.path(ca)),
                cert_file: cert.then(|| self.path("client.pem")),
                key_file: cert.then(|| self.path("client.key")),
            }
        }
    }

    async fn wss_round_trip(pki: &Pki, mtls: bool) {
        let acceptor =
            WsAcceptor::new("/wrpc", Some(&pki.server_tls(mtls)), WsLimits::default()).unwrap();
        let (addr, server) = serve_one(acceptor).await;
        let server = tokio::spawn(async move {
            let (mut s, headers) = server.await.unwrap().unwrap();
            let certs = s.get_ref().peer_certificates().map(<[_]>::len);
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got).await.unwrap();
            s.shutdown().await.unwrap();
            (headers, certs)
        });
        let headers = [("wrpc-workload".to_string(), "demo".to_string())];
        let mut c = connect(
            &format!("wss://{addr}/wrpc"),
            &headers,
            &pki.client_tls("ca.pem", mtls),
            WsLimits::default(),
            T,
        )
        .await
        .unwrap();
        let data = pattern(300_000, 9);
        c.write_all(&data).await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert!(got == data);
        let (headers, certs) = server.await.unwrap();
        assert!(headers.contains(&("wrpc-workload".into(), "demo".into())));
        assert_eq!(certs, mtls.then_some(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wss_with_private_ca() {
        wss_round_trip(&Pki::new(), false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wss_with_client_certificate() {
        wss_round_trip(&Pki::new(), true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wss_wrong_ca_or_missing_client_cert_fails_with_tls() {
        let pki = Pki::new();
        let attempt = |client: ClientTls, mtls: bool| {
            let acceptor =
                WsAcceptor::new("/wrpc", Some(&pki.server_tls(mtls)), WsLimits::default()).unwrap();
            async move {
                let (addr, server) = serve_one(acceptor).await;
                let res = connect(
                    &format!("wss://{addr}/wrpc"),
                    &[],
                    &client,
                    WsLimits::default(),
                    T,
                )
                .await;
                let server_res = server.await.unwrap();
                (res.map(|_| ()), server_res.map(|_| ()))
            }
        };
        // Unrelated CA.
        let (c, s) = attempt(pki.client_tls("other-ca.pem", false), false).await;
        assert!(matches!(c, Err(WsError::Tls(_))), "{c:?}");
        assert!(matches!(s, Err(WsError::Tls(_))), "{s:?}");
        // No CA file: webpki roots do not know the test CA.
        let (c, _) = attempt(ClientTls::default(), false).await;
        assert!(matches!(c, Err(WsError::Tls(_))), "{c:?}");
        // mTLS server, client without certificate.
        let (c, s) = attempt(pki.client_tls("ca.pem", false), true).await;
        assert!(matches!(c, Err(WsError::Tls(_))), "{c:?}");
        assert!(matches!(s, Err(WsError::Tls(_))), "{s:?}");
        // Half a client certificate is a configuration error.
        let half = ClientTls {
            key_file: None,
            ..pki.client_tls("ca.pem", true)
        };
        let err = connect("wss://127.0.0.1:1/", &[], &half, WsLimits::default(), T)
            .await
            .unwrap_err();
        assert!(matches!(err, WsError::Tls(_)), "{err:?}");
        // Missing files.
        let bad = ServerTls {
            cert_file: pki.path("nope.pem"),
            key_file: pki.path("server.key"),
            client_ca_file: None,
        };
        assert!(matches!(
            WsAcceptor::new("/wrpc", Some(&bad), WsLimits::default()),
            Err(WsError::Tls(_))
        ));
    }
}
