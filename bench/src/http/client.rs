//! The load generator and the floor: hyper HTTP/1.1 clients of this
//! process, and `bench http-hello`, a native hyper server.

use std::time::{Duration, Instant};

use anyhow::ensure;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::report::Stats;

/// `bench http-hello`: answers every request with `hello\n` until killed.
pub fn serve_hello(listen: &str) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening http://{}\nready", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            tokio::spawn(async move {
                let hello = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"hello\n"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), hello)
                    .await;
            });
        }
    })
}

type Conn = SendRequest<Full<Bytes>>;

/// A fresh HTTP/1.1 connection to `addr`.
async fn connect(addr: &str) -> anyhow::Result<Conn> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// Sends `method path` with `body` on `conn`: the status and body.
async fn send(
    conn: &mut Conn,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Bytes)> {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body.to_string())))?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// One request on a fresh connection.
pub async fn once(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Bytes)> {
    send(&mut connect(addr).await?, method, path, body).await
}

/// One server at one concurrency.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub rps: f64,
    pub stats: Stats,
    pub errors: u64,
}

/// `GET /hello` back to back on one connection until `end`: the latencies
/// of the 200s started from `from` on, and the other answers and failures.
async fn client(addr: String, from: Instant, end: Instant) -> anyhow::Result<(Vec<u128>, u64)> {
    let mut conn = connect(&addr).await?;
    let (mut samples, mut errors) = (Vec::new(), 0);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            return Ok((samples, errors));
        }
        let ok = match send(&mut conn, "GET", "/hello", "").await {
            Ok((status, _)) => status == 200,
            Err(_) => {
                conn = connect(&addr).await?;
                false
            }
        };
        if t0 >= from {
            match ok {
                true => samples.push(t0.elapsed().as_nanos()),
                false => errors += 1,
            }
        }
    }
}

/// `conns` clients on `addr` for `warmup` then `duration`.
pub async fn load(
    addr: &str,
    conns: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Cell> {
    let from = Instant::now() + warmup;
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(client(addr.to_string(), from, from + duration)))
        .collect();
    let (mut samples, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (s, e) = task.await??;
        samples.extend(s);
        errors += e;
    }
    ensure!(!samples.is_empty(), "no request to {addr} succeeded");
    Ok(Cell {
        rps: samples.len() as f64 / duration.as_secs_f64(),
        stats: Stats::of(samples),
        errors,
    })
}
