//! The stream transports: TCP, Unix domain sockets and WebSocket, all
//! carrying the same framing ([`crate::frame`]).

mod call;
mod client;
mod io;
mod server;
mod unusable;
pub mod ws;

use core::fmt;

use std::io as stdio;
use std::path::PathBuf;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::time::Instant;

pub use call::{CallRx, CallTx, STREAM_BUFFER};
pub use client::{Request, StreamClient, MAX_IDLE, POOL_IDLE};
pub use server::{serve, Listener};
pub use unusable::UnusableTarget;

use self::io::{BoxRead, BoxWrite};
use crate::endpoint::{Endpoint, TlsFiles, WsEndpoint};
use crate::identity::CertIdentity;
use crate::{Limits, Peer, Transport};

/// Where a stream client connects.
#[derive(Clone, Debug)]
pub(crate) enum StreamTarget {
    Tcp {
        host: String,
        port: u16,
        tls: Option<TlsFiles>,
    },
    Unix(PathBuf),
    Ws(WsEndpoint),
}

impl fmt::Display for StreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port, tls } => write!(
                f,
                "{}",
                Endpoint::Tcp {
                    host: host.clone(),
                    port: *port,
                    pool: true,
                    tls: tls.clone(),
                    access: crate::access::Access::default(),
                }
            ),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Ws(ws) => f.write_str(&ws.url()),
        }
    }
}

impl StreamClient {
    /// A client for a `tcp://`, `unix://`, `ws://` or `wss://` endpoint;
    /// `connect_headers` go on each WebSocket upgrade request.
    ///
    /// Returns `None` for a `nats://` endpoint.
    pub fn for_endpoint(
        endpoint: &Endpoint,
        limits: Limits,
        connect_headers: Vec<(String, String)>,
    ) -> Option<Self> {
        let (target, pool) = match endpoint {
            Endpoint::Tcp {
                host,
                port,
                pool,
                tls,
                ..
            } => (
                StreamTarget::Tcp {
                    host: host.clone(),
                    port: *port,
                    tls: tls.clone(),
                },
                *pool,
            ),
            Endpoint::Unix { path, pool, .. } => (StreamTarget::Unix(path.clone()), *pool),
            Endpoint::Ws(ws) => (StreamTarget::Ws(ws.clone()), ws.pool),
            _ => return None,
        };
        Some(Self::new(target, limits, pool, connect_headers))
    }
}

fn boxed<R, W>(rd: R, wr: W) -> (BoxRead, BoxWrite)
where
    R: tokio::io::AsyncRead + Send + 'static,
    W: tokio::io::AsyncWrite + Send + 'static,
{
    (Box::pin(rd), Box::pin(wr))
}

fn timed_out(what: &str) -> stdio::Error {
    stdio::Error::new(
        stdio::ErrorKind::TimedOut,
        format!("deadline passed while {what}"),
    )
}

/// Opens a connection to `target` before `deadline`.
pub(crate) async fn connect_io(
    target: &StreamTarget,
    headers: &[(String, String)],
    deadline: Instant,
) -> stdio::Result<(BoxRead, BoxWrite)> {
    let refused = |err| UnusableTarget::on_connect(target, err);
    match target {
        StreamTarget::Tcp { host, port, tls } => {
            let stream =
                tokio::time::timeout_at(deadline, TcpStream::connect((host.as_str(), *port)))
                    .await
                    .map_err(|_| timed_out("connecting"))?
                    .map_err(refused)?;
            stream.set_nodelay(true)?;
            let Some(tls) = tls else {
                let (rd, wr) = stream.into_split();
                return Ok(boxed(rd, wr));
            };
            let invalid = |e: crate::TlsError| stdio::Error::new(stdio::ErrorKind::InvalidInput, e);
            let config = crate::tls::client_config(tls, &[]).map_err(invalid)?;
            let name = crate::tls::server_name(host).map_err(invalid)?;
            let stream = tokio::time::timeout_at(
                deadline,
                tokio_rustls::TlsConnector::from(config).connect(name, stream),
            )
            .await
            .map_err(|_| timed_out("in the TLS handshake"))?
            .map_err(crate::tls::handshake_error)?;
            let (rd, wr) = tokio::io::split(stream);
            Ok(boxed(rd, wr))
        }
        StreamTarget::Unix(path) => {
            let stream = tokio::time::timeout_at(deadline, UnixStream::connect(path))
                .await
                .map_err(|_| timed_out("connecting"))?
                .map_err(refused)?;
            let (rd, wr) = stream.into_split();
            Ok(boxed(rd, wr))
        }
        StreamTarget::Ws(ws) => {
            let tls = ws::ClientTls {
                ca_file: ws.tls.ca_file.clone(),
                cert_file: ws.tls.cert_file.clone(),
                key_file: ws.tls.key_file.clone(),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let stream = ws::connect(&ws.url(), headers, &tls, ws::WsLimits::default(), left)
                .await
                .map_err(ws_error)
                .map_err(refused)?;
            let (rd, wr) = tokio::io::split(stream);
            Ok(boxed(rd, wr))
        }
    }
}

fn ws_error(err: ws::WsError) -> stdio::Error {
    match err {
        ws::WsError::Io(err) => err,
        ws::WsError::Timeout => timed_out("connecting"),
        ws::WsError::Rejected { status } => stdio::Error::new(
            stdio::ErrorKind::ConnectionRefused,
            format!("the WebSocket upgrade was answered with HTTP {status}"),
        ),
        other => stdio::Error::other(other.to_string()),
    }
}

/// A listening socket of any stream transport.
pub(crate) enum Bound {
    Tcp(TcpListener, Option<tokio_rustls::TlsAcceptor>),
    Unix(UnixListener, PathBuf),
    Ws(TcpListener, ws::WsAcceptor, bool),
}

/// One accepted connection, before any byte is read.
pub(crate) struct Accepted {
    pub(crate) transport: Transport,
    pub(crate) peer: Option<Peer>,
    pub(crate) kind: AcceptedKind,
}

pub(crate) enum AcceptedKind {
    Tcp(TcpStream, Option<tokio_rustls::TlsAcceptor>),
    Unix(UnixStream),
    Ws(TcpStream, ws::WsAcceptor),
}

/// An opened connection: its halves, the headers of a WebSocket upgrade
/// request, and the client certificate TLS verified.
pub(crate) struct Opened {
    pub(crate) rd: BoxRead,
    pub(crate) wr: BoxWrite,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) cert: Option<CertIdentity>,
}

/// Closes a connection whose TLS handshake failed so the client reads the
/// alert saying why (a missing or untrusted certificate): the write side is
/// shut and what the client already sent is read and dropped for at most a
/// second. Closing with unread input would reset the connection, and the
/// client would see only the reset.
async fn linger(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let _ = tokio::time::timeout(core::time::Duration::from_secs(1), async {
        tcp.shutdown().await?;
        let mut buf = [0u8; 1024];
        while tcp.read(&mut buf).await? > 0 {}
        stdio::Result::Ok(())
    })
    .await;
}

/// The identity of the first (end-entity) certificate a peer presented.
fn identity_of(
    certs: Option<&[rustls_pki_types::CertificateDer<'static>]>,
) -> stdio::Result<Option<CertIdentity>> {
    match certs.and_then(<[_]>::first) {
        Some(leaf) => CertIdentity::from_der(leaf)
            .map(Some)
            .map_err(|e| stdio::Error::new(stdio::ErrorKind::InvalidData, e)),
        None => Ok(None),
    }
}

impl Accepted {
    /// Finishes opening the connection (the TLS and WebSocket handshakes).
    pub(crate) async fn open(self) -> stdio::Result<Opened> {
        let (rd, wr, headers, cert) = match self.kind {
            AcceptedKind::Tcp(s, None) => {
                let (rd, wr) = s.into_split();
                let (rd, wr) = boxed(rd, wr);
                (rd, wr, Vec::new(), None)
            }
            AcceptedKind::Tcp(s, Some(acceptor)) => {
                let stream = match acceptor.accept(s).into_fallible().await {
                    Ok(stream) => stream,
                    Err((err, tcp)) => {
                        linger(tcp).await;
                        return Err(crate::tls::handshake_error(err));
                    }
                };
                let cert = identity_of(stream.get_ref().1.peer_certificates())?;
                let (rd, wr) = tokio::io::split(stream);
                let (rd, wr) = boxed(rd, wr);
                (rd, wr, Vec::new(), cert)
            }
            AcceptedKind::Unix(s) => {
                let (rd, wr) = s.into_split();
                let (rd, wr) = boxed(rd, wr);
                (rd, wr, Vec::new(), None)
            }
            AcceptedKind::Ws(s, acceptor) => {
                let (stream, headers) = acceptor.accept(s).await.map_err(ws_error)?;
                let cert = identity_of(stream.get_ref().peer_certificates())?;
                let (rd, wr) = tokio::io::split(stream);
                let (rd, wr) = boxed(rd, wr);
                (rd, wr, headers, cert)
            }
        };
        Ok(Opened {
            rd,
            wr,
            headers,
            cert,
        })
    }
}

impl Bound {
    pub(crate) async fn accept(&self) -> stdio::Result<Accepted> {
        match self {
            Self::Tcp(l, tls) => {
                let (s, addr) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok(Accepted {
                    transport: Transport::Tcp {
                        secure: tls.is_some(),
                    },
                    peer: Some(Peer::Socket(addr)),
                    kind: AcceptedKind::Tcp(s, tls.clone()),
                })
            }
            Self::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                let peer = s.peer_cred().ok().map(|c| Peer::Unix {
                    uid: c.uid(),
                    gid: c.gid(),
                    pid: c.pid(),
                });
                Ok(Accepted {
                    transport: Transport::Unix,
                    peer,
                    kind: AcceptedKind::Unix(s),
                })
            }
            Self::Ws(l, acceptor, secure) => {
                let (s, addr) = l.accept().await?;
                Ok(Accepted {
                    transport: Transport::Ws { secure: *secure },
                    peer: Some(Peer::Socket(addr)),
                    kind: AcceptedKind::Ws(s, acceptor.clone()),
                })
            }
        }
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
