//! The transports an extension serves on, each giving handlers a [`CallerContext`].

use core::net::SocketAddr;
use core::time::Duration;

use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use wrpc_transport::frame::AcceptError;
use wrpc_transport::{Accept, Serve};

use crate::CallerContext;

/// How long a TCP peer may take to send the invocation header after connecting.
const TCP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// wRPC over NATS, mapping the transport's context into a [`CallerContext`].
#[derive(Clone, Debug)]
pub struct NatsServer(wrpc_transport_nats::Client);

impl NatsServer {
    /// Serves on an established wRPC NATS client.
    pub fn new(client: wrpc_transport_nats::Client) -> Self {
        Self(client)
    }
}

impl Serve for NatsServer {
    type Context = CallerContext;
    type Outgoing = wrpc_transport_nats::SubjectWriter;
    type Incoming = wrpc_transport_nats::Reader;

    async fn serve(
        &self,
        instance: &str,
        func: &str,
        paths: impl Into<Arc<[Box<[Option<usize>]>]>> + Send,
    ) -> anyhow::Result<
        impl Stream<Item = anyhow::Result<(Self::Context, Self::Outgoing, Self::Incoming)>>
            + Send
            + 'static,
    > {
        let invocations = self.0.serve(instance, func, paths).await?;
        Ok(invocations
            .map_ok(|(cx, tx, rx)| (CallerContext::nats(cx.subject.as_str(), cx.headers), tx, rx)))
    }
}

/// The wRPC framing server behind every TCP listener.
pub type TcpServer = wrpc_transport::Server<CallerContext, OwnedReadHalf, OwnedWriteHalf>;

/// One accepted TCP connection, handed to the framing server exactly once.
struct AcceptedTcp(Mutex<Option<(TcpStream, SocketAddr)>>);

impl Accept for AcceptedTcp {
    type Context = CallerContext;
    type Outgoing = OwnedWriteHalf;
    type Incoming = OwnedReadHalf;

    async fn accept(&self) -> std::io::Result<(Self::Context, Self::Outgoing, Self::Incoming)> {
        let taken = self.0.lock().map(|mut slot| slot.take()).ok().flatten();
        let (stream, peer) =
            taken.ok_or_else(|| std::io::Error::other("connection was already accepted"))?;
        let (rx, tx) = stream.into_split();
        Ok((CallerContext::tcp(peer), tx, rx))
    }
}

/// Accepts connections until `stop` is cancelled. Each connection's header is
/// read in its own task with a deadline, so a silent or garbage-sending peer
/// never holds up the others.
pub(crate) async fn accept_tcp(
    listener: TcpListener,
    server: Arc<TcpServer>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // Typically EMFILE: back off instead of spinning.
                warn!(%err, "failed to accept TCP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let conn = AcceptedTcp(Mutex::new(Some((stream, peer))));
            match tokio::time::timeout(TCP_HEADER_TIMEOUT, server.accept(conn)).await {
                Ok(Ok(())) => {}
                Ok(Err(AcceptError::UnhandledFunction { instance, name })) => {
                    warn!(%peer, instance, name, "call to a function this extension does not serve");
                }
                Ok(Err(AcceptError::UnsupportedVersion(v))) => {
                    warn!(%peer, version = v, "dropped TCP connection: not wRPC (unsupported version byte)");
                }
                Ok(Err(err)) => debug!(%peer, %err, "dropped TCP connection"),
                Err(_) => {
                    warn!(%peer, "dropped TCP connection: no invocation header within {TCP_HEADER_TIMEOUT:?}")
                }
            }
        });
    }
}
