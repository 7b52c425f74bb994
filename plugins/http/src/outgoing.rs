//! `wasi:http/outgoing-handler` (WASI 0.2) and `wasi:http/client` (WASI
//! 0.3): a component's requests go out only to the hosts its workload
//! allows, each with a deadline; any other is refused with
//! `HTTP-request-denied`.

use core::time::Duration;

use std::sync::Arc;

use http::uri::Scheme;
use tracing::{debug, warn};
use wasmtime_wasi_http::{
    default_send_request, Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks,
};

/// How long an outgoing request may take to connect, to its first response
/// byte, and between two body chunks, unless the component asks for less.
pub const OUTGOING_TIMEOUT: Duration = Duration::from_secs(30);

/// One allowed destination: a host (any port), `host:port`, or `*.suffix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    host: String,
    port: Option<u16>,
}

impl Allowed {
    /// Parses an `allow:` entry.
    ///
    /// # Errors
    ///
    /// The entry, and why it is not a host.
    pub fn parse(written: &str) -> Result<Self, String> {
        let lower = written.trim().to_ascii_lowercase();
        let (host, port) = match lower.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port
                    .parse()
                    .map_err(|_| format!("`allow`: `{written}` has a bad port `{port}`"))?;
                (host.to_string(), Some(port))
            }
            _ => (lower, None),
        };
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
        if !valid {
            return Err(format!(
                "`allow`: `{written}` is not a host, `host:port` or `*.domain`"
            ));
        }
        Ok(Self { host, port })
    }

    fn admits(&self, host: &str, port: u16) -> bool {
        let host_ok = match self.host.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.')),
            None => self.host == host,
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// A workload's outgoing policy: where its components may send requests.
#[derive(Clone, Debug, Default)]
pub struct Outgoing {
    allowed: Arc<[Allowed]>,
}

impl Outgoing {
    /// Allows exactly `allowed` (nothing when empty).
    pub fn new(allowed: Vec<Allowed>) -> Self {
        Self {
            allowed: allowed.into(),
        }
    }

    /// Whether a request to `uri` may go out.
    pub fn admits(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let default_port = if uri.scheme() == Some(&Scheme::HTTP) {
            80
        } else {
            443
        };
        let port = uri.port_u16().unwrap_or(default_port);
        self.allowed.iter().any(|a| a.admits(&host, port))
    }
}

/// The `wasi:http` state of one component in a store.
pub struct HttpState {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) hooks: Hooks,
}

impl HttpState {
    /// State whose outgoing requests follow `outgoing`.
    pub fn new(outgoing: Outgoing) -> Self {
        Self {
            ctx: WasiHttpCtx::new(),
            hooks: Hooks { outgoing },
        }
    }

    /// State that sends nothing out (for components of workloads without
    /// an allow-list).
    pub fn deny_all() -> Self {
        Self::new(Outgoing::default())
    }
}

/// The hooks `wasmtime-wasi-http` asks before sending a request.
pub(crate) struct Hooks {
    outgoing: Outgoing,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn core::future::Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn core::future::Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn core::future::Future<Output = Result<(), Error>> + Send>,
                    ),
                    Error,
                >,
            > + Send,
    > {
        drop(fut);
        if !self.outgoing.admits(request.uri()) {
            warn!(uri = %request.uri(), "outgoing request refused: its host is not in the workload's `allow` list");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        debug!(uri = %request.uri(), "outgoing request");
        let options = with_deadlines(options);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = default_send_request(request, Some(options)).await?;
            let io: Box<dyn core::future::Future<Output = Result<(), Error>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

/// The component's options, each deadline it left unset (or set longer)
/// capped at [`OUTGOING_TIMEOUT`].
fn with_deadlines(options: Option<RequestOptions>) -> RequestOptions {
    let cap = |d: Option<Duration>| Some(d.map_or(OUTGOING_TIMEOUT, |d| d.min(OUTGOING_TIMEOUT)));
    let options = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> Outgoing {
        Outgoing::new(entries.iter().map(|e| Allowed::parse(e).unwrap()).collect())
    }

    #[test]
    fn hosts_ports_and_wildcards() {
        let p = policy(&["example.com", "127.0.0.1:8080", "*.svc.test"]);
        assert!(p.admits(&"https://example.com/x".parse().unwrap()));
        assert!(p.admits(&"http://Example.COM:81/".parse().unwrap()));
        assert!(p.admits(&"http://127.0.0.1:8080/".parse().unwrap()));
        assert!(!p.admits(&"http://127.0.0.1:8081/".parse().unwrap()));
        assert!(!p.admits(&"http://127.0.0.1/".parse().unwrap()));
        assert!(p.admits(&"http://a.svc.test/".parse().unwrap()));
        assert!(!p.admits(&"http://svc.test/".parse().unwrap()));
        assert!(!p.admits(&"http://evil.com/?example.com".parse().unwrap()));
        assert!(!Outgoing::default().admits(&"http://example.com/".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(Allowed::parse("a b").unwrap_err().contains("`a b`"));
        assert!(Allowed::parse("h:http").unwrap_err().contains("bad port"));
        assert_eq!(Allowed::parse("[::1]:80").unwrap().port, Some(80));
    }
}
