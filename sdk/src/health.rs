//! A small HTTP/1.1 endpoint for liveness (`/healthz`) and readiness (`/readyz`).

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// A backend check: `Ok` when the backend answers, else why not.
pub type Probe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_REQUEST: usize = 8 * 1024;

/// Readiness: a latch set once every listener is up, cleared on shutdown, and
/// the backend probe.
pub(crate) struct Health {
    listening: AtomicBool,
    probe: Probe,
}

impl Health {
    pub(crate) fn new(probe: Probe) -> Self {
        Self {
            listening: AtomicBool::new(false),
            probe,
        }
    }

    pub(crate) fn set_listening(&self, up: bool) {
        self.listening.store(up, Ordering::SeqCst);
    }

    async fn ready(&self) -> Result<(), String> {
        if !self.listening.load(Ordering::SeqCst) {
            return Err("listeners are not up".into());
        }
        match tokio::time::timeout(PROBE_TIMEOUT, (self.probe)()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(format!("backend: {why}")),
            Err(_) => Err(format!("backend: no answer within {PROBE_TIMEOUT:?}")),
        }
    }
}

pub(crate) async fn serve_http(
    listener: TcpListener,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            if let Err(err) = tokio::time::timeout(REQUEST_TIMEOUT, respond(stream, &health)).await
            {
                debug!(%err, "health request timed out");
            }
        });
    }
}

async fn respond(mut stream: TcpStream, health: &Health) {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > MAX_REQUEST {
            return write(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
    }
    let line = buf.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (parts.next(), parts.next());
    if method != Some(b"GET".as_slice()) && method != Some(b"HEAD".as_slice()) {
        return write(&mut stream, "405 Method Not Allowed", "").await;
    }
    match path {
        Some(b"/healthz") => write(&mut stream, "200 OK", "ok\n").await,
        Some(b"/readyz") => match health.ready().await {
            Ok(()) => write(&mut stream, "200 OK", "ready\n").await,
            Err(why) => {
                write(
                    &mut stream,
                    "503 Service Unavailable",
                    &format!("not ready: {why}\n"),
                )
                .await;
            }
        },
        _ => write(&mut stream, "404 Not Found", "").await,
    }
}

async fn write(stream: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
