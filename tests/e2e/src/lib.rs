//! Shared pieces of the end-to-end tests in `tests/`: the transports every
//! scenario runs over, and how an extension is served on each.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::Path;

use harness::{Extension, HostRun, Nats, Tls};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use transport::Endpoint;

pub use guests::{
    BLOBSTORE_FILESYSTEM, BLOB_GUEST, CONFIG_GUEST, ECHO_GUEST, ECHO_RELAY, ECHO_SERVICE,
    HTTP_COUNTER, HTTP_P3, INVENTORY_GUEST, KV_GUEST, LABEL_GUEST, MSG_GUEST, MSG_HANDLER,
    STREAMS_GUEST, STREAMS_SERVICE,
};
pub use harness::TempDir;

pub mod http;
pub mod messaging;
pub mod s3;
pub mod steady;

/// The wRPC transports every end-to-end scenario runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// wRPC over NATS.
    Nats,
    /// wRPC over TCP.
    Tcp,
    /// wRPC over a Unix domain socket.
    Unix,
    /// wRPC over a WebSocket.
    Ws,
    /// wRPC over a WebSocket with TLS (a private CA).
    Wss,
}

/// Generates `<transport>::<scenario>` tests calling `<scenario>(Transport)`
/// for every transport.
#[macro_export]
macro_rules! per_transport {
    ($($scenario:ident),* $(,)?) => {
        mod nats {
            $(#[test] fn $scenario() { super::$scenario($crate::Transport::Nats) })*
        }
        mod tcp {
            $(#[test] fn $scenario() { super::$scenario($crate::Transport::Tcp) })*
        }
        mod unix {
            $(#[test] fn $scenario() { super::$scenario($crate::Transport::Unix) })*
        }
        mod ws {
            $(#[test] fn $scenario() { super::$scenario($crate::Transport::Ws) })*
        }
        mod wss {
            $(#[test] fn $scenario() { super::$scenario($crate::Transport::Wss) })*
        }
    };
}

/// An extension serving on one transport, with what that transport needs.
pub struct Served {
    /// The extension.
    pub ext: Extension,
    /// The target a workload routes to.
    pub target: String,
    /// The NATS server, for the NATS transport.
    pub nats: Option<Nats>,
    _tls: Option<Tls>,
    _dir: Option<TempDir>,
}

/// Starts the extension at `binary` with `args`, serving on `transport`.
pub fn serve(transport: Transport, binary: &Path, args: &[String]) -> Served {
    serve_with_env(transport, binary, args, &[])
}

/// Like [`serve`], with extra environment variables for the extension.
pub fn serve_with_env(
    transport: Transport,
    binary: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> Served {
    serve_with_options(transport, binary, args, env, "")
}

/// Like [`serve_with_env`], with listener options (`key=value&…`, e.g.
/// `namespace_from=headers`) added to the listener's URL.
pub fn serve_with_options(
    transport: Transport,
    binary: &Path,
    args: &[String],
    env: &[(&str, &str)],
    options: &str,
) -> Served {
    let mut nats = None;
    let mut tls = None;
    let mut dir = None;
    let listen = match transport {
        Transport::Nats => {
            let server = Nats::start().unwrap();
            let url = server.url();
            nats = Some(server);
            url
        }
        Transport::Tcp => "tcp://127.0.0.1:0".into(),
        Transport::Unix => {
            let d = TempDir::new("sock").unwrap();
            let path = d.path().join("ext.sock");
            dir = Some(d);
            format!("unix://{}", path.display())
        }
        Transport::Ws => "ws://127.0.0.1:0/wrpc".into(),
        Transport::Wss => {
            let t = Tls::generate().unwrap();
            let listen = format!(
                "wss://127.0.0.1:0/wrpc?tls_cert={}&tls_key={}",
                t.cert_file().display(),
                t.key_file().display()
            );
            tls = Some(t);
            listen
        }
    };
    let listen = match (options.is_empty(), listen.contains('?')) {
        (true, _) => listen,
        (false, true) => format!("{listen}&{options}"),
        (false, false) => format!("{listen}?{options}"),
    };
    let ext = Extension::start_with_env(binary, args, &[listen], env).unwrap();
    let target = match transport {
        Transport::Nats => nats.as_ref().unwrap().url(),
        Transport::Tcp => ext.address("tcp").unwrap().to_string(),
        Transport::Unix => ext.address("unix").unwrap().to_string(),
        Transport::Ws => ext.address("ws").unwrap().to_string(),
        Transport::Wss => format!(
            "{}?tls_ca={}",
            ext.address("wss").unwrap(),
            tls.as_ref().unwrap().ca_file().display()
        ),
    };
    Served {
        ext,
        target,
        nats,
        _tls: tls,
        _dir: dir,
    }
}

/// Asserts that the host refused to start: exit 1, nothing run, and
/// exactly one line on stderr containing every one of `words`.
#[track_caller]
pub fn assert_refused(run: &HostRun, words: &[&str]) {
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "nothing may run: {run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:#?}");
    for w in words {
        assert!(run.stderr.contains(w), "`{w}` missing: {run:#?}");
    }
}

/// Asserts that the host exited 0 and the guest printed `expect`.
#[track_caller]
pub fn assert_success(run: &HostRun, expect: &str) {
    assert!(
        run.code == Some(0) && run.stdout.contains(expect),
        "expected success with `{expect}`\n{run:#?}"
    );
}

/// A target for `transport` where nothing serves: the running `nats` server
/// with no extension subscribed, port 1 (never listened on here), or a Unix
/// path in a directory that does not exist.
pub fn unserved_target(transport: Transport, nats: &Nats) -> String {
    match transport {
        Transport::Nats => nats.url(),
        Transport::Tcp => "tcp://127.0.0.1:1".into(),
        Transport::Unix => format!(
            "unix://{}/no-such-dir/ext.sock",
            std::env::temp_dir().display()
        ),
        Transport::Ws => "ws://127.0.0.1:1/wrpc".into(),
        Transport::Wss => "wss://127.0.0.1:1/wrpc".into(),
    }
}

/// A target on `transport` that accepts calls and never answers: a NATS
/// client subscribed to every wRPC subject, or a socket nobody reads. Keep
/// the returned guard alive while it is used; `dir` holds a Unix socket.
pub fn silent_target(
    transport: Transport,
    nats: &Nats,
    dir: &TempDir,
) -> (String, Box<dyn std::any::Any>) {
    match transport {
        Transport::Nats => {
            let conn = raw_nats(&nats.url(), b"SUB wrpc.> 1\r\nPING\r\n", "PONG");
            (nats.url(), Box::new(conn))
        }
        Transport::Unix => {
            // The kernel accepts into the backlog; nobody ever reads.
            let path = dir.path().join("silent.sock");
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            (format!("unix://{}", path.display()), Box::new(listener))
        }
        _ => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let target = match transport {
                Transport::Tcp => format!("tcp://{addr}"),
                Transport::Ws => format!("ws://{addr}/wrpc"),
                _ => format!("wss://{addr}/wrpc"),
            };
            (target, Box::new(listener))
        }
    }
}

/// A NATS client speaking the protocol by hand, for callers that misbehave on
/// purpose: connects to `url`, sends `commands` (after `CONNECT`), then reads
/// until a line starting with `until` arrives, and returns the open connection.
pub fn raw_nats(url: &str, commands: &[u8], until: &str) -> TcpStream {
    let mut conn = TcpStream::connect(url.trim_start_matches("nats://")).unwrap();
    conn.write_all(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n")
        .unwrap();
    conn.write_all(commands).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    while !line.starts_with(until) {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "NATS closed the connection"
        );
    }
    conn
}

type BoxedIo = Box<dyn RawIo>;

/// What a raw connection needs of its stream.
pub trait RawIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> RawIo for T {}

/// A connection to a stream target (`tcp://`, `unix://`, `ws://`, `wss://`)
/// driven byte by byte, for callers that misbehave on purpose.
pub struct RawConn {
    rt: tokio::runtime::Runtime,
    io: BoxedIo,
}

impl RawConn {
    /// Connects to `target` (a WebSocket upgrade included).
    pub fn connect(target: &str) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let endpoint: Endpoint = target
            .parse()
            .map_err(|e| std::io::Error::other(format!("{e}")))?;
        let io: BoxedIo = rt.block_on(async {
            Ok::<BoxedIo, std::io::Error>(match &endpoint {
                Endpoint::Tcp { host, port, .. } => {
                    Box::new(tokio::net::TcpStream::connect((host.as_str(), *port)).await?)
                }
                Endpoint::Unix { path, .. } => {
                    Box::new(tokio::net::UnixStream::connect(path).await?)
                }
                Endpoint::Ws(ws) => {
                    let tls = transport::stream::ws::ClientTls {
                        ca_file: ws.tls.ca_file.clone(),
                        ..Default::default()
                    };
                    Box::new(
                        transport::stream::ws::connect(
                            &ws.url(),
                            &[],
                            &tls,
                            transport::stream::ws::WsLimits::default(),
                            std::time::Duration::from_secs(10),
                        )
                        .await
                        .map_err(|e| std::io::Error::other(e.to_string()))?,
                    )
                }
                other => {
                    return Err(std::io::Error::other(format!(
                        "{other} is not a stream target"
                    )))
                }
            })
        })?;
        Ok(Self { rt, io })
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let Self { rt, io } = self;
        rt.block_on(async {
            io.write_all(bytes).await?;
            io.flush().await
        })
    }

    /// Reads exactly `n` bytes, within `limit`.
    pub fn recv(&mut self, n: usize, limit: std::time::Duration) -> std::io::Result<Vec<u8>> {
        let Self { rt, io } = self;
        rt.block_on(async {
            let mut buf = vec![0; n];
            tokio::time::timeout(limit, io.read_exact(&mut buf))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
            Ok(buf)
        })
    }

    /// Whether the peer has closed the connection (reads end of input or an
    /// error within `limit`).
    pub fn closed_within(&mut self, limit: std::time::Duration) -> bool {
        let Self { rt, io } = self;
        rt.block_on(async {
            let mut buf = [0u8; 256];
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
                    Err(_) => return false,
                    Ok(Ok(0) | Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                }
            }
        })
    }

    /// Opens the pooled dialect and checks the server answers it: proof the
    /// listener accepted this connection and a task is serving it.
    pub fn handshake(&mut self) -> std::io::Result<()> {
        self.send(&transport::frame::POOL_PREFACE)?;
        let answer = self.recv(4, std::time::Duration::from_secs(10))?;
        if answer != transport::frame::POOL_PREFACE {
            return Err(std::io::Error::other(format!(
                "unexpected answer {answer:?}"
            )));
        }
        Ok(())
    }
}

/// The encoded `CALL` of the pooled dialect for `instance.func`.
pub fn pooled_call(instance: &str, func: &str) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    transport::frame::put_call(&mut buf, instance, func, &[]);
    buf.to_vec()
}
