//! The client side of the stream transports: connections kept in a pool and
//! reused call after call (pooled dialect), or one connection per call for
//! servers that speak only upstream wRPC (negotiated once per client).

use core::sync::atomic::{AtomicU8, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, info};

use super::call::{CallRx, CallShared, CallTx, Conn, OnDone, Side};
use super::io::{poll_fn_mut, Inbound, Outbound};
use super::{connect_io, StreamTarget, UnusableTarget};
use crate::frame::{self, Dialect, Event, Parser};
use crate::schema::ScanPlan;
use crate::Limits;

/// Idle connections kept per client.
pub const MAX_IDLE: usize = 64;
/// A pooled connection idle longer than this is closed rather than reused
/// (below the servers' default idle timeout of 60 s).
pub const POOL_IDLE: Duration = Duration::from_secs(30);

const UNKNOWN: u8 = 0;
const PLAIN: u8 = 1;
const POOLED: u8 = 2;

/// One call to make.
pub struct Request<'a> {
    /// The instance, e.g. `wrpc:keyvalue/store@0.2.0-draft`.
    pub instance: &'a str,
    /// The function.
    pub func: &'a str,
    /// Caller headers (sent in the pooled dialect only).
    pub headers: &'a [(&'a str, &'a str)],
    /// The encoded synchronous parameters.
    pub params: Bytes,
    /// Whether the parameters are complete (no async values follow).
    pub params_complete: bool,
    /// The result types, to check the synchronous results before decoding.
    pub results: Option<Arc<ScanPlan>>,
    /// Async paths of the results.
    pub result_paths: Arc<[Box<[Option<usize>]>]>,
    /// When the call must have started and its synchronous part completed.
    pub deadline: Instant,
}

struct Idle {
    conn: Arc<Conn>,
    since: Instant,
}

struct Pool {
    target: StreamTarget,
    limits: Limits,
    pool: bool,
    dialect: AtomicU8,
    idle: Mutex<Vec<Idle>>,
    /// Headers sent once per connection (WebSocket upgrade request).
    connect_headers: Vec<(String, String)>,
}

/// A client for one TCP, Unix or WebSocket target.
#[derive(Clone)]
pub struct StreamClient(Arc<Pool>);

impl StreamClient {
    /// A client for `target`; `pool` off means one connection per call.
    pub(crate) fn new(
        target: StreamTarget,
        limits: Limits,
        pool: bool,
        connect_headers: Vec<(String, String)>,
    ) -> Self {
        Self(Arc::new(Pool {
            target,
            limits,
            pool,
            dialect: AtomicU8::new(if pool { UNKNOWN } else { PLAIN }),
            idle: Mutex::new(Vec::new()),
            connect_headers,
        }))
    }

    /// Connections currently idle in the pool.
    pub fn idle_connections(&self) -> usize {
        self.0.idle.lock().map_or(0, |idle| idle.len())
    }

    /// Whether the server was found to speak only upstream wRPC.
    pub fn is_plain(&self) -> bool {
        self.0.dialect.load(Ordering::Relaxed) == PLAIN
    }

    /// Starts a call: sends its header and synchronous parameters and returns
    /// the streams for the rest.
    ///
    /// # Errors
    ///
    /// Connecting or writing failed, or `req.deadline` passed.
    pub async fn invoke(&self, req: Request<'_>) -> io::Result<(CallTx, CallRx)> {
        let (conn, reused) = self.checkout(req.deadline).await?;
        match self.start(conn, &req, reused).await {
            // Refused unprocessed on a reused connection (the server was
            // closing it): once more, on a new connection.
            Err(Refused) => match self
                .start(self.connect(req.deadline).await?, &req, false)
                .await
            {
                Ok(started) => started,
                Err(Refused) => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the extension is shutting down (GOAWAY)",
                )),
            },
            Ok(started) => started,
        }
    }

    /// Sends the call on `conn`. On a reused pooled connection, a call whose
    /// parameters are complete also waits for the server's first answer:
    /// `GOAWAY` there means the call was not processed (`Err(Refused)`).
    async fn start(
        &self,
        conn: Arc<Conn>,
        req: &Request<'_>,
        reused: bool,
    ) -> Result<io::Result<(CallTx, CallRx)>, Refused> {
        let dialect = conn.write().dialect();
        let seq = conn.begin(
            Side::Client,
            req.results.clone(),
            Arc::clone(&req.result_paths),
        );
        let shared = CallShared::new(Arc::clone(&conn), seq, Some(self.finisher(dialect)));
        {
            let mut out = conn.write();
            let params = &req.params;
            out.push(|buf| match dialect {
                Dialect::Pooled => {
                    frame::put_call(buf, req.instance, req.func, req.headers);
                    frame::put_frame(buf, dialect, &[], params);
                    if req.params_complete {
                        frame::put_end(buf);
                    }
                }
                Dialect::Plain => {
                    frame::put_plain_header(buf, req.instance, req.func);
                    frame::put_frame(buf, dialect, &[], params);
                }
            });
        }
        // Usually the socket takes the whole call at once: no timer then.
        let at_once = {
            let mut cx = Context::from_waker(Waker::noop());
            let mut out = conn.write();
            match out.poll_flush(&mut cx) {
                Poll::Ready(Ok(())) if dialect == Dialect::Plain && req.params_complete => {
                    out.poll_shutdown(&mut cx)
                }
                other => other,
            }
        };
        let sent = match at_once {
            Poll::Ready(done) => Ok(done),
            Poll::Pending => {
                tokio::time::timeout_at(req.deadline, async {
                    poll_fn_mut(|cx| conn.write().poll_flush(cx)).await?;
                    if dialect == Dialect::Plain && req.params_complete {
                        poll_fn_mut(|cx| conn.write().poll_shutdown(cx)).await?;
                    }
                    io::Result::Ok(())
                })
                .await
            }
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Ok(Err(conn.read().explain_write_error(err))),
            Err(_) => {
                return Ok(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "deadline passed while sending the call",
                )))
            }
        }
        if req.params_complete && dialect == Dialect::Pooled {
            mark_params_ended(&conn);
            if reused {
                // Costs nothing: the caller's next step is to wait for this.
                let _ = tokio::time::timeout_at(
                    req.deadline,
                    poll_fn_mut(|cx| conn.read().poll_first_event(cx)),
                )
                .await;
                if conn.read().refused() {
                    return Err(Refused);
                }
            }
        }
        Ok(Ok((
            CallTx::root(Arc::clone(&shared)),
            CallRx::root(shared),
        )))
    }

    /// An idle connection that is still open (and `true`), or a new one.
    async fn checkout(&self, deadline: Instant) -> io::Result<(Arc<Conn>, bool)> {
        if self.0.pool {
            while let Some(idle) = self.pop_idle() {
                if idle.since.elapsed() < POOL_IDLE && alive(&idle.conn) {
                    return Ok((idle.conn, true));
                }
                debug!(target = %self.0.target, "closing a stale pooled connection");
            }
        }
        Ok((self.connect(deadline).await?, false))
    }

    fn pop_idle(&self) -> Option<Idle> {
        self.0.idle.lock().ok()?.pop()
    }

    async fn connect(&self, deadline: Instant) -> io::Result<Arc<Conn>> {
        let pool = &self.0;
        // The line preface first; a server closing on it may be one of ours
        // from before it (asked once more with the first preface), or an
        // upstream server (which closes on either).
        let mut line = pool.dialect.load(Ordering::Relaxed) == UNKNOWN;
        while pool.dialect.load(Ordering::Relaxed) != PLAIN {
            match self.connect_pooled(deadline, line).await {
                Ok(conn) => {
                    pool.dialect.store(POOLED, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(Negotiation::Refused(_)) if line => line = false,
                Err(Negotiation::Refused(why)) => {
                    info!(target = %pool.target, "the server does not keep connections open ({why}); using one connection per call");
                    pool.dialect.store(PLAIN, Ordering::Relaxed);
                }
                Err(Negotiation::Failed(err)) => return Err(err),
            }
        }
        let (rd, wr) = connect_io(&pool.target, &pool.connect_headers, deadline).await?;
        Ok(Arc::new(Conn::new(
            Inbound::new(rd, Parser::client(pool.limits, Dialect::Plain)),
            Outbound::new(wr, Dialect::Plain),
            pool.limits,
        )))
    }

    /// Opens a pooled connection, sending the line preface (`line`) or the
    /// first one.
    async fn connect_pooled(
        &self,
        deadline: Instant,
        line: bool,
    ) -> Result<Arc<Conn>, Negotiation> {
        let pool = &self.0;
        let (rd, wr) = connect_io(&pool.target, &pool.connect_headers, deadline)
            .await
            .map_err(Negotiation::Failed)?;
        let conn = Arc::new(Conn::new(
            Inbound::new(rd, Parser::client(pool.limits, Dialect::Pooled)),
            Outbound::new(wr, Dialect::Pooled),
            pool.limits,
        ));
        conn.write().push(if line {
            frame::put_line_preface
        } else {
            frame::put_preface
        });
        let answer = tokio::time::timeout_at(deadline, async {
            poll_fn_mut(|cx| conn.write().poll_flush(cx)).await?;
            poll_fn_mut(|cx| conn.read().inbound.poll_event(cx))
                .await
                .map_err(io::Error::from)
        })
        .await;
        match answer {
            Ok(Ok(Some(Event::Preface))) => Ok(conn),
            Ok(Ok(None)) => Err(Negotiation::Refused("it closed the connection".into())),
            Ok(Ok(Some(other))) => Err(Negotiation::Refused(format!("it answered {other:?}"))),
            // A wRPC server answers the preface or closes: anything else
            // answering is not one.
            Ok(Err(err))
                if err.kind() == io::ErrorKind::InvalidData
                    && !conn.read().inbound.buffered().is_empty() =>
            {
                Err(Negotiation::Failed(UnusableTarget::not_wrpc(
                    &pool.target,
                    conn.read().inbound.buffered(),
                )))
            }
            Ok(Err(err)) if is_refusal(&err) => Err(Negotiation::Refused(err.to_string())),
            Ok(Err(err)) => Err(Negotiation::Failed(err)),
            Err(_) => Err(Negotiation::Failed(io::Error::new(
                io::ErrorKind::TimedOut,
                "deadline passed while connecting",
            ))),
        }
    }

    /// What runs when the last handle of a call is dropped: the connection
    /// goes back to the pool if the call ended cleanly in both directions.
    fn finisher(&self, dialect: Dialect) -> OnDone {
        let pool = Arc::clone(&self.0);
        Box::new(move |conn: &Arc<Conn>| {
            if dialect == Dialect::Plain || !pool.pool {
                return;
            }
            {
                let mut out = conn.write();
                if !out.ended() {
                    out.push(frame::put_end);
                    out.set_ended(true);
                }
                if !out.try_drain() {
                    return;
                }
            }
            let mut read = conn.read();
            let results_in =
                read.demux.value_complete() && !read.demux.has_unread() && !read.demux.has_async();
            match read.try_finish(true) {
                Some(true) => {}
                Some(false) => return,
                // All results are in; only the end marker is still on its
                // way: the next call on this connection skips it.
                None if results_in => read.skip_end = true,
                None => return,
            }
            drop(read);
            put_idle(&pool, Arc::clone(conn));
        })
    }
}

fn put_idle(pool: &Pool, conn: Arc<Conn>) {
    if let Ok(mut idle) = pool.idle.lock() {
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }
}

/// Whether an idle connection is still open: nothing (no `GOAWAY`, no end of
/// input) may be readable on it but the previous call's end.
fn alive(conn: &Conn) -> bool {
    let mut read = conn.read();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match read.inbound.poll_event(&mut cx) {
            Poll::Pending => return true,
            Poll::Ready(Ok(Some(Event::End))) if read.skip_end => read.skip_end = false,
            Poll::Ready(_) => return false,
        }
    }
}

/// A call the server refused before processing it.
struct Refused;

enum Negotiation {
    /// The server does not speak the pooled dialect.
    Refused(String),
    /// Connecting failed.
    Failed(io::Error),
}

fn is_refusal(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::InvalidData
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
    )
}

/// Marks in the write side that this call's `END` was sent.
fn mark_params_ended(conn: &Conn) {
    conn.write().set_ended(true);
}
