//! One URL grammar for targets (where a client calls) and listeners (where a
//! server accepts): `nats://`, `tcp://`, `unix://`, `ws://` and `wss://`.
//!
//! Credentials are kept and never shown: every `Display` and `Debug` of an
//! endpoint, and every parse error, prints `***` in place of a password or a
//! token.

use core::fmt;
use core::str::FromStr;

use std::path::PathBuf;

use crate::access::Access;

mod command_line;
mod options;

pub use command_line::{command_line_secret_error, secret_on_command_line};

pub(crate) use options::{escape, QUERY};
use options::{percent_decode, redact_raw, Options, USER};

/// The default NATS port when a server address leaves it out.
pub const NATS_DEFAULT_PORT: u16 = 4222;

/// A secret value (password, token) that prints as `***`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret {
    value: String,
    /// Where it came from: `None` when written inline, else the environment variable.
    env: Option<String>,
}

impl Secret {
    /// The secret itself, for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.value
    }

    fn inline(value: String) -> Self {
        Self { value, env: None }
    }

    fn from_env(var: &str, option: &str) -> Result<Self, String> {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Self {
                value,
                env: Some(var.to_string()),
            }),
            _ => Err(format!(
                "`{option}={var}`: environment variable {var} is not set"
            )),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How a NATS connection authenticates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NatsAuth {
    /// No credentials.
    #[default]
    None,
    /// A token: `nats://TOKEN@host`, `?token=…` or `?token_env=VAR`.
    Token(Secret),
    /// User and password: `nats://user:pass@host` or `?password_env=VAR`.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An nkey seed read from a file: `?nkey=FILE`.
    NkeySeedFile(PathBuf),
    /// A credentials file (JWT and nkey seed): `?creds=FILE`.
    CredsFile(PathBuf),
}

/// TLS files: a private CA to trust, and a certificate and key to present
/// (a client certificate for targets, the server certificate for `wss://`
/// listeners).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    /// PEM file of CA certificates to trust (`?tls_ca=FILE`).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain to present (`?tls_cert=FILE`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key for `cert_file` (`?tls_key=FILE`).
    pub key_file: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether no file is named.
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }
}

/// A NATS server (or cluster) and the subject prefix wRPC uses on it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NatsEndpoint {
    /// `host:port` of each server, in the order given.
    pub servers: Vec<String>,
    /// Subject prefix, dot-separated (empty for none).
    pub prefix: String,
    /// Credentials.
    pub auth: NatsAuth,
    /// Whether TLS is required (`?tls=required`, or implied by any `tls_*` file).
    pub tls_required: bool,
    /// TLS files.
    pub tls: TlsFiles,
    /// Queue group a listener subscribes in (`?queue_group=NAME`).
    pub queue_group: Option<String>,
    /// A listener's namespace source (`namespace=`, `namespace_from=headers`).
    pub access: Access,
}

impl NatsEndpoint {
    /// The server addresses as async-nats takes them (`nats://host:port`, or
    /// `tls://` when TLS is required).
    pub fn server_urls(&self) -> Vec<String> {
        let scheme = if self.tls_required { "tls" } else { "nats" };
        self.servers
            .iter()
            .map(|s| format!("{scheme}://{s}"))
            .collect()
    }
}

/// A WebSocket endpoint.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WsEndpoint {
    /// `wss://` rather than `ws://`.
    pub secure: bool,
    /// Host name or address.
    pub host: String,
    /// Port (default 80, or 443 for `wss://`).
    pub port: u16,
    /// The upgrade path, starting with `/`.
    pub path: String,
    /// TLS files (`wss://` only).
    pub tls: TlsFiles,
    /// Whether a client keeps connections open between calls (`?pool=off` to disable).
    pub pool: bool,
    /// A listener's access policy (see [`crate::access`]).
    pub access: Access,
}

impl WsEndpoint {
    /// The URL without options, e.g. `wss://host:443/wrpc`.
    pub fn url(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!(
            "{scheme}://{}:{}{}",
            bracket(&self.host),
            self.port,
            self.path
        )
    }
}

/// Where a wRPC peer is: a target a client calls, or an address a server
/// listens on.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `nats://[user[:password]@|token@]host[:port][,host[:port]…][/prefix][?options]`.
    Nats(NatsEndpoint),
    /// `tcp://host:port[?pool=off]`, over TLS with
    /// `?tls=required` or any of `tls_ca=FILE`, `tls_cert=FILE`, `tls_key=FILE`.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Whether a client keeps connections open between calls.
        pool: bool,
        /// TLS, when the URL asks for it: a target trusts `ca_file` (else
        /// the webpki roots) and presents `cert_file`; a listener presents
        /// `cert_file` and, with `ca_file`, requires client certificates.
        tls: Option<TlsFiles>,
        /// A listener's access policy (see [`crate::access`]).
        access: Access,
    },
    /// `unix:///absolute/path[?pool=off]`.
    Unix {
        /// The socket's path.
        path: PathBuf,
        /// Whether a client keeps connections open between calls.
        pool: bool,
        /// A listener's access policy (see [`crate::access`]).
        access: Access,
    },
    /// `ws://host[:port][/path]` or `wss://…[?tls_ca=FILE&tls_cert=FILE&tls_key=FILE]`.
    Ws(WsEndpoint),
}

impl Endpoint {
    /// The scheme: `nats`, `tcp`, `unix`, `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Nats(_) => "nats",
            Self::Tcp { .. } => "tcp",
            Self::Unix { .. } => "unix",
            Self::Ws(ws) if ws.secure => "wss",
            Self::Ws(_) => "ws",
        }
    }

    /// Whether the URL itself holds a secret: a NATS token or password
    /// written inline rather than read from the environment or a file.
    pub fn has_inline_secret(&self) -> bool {
        match self {
            Self::Nats(n) => match &n.auth {
                NatsAuth::Token(secret)
                | NatsAuth::UserPassword {
                    password: secret, ..
                } => secret.env.is_none(),
                _ => false,
            },
            _ => false,
        }
    }

    /// The listener options (who is admitted, where namespaces come from);
    /// empty for a target.
    pub fn access(&self) -> &Access {
        match self {
            Self::Nats(n) => &n.access,
            Self::Tcp { access, .. } | Self::Unix { access, .. } => access,
            Self::Ws(ws) => &ws.access,
        }
    }
}

/// An endpoint string that cannot be used. The message repeats the input with
/// its secrets replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}`: {reason}")]
pub struct EndpointError {
    input: String,
    reason: String,
}

impl EndpointError {
    fn new(raw: &str, reason: impl Into<String>) -> Self {
        Self {
            input: redact_raw(raw),
            reason: reason.into(),
        }
    }

    /// What is wrong, without the input.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

const GRAMMAR: &str = "expected nats://HOST[:PORT][/PREFIX], tcp://HOST:PORT, unix:///PATH, ws://HOST[:PORT][/PATH] or wss://…";

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| EndpointError::new(s, reason);
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(err(format!("not an endpoint URL ({GRAMMAR})")));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let mut options = Options::parse(query).map_err(err)?;
        let endpoint = match scheme.to_ascii_lowercase().as_str() {
            "nats" => parse_nats(rest, &mut options).map(Self::Nats),
            "tcp" => parse_tcp(rest, &mut options),
            "unix" => parse_unix(rest, &mut options),
            "ws" => parse_ws(rest, false, &mut options).map(Self::Ws),
            "wss" => parse_ws(rest, true, &mut options).map(Self::Ws),
            other => Err(format!(
                "unsupported scheme `{other}` (supported: nats, tcp, unix, ws, wss)"
            )),
        }
        .map_err(err)?;
        options.finish().map_err(err)?;
        Ok(endpoint)
    }
}

fn parse_nats(rest: &str, options: &mut Options) -> Result<NatsEndpoint, String> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let mut servers = Vec::new();
    for server in hosts.split(',') {
        let (host, port) = split_host_port(server, Some(NATS_DEFAULT_PORT))?;
        servers.push(format!("{}:{port}", bracket(&host)));
    }
    let prefix = path.trim_matches('/').replace('/', ".");
    if !prefix.is_empty()
        && prefix.split('.').any(|t| {
            t.is_empty() || t.contains(['*', '>', ' ', '\t']) || t.chars().any(char::is_control)
        })
    {
        return Err(format!(
            "subject prefix `{prefix}` must be dot- or slash-separated tokens without spaces, `*` or `>`"
        ));
    }
    let mut methods = Vec::new();
    let mut auth = NatsAuth::None;
    if let Some(userinfo) = userinfo {
        auth = match userinfo.split_once(':') {
            Some((user, password)) => NatsAuth::UserPassword {
                user: percent_decode(user)?,
                password: Secret::inline(percent_decode(password)?),
            },
            None => NatsAuth::Token(Secret::inline(percent_decode(userinfo)?)),
        };
        methods.push("credentials in the URL");
    }
    if let Some(token) = options.take("token") {
        auth = NatsAuth::Token(Secret::inline(token));
        methods.push("token");
    }
    if let Some(var) = options.take("token_env") {
        auth = NatsAuth::Token(Secret::from_env(&var, "token_env")?);
        methods.push("token_env");
    }
    if let Some(var) = options.take("password_env") {
        let NatsAuth::Token(user) = &auth else {
            return Err(
                "`password_env` needs a user in the URL: nats://USER@host?password_env=VAR".into(),
            );
        };
        auth = NatsAuth::UserPassword {
            user: user.expose().to_string(),
            password: Secret::from_env(&var, "password_env")?,
        };
    }
    if let Some(file) = options.take_path("nkey")? {
        auth = NatsAuth::NkeySeedFile(file);
        methods.push("nkey");
    }
    if let Some(file) = options.take_path("creds")? {
        auth = NatsAuth::CredsFile(file);
        methods.push("creds");
    }
    if methods.len() > 1 {
        return Err(format!(
            "give one way to authenticate, not {}",
            methods.join(" and ")
        ));
    }
    let tls = options.take_tls_option()?;
    let access = options.take_access("nats", false)?;
    let queue_group = match options.take("queue_group") {
        Some(g) if g.is_empty() || g.contains([' ', '\t']) => {
            return Err(format!("queue group `{g}` must be a non-empty token"))
        }
        other => other,
    };
    Ok(NatsEndpoint {
        servers,
        prefix,
        auth,
        tls_required: tls.is_some(),
        tls: tls.unwrap_or_default(),
        queue_group,
        access,
    })
}

fn parse_tcp(rest: &str, options: &mut Options) -> Result<Endpoint, String> {
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err("a tcp:// endpoint has no path (expected tcp://HOST:PORT)".into());
    }
    if authority.contains('@') {
        return Err("a tcp:// endpoint takes no credentials".into());
    }
    let (host, port) = split_host_port(authority, None)?;
    let tls = options.take_tls_option()?;
    let verified = tls.as_ref().is_some_and(|t| t.ca_file.is_some());
    Ok(Endpoint::Tcp {
        host,
        port,
        pool: options.take_pool()?,
        access: options.take_access("tcp", verified)?,
        tls,
    })
}

fn parse_unix(rest: &str, options: &mut Options) -> Result<Endpoint, String> {
    if !rest.starts_with('/') || rest.len() < 2 {
        return Err("a unix:// endpoint needs an absolute path: unix:///run/ext.sock".into());
    }
    Ok(Endpoint::Unix {
        path: PathBuf::from(percent_decode(rest)?),
        pool: options.take_pool()?,
        access: options.take_access("unix", false)?,
    })
}

fn parse_ws(rest: &str, secure: bool, options: &mut Options) -> Result<WsEndpoint, String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err("a WebSocket endpoint takes no credentials in the URL".into());
    }
    let (host, port) = split_host_port(authority, Some(if secure { 443 } else { 80 }))?;
    let tls = options.take_tls()?;
    if !secure && !tls.is_empty() {
        return Err("tls_* options need wss://".into());
    }
    let verified = secure && tls.ca_file.is_some();
    Ok(WsEndpoint {
        secure,
        host,
        port,
        path: path.to_string(),
        pool: options.take_pool()?,
        access: options.take_access(if secure { "wss" } else { "ws" }, verified)?,
        tls,
    })
}

/// `host:port`, `[v6]:port`, or a host alone when `default_port` is given.
fn split_host_port(s: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let need = || {
        if default_port.is_some() {
            format!("`{s}` is not HOST[:PORT]")
        } else {
            format!("needs a host and a port, got `{s}`")
        }
    };
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(need)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(need()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@[]".contains(c))
    {
        return Err(need());
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .map_err(|_| format!("port `{p}` is not a number from 0 to 65535"))?,
        (None, Some(p)) => p,
        (None, None) => return Err(need()),
    };
    Ok((host.to_string(), port))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut query: Vec<String> = Vec::new();
        let tls_query = |query: &mut Vec<String>, tls: &TlsFiles| {
            for (k, v) in [
                ("tls_ca", &tls.ca_file),
                ("tls_cert", &tls.cert_file),
                ("tls_key", &tls.key_file),
            ] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", escape(&v.to_string_lossy(), QUERY)));
                }
            }
        };
        match self {
            Self::Nats(n) => {
                f.write_str("nats://")?;
                match &n.auth {
                    NatsAuth::Token(t) => match &t.env {
                        Some(var) => query.push(format!("token_env={}", escape(var, QUERY))),
                        None => f.write_str("***@")?,
                    },
                    NatsAuth::UserPassword { user, password } => match &password.env {
                        Some(var) => {
                            write!(f, "{}@", escape(user, USER))?;
                            query.push(format!("password_env={}", escape(var, QUERY)));
                        }
                        None => write!(f, "{}:***@", escape(user, USER))?,
                    },
                    NatsAuth::NkeySeedFile(p) => {
                        query.push(format!("nkey={}", escape(&p.to_string_lossy(), QUERY)));
                    }
                    NatsAuth::CredsFile(p) => {
                        query.push(format!("creds={}", escape(&p.to_string_lossy(), QUERY)));
                    }
                    NatsAuth::None => {}
                }
                f.write_str(&n.servers.join(","))?;
                if !n.prefix.is_empty() {
                    write!(f, "/{}", n.prefix)?;
                }
                if n.tls_required && n.tls.is_empty() {
                    query.push("tls=required".into());
                }
                tls_query(&mut query, &n.tls);
                if let Some(g) = &n.queue_group {
                    query.push(format!("queue_group={}", escape(g, QUERY)));
                }
            }
            Self::Tcp {
                host,
                port,
                pool,
                tls,
                ..
            } => {
                write!(f, "tcp://{}:{port}", bracket(host))?;
                match tls {
                    Some(tls) if tls.is_empty() => query.push("tls=required".into()),
                    Some(tls) => tls_query(&mut query, tls),
                    None => {}
                }
                if !pool {
                    query.push("pool=off".into());
                }
            }
            Self::Unix { path, pool, .. } => {
                write!(f, "unix://{}", escape(&path.to_string_lossy(), &['?']))?;
                if !pool {
                    query.push("pool=off".into());
                }
            }
            Self::Ws(ws) => {
                f.write_str(&ws.url())?;
                tls_query(&mut query, &ws.tls);
                if !ws.pool {
                    query.push("pool=off".into());
                }
            }
        }
        query.extend(self.access().query());
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

impl fmt::Debug for NatsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsEndpoint({})", Endpoint::Nats(self.clone()))
    }
}

impl fmt::Debug for WsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WsEndpoint({})", Endpoint::Ws(self.clone()))
    }
}

#[cfg(test)]
mod fuzzed;
#[cfg(test)]
mod tests;
