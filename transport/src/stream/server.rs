//! The server side of the stream transports: one accept loop per listener,
//! one task per connection, calls on a connection one after another.
//!
//! A connection's task reads the call header, runs the handler (which reads
//! the parameters and writes the results on the same task), ends the call
//! and waits for the next. Every wait is bounded: the first call header by
//! `header_timeout`, later ones by `idle_timeout`, streamed values by
//! `stream_idle_timeout`.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use std::io;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::call::{CallRx, CallShared, CallTx, Conn, Side};
use super::io::{poll_fn_mut, Inbound, Outbound};
use super::{ws, Accepted, Bound};
use crate::access::{Access, Admitted};
use crate::call::{CallTimer, InKind, OutKind};
use crate::endpoint::Endpoint;
use crate::frame::{self, CallHeader, Dialect, Event, Parser};
use crate::server::{Call, Registry, ServeOptions};
use crate::{CallerContext, Incoming, Outgoing};

/// How long a connection told to go away may take to close its side.
const GOAWAY_LINGER: Duration = Duration::from_secs(1);

/// Connections the kernel queues before they are accepted (capped by
/// `net.core.somaxconn`). std's default of 128 overflows under a burst of
/// connects, and every overflow costs a client a one-second SYN retry.
const BACKLOG: u32 = 4096;

async fn bind_tcp(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{host}` resolves to no address"),
        )
    }))
}

fn bind_unix(path: &std::path::Path) -> io::Result<UnixListener> {
    let socket = tokio::net::UnixSocket::new_stream()?;
    socket.bind(path)?;
    socket.listen(BACKLOG)
}

/// A bound TCP, Unix or WebSocket listener.
pub struct Listener {
    bound: Bound,
    local: String,
    access: Arc<Access>,
}

impl Listener {
    /// Binds `endpoint` (`tcp://`, `unix://`, `ws://` or `wss://`). A Unix
    /// socket file left behind by a dead process is replaced; one that a live
    /// process serves is not.
    ///
    /// # Errors
    ///
    /// The address cannot be bound, a TLS file cannot be read, or the
    /// endpoint is `nats://`.
    pub async fn bind(endpoint: &Endpoint) -> io::Result<Self> {
        let bound = match endpoint {
            Endpoint::Tcp {
                host, port, tls, ..
            } => {
                let tls = tls
                    .as_ref()
                    .map(|files| crate::tls::listener_config(files, "tcp:// TLS", &[]))
                    .transpose()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
                    .map(tokio_rustls::TlsAcceptor::from);
                Bound::Tcp(bind_tcp(host, *port).await?, tls)
            }
            Endpoint::Unix { path, .. } => {
                if path.exists() {
                    if UnixStream::connect(path).await.is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            "another process is serving on this socket",
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                Bound::Unix(bind_unix(path)?, path.clone())
            }
            Endpoint::Ws(ws_endpoint) => {
                let tls = if ws_endpoint.secure {
                    let tls = &ws_endpoint.tls;
                    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "a wss:// listener needs tls_cert=FILE and tls_key=FILE",
                        ));
                    };
                    Some(ws::ServerTls {
                        cert_file: cert_file.clone(),
                        key_file: key_file.clone(),
                        client_ca_file: tls.ca_file.clone(),
                    })
                } else {
                    None
                };
                let acceptor = ws::WsAcceptor::new(
                    &ws_endpoint.path,
                    tls.as_ref(),
                    ws::WsLimits::default(),
                )
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))?;
                let tcp = bind_tcp(&ws_endpoint.host, ws_endpoint.port).await?;
                Bound::Ws(tcp, acceptor, ws_endpoint.secure)
            }
            Endpoint::Nats(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "nats:// is not a stream listener",
                ))
            }
        };
        let local = match (&bound, endpoint) {
            (Bound::Tcp(l, None), _) => format!("tcp://{}", l.local_addr()?),
            (Bound::Tcp(l, Some(_)), _) => format!("tcp://{}?tls=required", l.local_addr()?),
            (Bound::Unix(_, path), _) => format!("unix://{}", path.display()),
            (Bound::Ws(l, _, secure), Endpoint::Ws(ws)) => format!(
                "{}://{}{}",
                if *secure { "wss" } else { "ws" },
                l.local_addr()?,
                ws.path
            ),
            _ => endpoint.to_string(),
        };
        Ok(Self {
            bound,
            local,
            access: Arc::new(endpoint.access().clone()),
        })
    }

    /// The address actually bound, e.g. `tcp://127.0.0.1:40123` after binding port 0.
    pub fn local(&self) -> &str {
        &self.local
    }
}

/// Accepts connections on `listener` and serves `registry` on them until
/// `opts.shutdown` is cancelled.
pub async fn serve(listener: Listener, registry: Arc<Registry>, opts: ServeOptions) {
    let open = Arc::new(AtomicUsize::new(0));
    let last_refusal: Mutex<Option<Instant>> = Mutex::new(None);
    loop {
        let accepted = tokio::select! {
            biased;
            () = opts.shutdown.cancelled() => return,
            accepted = listener.bound.accept() => accepted,
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Typically EMFILE: back off instead of spinning.
                warn!(listener = listener.local, %err, "failed to accept a connection");
                tokio::select! {
                    () = opts.shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        if open.load(Ordering::Relaxed) >= opts.limits.max_connections {
            let mut last = last_refusal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                warn!(
                    listener = listener.local,
                    max = opts.limits.max_connections,
                    "refusing connections: the max-connections limit is reached"
                );
                *last = Some(Instant::now());
            }
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(Arc::clone(&open));
        let registry = Arc::clone(&registry);
        let task_opts = opts.clone();
        let access = Arc::clone(&listener.access);
        opts.tracker.spawn(async move {
            let _guard = guard;
            connection(accepted, &access, registry, task_opts).await;
        });
    }
}

struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    accepted: Accepted,
    access: &Access,
    registry: Arc<Registry>,
    opts: ServeOptions,
) {
    let limits = opts.limits;
    let transport = accepted.transport.clone();
    let peer = accepted.peer;
    let who = peer.map_or_else(|| transport.to_string(), |p| format!("{transport} {p}"));
    // Boxed, like the call below: an idle connection's task keeps only the
    // state of its wait for the next call.
    let opened = tokio::time::timeout(limits.header_timeout, Box::pin(accepted.open())).await;
    let opened = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(err)) if err.kind() == io::ErrorKind::PermissionDenied => {
            return warn!(peer = who, "dropped connection: {err}")
        }
        Ok(Err(err)) => return debug!(peer = who, %err, "dropped connection during its handshake"),
        Err(_) => {
            return warn!(
                peer = who,
                "dropped connection: no handshake within {:?}", limits.header_timeout
            )
        }
    };
    // Who may call is decided once per connection; a refused peer's calls
    // are each answered with why (pooled dialect), then it is closed.
    let admitted = access.admit(peer.as_ref(), opened.cert);
    if let Err(why) = &admitted {
        crate::metrics::refused_caller();
        warn!(peer = who, "refusing calls: {why}");
    }
    let upgrade_headers = opened.headers;
    let conn = Arc::new(Conn::new(
        Inbound::new(opened.rd, Parser::server(limits)),
        Outbound::new(opened.wr, Dialect::Plain),
        limits,
    ));
    let mut wait = limits.header_timeout;
    let mut first = true;
    let from: std::sync::Arc<str> = format!("from {who}").into();
    // Made once per connection, not once per call.
    let shutdown = opts.shutdown.cancelled();
    tokio::pin!(shutdown);
    let idle = tokio::time::sleep(wait);
    tokio::pin!(idle);
    loop {
        idle.as_mut().reset(Instant::now() + wait);
        let next = tokio::select! {
            biased;
            () = &mut shutdown => return Box::pin(go_away(&conn)).await,
            event = poll_fn_mut(|cx| conn.read().inbound.poll_event(cx)) => Ok(event),
            () = &mut idle => Err(()),
        };
        let event = match next {
            Err(()) if first => {
                return warn!(
                    peer = who,
                    "dropped connection: no call header within {wait:?}"
                )
            }
            Err(()) => {
                debug!(peer = who, "closing a connection idle for {wait:?}");
                // A client may be sending a call right now: GOAWAY tells it
                // the call was not taken, so it can send it elsewhere.
                return Box::pin(go_away(&conn)).await;
            }
            Ok(Err(err)) => {
                let err = io::Error::from(err);
                return match err.kind() {
                    io::ErrorKind::InvalidData => {
                        warn!(peer = who, "dropped connection: {err}");
                        Box::pin(refuse(&conn, &err.to_string())).await;
                    }
                    _ => debug!(peer = who, %err, "connection failed"),
                };
            }
            Ok(Ok(None)) => return,
            Ok(Ok(Some(event))) => event,
        };
        let header = match event {
            Event::Preface => {
                conn.write().set_dialect(Dialect::Pooled);
                conn.write().push(frame::put_preface);
                if flush(&conn, limits.header_timeout).await.is_err() {
                    return;
                }
                continue;
            }
            Event::Call(header) => header,
            other => return warn!(peer = who, "dropped connection: {other:?} outside a call"),
        };
        first = false;
        let dialect = conn.write().dialect();
        let admitted = match &admitted {
            Ok(admitted) => admitted,
            Err(why) => return Box::pin(deny(&conn, why, limits.stream_idle_timeout)).await,
        };
        let keep = tokio::select! {
            biased;
            () = opts.abort.cancelled() => false,
            keep = Box::pin(serve_call(&conn, header, &registry, &opts, &transport, peer, admitted, &upgrade_headers, &who, &from)) => keep,
        };
        if !keep || dialect == Dialect::Plain {
            return;
        }
        wait = limits.idle_timeout;
    }
}

/// Runs one call; whether the connection can carry another.
#[allow(clippy::too_many_arguments)]
async fn serve_call(
    conn: &Arc<Conn>,
    header: CallHeader,
    registry: &Registry,
    opts: &ServeOptions,
    transport: &crate::Transport,
    peer: Option<crate::Peer>,
    admitted: &Admitted,
    upgrade_headers: &[(String, String)],
    who: &str,
    from: &std::sync::Arc<str>,
) -> bool {
    let limits = opts.limits;
    let dialect = conn.write().dialect();
    let CallHeader {
        instance,
        func,
        headers,
    } = header;
    let Some(function) = registry.get(&instance, &func) else {
        crate::metrics::unknown_function();
        warn!(
            peer = who,
            instance, func, "call to a function this extension does not serve"
        );
        if dialect == Dialect::Plain {
            return false;
        }
        conn.begin(Side::Server, None, Arc::from([]));
        conn.write().push(|buf| {
            frame::put_error(
                buf,
                &format!("`{instance}.{func}` is not served by this extension"),
            );
        });
        conn.write().set_ended(true);
        return finish(conn, limits.stream_idle_timeout).await;
    };
    let permit = tokio::select! {
        permit = Arc::clone(&opts.permits).acquire_owned() => permit.ok(),
        () = opts.shutdown.cancelled() => None,
    };
    let Some(permit) = permit else {
        // Not processed: a pooled caller may retry elsewhere.
        if dialect == Dialect::Pooled {
            conn.write().push(frame::put_goaway);
            let _ = flush(conn, GOAWAY_LINGER).await;
        }
        return false;
    };
    let seq = conn.begin(
        Side::Server,
        Some(Arc::clone(&function.params)),
        Arc::clone(&function.param_paths),
    );
    let shared = CallShared::with_hold(Arc::clone(conn), seq, None, !function.has_async_results);
    let timer = Arc::new(CallTimer::named(
        Arc::clone(&function.name),
        Arc::clone(from),
        Some(Instant::now() + limits.header_timeout),
        limits.stream_idle_timeout,
    ));
    let rx = Incoming::new(
        InKind::Stream(CallRx::root(Arc::clone(&shared))),
        Arc::clone(&timer),
    );
    let tx = Outgoing::new(OutKind::Stream(CallTx::root(shared)), timer, false);
    let mut all_headers = upgrade_headers.to_vec();
    all_headers.extend(headers);
    let cx = CallerContext::new(transport.clone(), peer, all_headers).admitted(admitted);
    let outcome = (function.handler)(Call { cx, rx, tx }).await;
    drop(permit);
    if let Err(why) = &outcome {
        warn!(peer = who, "call to `{instance}.{func}` failed: {why}");
    }
    let refusal = conn.read().refusal().map(str::to_string);
    if let Some(why) = refusal {
        // The input broke the framing or a limit: the caller is told which
        // (pooled dialect), and the connection closes.
        conn.write().set_ended(true);
        Box::pin(refuse(conn, &why)).await;
        return false;
    }
    match (outcome, dialect) {
        (Ok(()), Dialect::Pooled) => conn.write().push(frame::put_end),
        (Err(msg), Dialect::Pooled) => conn.write().push(|buf| frame::put_error(buf, &msg)),
        (_, Dialect::Plain) => {}
    }
    conn.write().set_ended(true);
    if dialect == Dialect::Plain {
        let _ = tokio::time::timeout(
            limits.stream_idle_timeout,
            poll_fn_mut(|cx| conn.write().poll_shutdown(cx)),
        )
        .await;
        return false;
    }
    finish(conn, limits.stream_idle_timeout).await
}

/// Answers the call just begun on a connection whose peer is not admitted
/// with `why` (pooled dialect; the plain one has no error message), then
/// closes the connection.
async fn deny(conn: &Arc<Conn>, why: &str, limit: Duration) {
    if conn.write().dialect() == Dialect::Pooled {
        conn.begin(Side::Server, None, Arc::from([]));
        conn.write()
            .push(|buf| frame::put_error(buf, &format!("access denied: {why}")));
        conn.write().set_ended(true);
        let _ = flush(conn, limit).await;
    }
    let _ = tokio::time::timeout(GOAWAY_LINGER, async {
        poll_fn_mut(|cx| conn.write().poll_shutdown(cx)).await?;
        poll_fn_mut(|cx| conn.read().inbound.poll_discard(cx)).await
    })
    .await;
}

/// Flushes the call's end and reads the rest of its parameters; whether the
/// connection is ready for another call.
async fn finish(conn: &Arc<Conn>, limit: Duration) -> bool {
    if flush(conn, limit).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(limit, poll_fn_mut(|cx| conn.read().poll_finish(cx))).await,
        Ok(true)
    )
}

async fn flush(conn: &Conn, limit: Duration) -> io::Result<()> {
    tokio::time::timeout(limit, poll_fn_mut(|cx| conn.write().poll_flush(cx)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"))?
}

/// Ends a connection whose input broke the framing or a limit (`why` names
/// it). A pooled peer gets `ERROR` with `why`; then the write side closes
/// and the input is read and dropped for at most [`GOAWAY_LINGER`], so a
/// caller still writing the refused call is not reset before it reads why.
/// The plain dialect (upstream's) has no message for it: its caller reads
/// only the end of the connection.
async fn refuse(conn: &Conn, why: &str) {
    if conn.write().dialect() == Dialect::Pooled {
        conn.write().push(|buf| {
            frame::put_error(buf, &format!("refused the call's input: {why}"));
        });
    }
    let _ = tokio::time::timeout(GOAWAY_LINGER, async {
        poll_fn_mut(|cx| conn.write().poll_shutdown(cx)).await?;
        poll_fn_mut(|cx| conn.read().inbound.poll_discard(cx)).await
    })
    .await;
}

/// Tells a pooled peer that no further call will be taken, closes the write
/// side, and lingers briefly so the peer reads it instead of a reset.
async fn go_away(conn: &Conn) {
    if conn.write().dialect() != Dialect::Pooled {
        return;
    }
    conn.write().push(frame::put_goaway);
    let _ = tokio::time::timeout(GOAWAY_LINGER, async {
        poll_fn_mut(|cx| conn.write().poll_shutdown(cx)).await?;
        loop {
            match poll_fn_mut(|cx| conn.read().inbound.poll_event(cx)).await {
                Ok(Some(_)) => continue,
                Ok(None) => return io::Result::Ok(()),
                Err(err) => return Err(io::Error::from(err)),
            }
        }
    })
    .await;
    debug!("sent GOAWAY to an idle connection");
}
