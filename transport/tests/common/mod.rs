//! Helpers shared by the transport's integration tests.
#![allow(dead_code)]

pub mod pki;

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use transport::schema::{Signature, WireType};
use transport::server::{Call, Registry, ServeOptions};
use transport::{CallTimer, Client, Invocation, Limits};

pub const ECHO: &str = "test:echo/echo@0.1.0";

/// [`registry`] served on a stream listener until dropped.
pub struct Server {
    /// The address bound, as the listener reports it.
    pub local: String,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds `endpoint` and serves [`registry`] on it.
pub async fn start(endpoint: &str) -> Server {
    let listener = transport::stream::Listener::bind(&endpoint.parse().unwrap())
        .await
        .unwrap();
    let local = listener.local().to_string();
    let shutdown = CancellationToken::new();
    tokio::spawn(transport::stream::serve(
        listener,
        Arc::new(registry()),
        serve_options(&shutdown),
    ));
    Server { local, shutdown }
}

pub fn string(s: &str) -> Bytes {
    let mut buf = BytesMut::new();
    transport::frame::put_leb_u32(&mut buf, s.len() as u32);
    buf.put_slice(s.as_bytes());
    buf.freeze()
}

pub fn unstring(b: &[u8]) -> String {
    let mut len: usize = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let byte = b[i];
        len |= usize::from(byte & 0x7f) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    assert_eq!(b.len() - i, len, "string length");
    String::from_utf8(b[i..].to_vec()).unwrap()
}

pub fn echo_signature() -> Signature {
    Signature {
        params: vec![WireType::String],
        results: vec![WireType::String],
    }
}

/// `echo` answers `WORKLOAD:MESSAGE`; `fail` fails with a message; `big`
/// answers a string of the length it is given (as a string).
pub fn registry() -> Registry {
    let mut reg = Registry::new();
    reg.insert(
        ECHO,
        "echo",
        &echo_signature(),
        Arc::new(|call: Call| {
            Box::pin(async move {
                let Call { cx, mut rx, mut tx } = call;
                let mut params = Vec::new();
                rx.read_to_end(&mut params)
                    .await
                    .map_err(|e| e.to_string())?;
                let reply = format!("{}:{}", cx.workload().unwrap_or("anon"), unstring(&params));
                tx.write_all(&string(&reply))
                    .await
                    .map_err(|e| e.to_string())?;
                tx.flush().await.map_err(|e| e.to_string())?;
                Ok(())
            })
        }),
    )
    .unwrap();
    reg.insert(
        ECHO,
        "peer",
        &echo_signature(),
        Arc::new(|call: Call| {
            Box::pin(async move {
                let Call { cx, mut rx, mut tx } = call;
                rx.read_to_end(&mut Vec::new())
                    .await
                    .map_err(|e| e.to_string())?;
                let peer = cx
                    .peer()
                    .map_or_else(|| "none".to_string(), |p| p.to_string());
                tx.write_all(&string(&format!("{} {peer}", cx.transport())))
                    .await
                    .map_err(|e| e.to_string())?;
                tx.flush().await.map_err(|e| e.to_string())?;
                Ok(())
            })
        }),
    )
    .unwrap();
    reg.insert(
        ECHO,
        "who",
        &echo_signature(),
        Arc::new(|call: Call| {
            Box::pin(async move {
                let Call { cx, mut rx, mut tx } = call;
                rx.read_to_end(&mut Vec::new())
                    .await
                    .map_err(|e| e.to_string())?;
                let cert = cx
                    .certificate()
                    .map_or_else(|| "none".to_string(), ToString::to_string);
                let who = format!(
                    "{} ns={} cert={cert}",
                    cx.transport(),
                    cx.namespace().unwrap_or("none")
                );
                tx.write_all(&string(&who))
                    .await
                    .map_err(|e| e.to_string())?;
                tx.flush().await.map_err(|e| e.to_string())?;
                Ok(())
            })
        }),
    )
    .unwrap();
    reg.insert(
        ECHO,
        "fail",
        &echo_signature(),
        Arc::new(|call: Call| {
            Box::pin(async move {
                let Call { mut rx, .. } = call;
                rx.read_to_end(&mut Vec::new())
                    .await
                    .map_err(|e| e.to_string())?;
                Err("the handler says no".to_string())
            })
        }),
    )
    .unwrap();
    reg.insert(
        ECHO,
        "big",
        &echo_signature(),
        Arc::new(|call: Call| {
            Box::pin(async move {
                let Call { mut rx, mut tx, .. } = call;
                let mut params = Vec::new();
                rx.read_to_end(&mut params)
                    .await
                    .map_err(|e| e.to_string())?;
                let n: usize = unstring(&params)
                    .parse()
                    .map_err(|_| "not a number".to_string())?;
                tx.write_all(&string(&"x".repeat(n)))
                    .await
                    .map_err(|e| e.to_string())?;
                tx.flush().await.map_err(|e| e.to_string())?;
                Ok(())
            })
        }),
    )
    .unwrap();
    reg
}

pub fn serve_options(shutdown: &CancellationToken) -> ServeOptions {
    ServeOptions {
        limits: Limits::DEFAULT,
        permits: Arc::new(tokio::sync::Semaphore::new(64)),
        shutdown: shutdown.clone(),
        abort: CancellationToken::new(),
        tracker: TaskTracker::new(),
    }
}

pub async fn call(
    client: &Client,
    func: &str,
    msg: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<String> {
    let out = call_typed(client, func, msg, headers, &[WireType::String]).await?;
    Ok(unstring(&out))
}

/// Calls `test:echo/echo@0.1.0.FUNC` with a string, its results typed by
/// `results`; returns their bytes.
async fn call_typed(
    client: &Client,
    func: &str,
    msg: &str,
    headers: &[(&str, &str)],
    results: &[WireType],
) -> std::io::Result<Vec<u8>> {
    let (tx, mut rx) = client
        .invoke(Invocation {
            instance: ECHO,
            func,
            headers,
            params: string(msg),
            params_complete: true,
            results: Some(transport::schema::ScanPlan::new(results)),
            result_paths: Arc::from([]),
            timer: Arc::new(CallTimer::new(
                func.to_string(),
                Some(Instant::now() + Duration::from_secs(5)),
                Duration::from_secs(5),
            )),
        })
        .await?;
    drop(tx);
    let mut out = Vec::new();
    rx.read_to_end(&mut out).await?;
    Ok(out)
}

pub async fn echo(client: &Client, msg: &str, headers: &[(&str, &str)]) -> std::io::Result<String> {
    call(client, "echo", msg, headers).await
}

/// Registers `note` and `refuse`: each takes a string, returns nothing,
/// waits 200 ms (longer than a caller would take to return on its own) and
/// counts itself in `ran`; `refuse` then fails.
pub fn insert_without_results(reg: &mut Registry, ran: &Arc<std::sync::atomic::AtomicUsize>) {
    for (func, fails) in [("note", false), ("refuse", true)] {
        let ran = Arc::clone(ran);
        reg.insert(
            ECHO,
            func,
            &Signature {
                params: vec![WireType::String],
                results: vec![],
            },
            Arc::new(move |call: Call| {
                let ran = Arc::clone(&ran);
                Box::pin(async move {
                    let Call { mut rx, .. } = call;
                    rx.read_to_end(&mut Vec::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if fails {
                        return Err("refused on purpose".to_string());
                    }
                    Ok(())
                })
            }),
        )
        .unwrap();
    }
}

/// Calls `test:echo/echo@0.1.0.FUNC` with a string, expecting no results.
pub async fn call_without_results(client: &Client, func: &str) -> std::io::Result<()> {
    let out = call_typed(client, func, "x", &[], &[]).await?;
    assert!(out.is_empty(), "results of a function without results");
    Ok(())
}
