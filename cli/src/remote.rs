//! A connection to one target, bounded by one deadline, and raw calls on it.

use core::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;
use transport::client::{Call, CallErrorKind, Deadline};
use transport::schema::WireType;
use transport::{CallError, CallOptions, Connector, Endpoint, Prepared, Target};

use crate::Fail;

/// The client name a NATS server sees.
const CLIENT_NAME: &str = "wrpc-ext";

/// Most caller headers on one call (the transport's limit).
const MAX_HEADERS: usize = 32;

/// Longest header value the transports carry.
const MAX_HEADER_VALUE: usize = 253;

/// Flags every subcommand that calls a target shares.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// How long the whole command may take: connecting, describing, calling.
    #[arg(long, default_value = "10s", value_parser = transport::parse_duration)]
    pub timeout: Duration,

    /// A caller header sent with the call, e.g. `wrpc-workload=my-app`
    /// (repeatable); `wrpc-workload` and `wrpc-namespace` also go on
    /// WebSocket upgrades.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,

    /// Print JSON on one line instead of indented.
    #[arg(long)]
    pub json: bool,
}

impl Options {
    /// `value` as JSON, indented unless `--json`.
    pub fn print(&self, value: &impl serde::Serialize) -> Result<(), Fail> {
        let text = if self.json {
            serde_json::to_string(value)
        } else {
            serde_json::to_string_pretty(value)
        };
        let text = text.map_err(|err| Fail::call(format!("cannot print the result: {err}")))?;
        println!("{text}");
        Ok(())
    }
}

/// Parses a target URL (a usage error if it is not one).
pub fn endpoint(target: &str) -> Result<Endpoint, Fail> {
    target
        .parse::<Endpoint>()
        .map_err(|err| Fail::usage(format!("TARGET {err}")))
}

/// Parses `NAME=VALUE` headers (usage errors name the bad one).
pub fn headers(raw: &[String]) -> Result<Vec<(String, String)>, Fail> {
    if raw.len() > MAX_HEADERS {
        return Err(Fail::usage(format!(
            "at most {MAX_HEADERS} headers, got {}",
            raw.len()
        )));
    }
    raw.iter()
        .map(|h| {
            let (name, value) = h
                .split_once('=')
                .ok_or_else(|| Fail::usage(format!("--header `{h}`: expected NAME=VALUE")))?;
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !name_ok {
                return Err(Fail::usage(format!(
                    "--header `{h}`: a name is letters, digits, `-`, `_` or `.`"
                )));
            }
            let value_ok = (1..=MAX_HEADER_VALUE).contains(&value.len())
                && value.bytes().all(|b| (0x20..0x7f).contains(&b));
            if !value_ok {
                return Err(Fail::usage(format!(
                    "--header `{h}`: a value is 1 to {MAX_HEADER_VALUE} printable ASCII characters"
                )));
            }
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

/// A connected target and the deadline of everything done with it.
pub struct Remote {
    target: Target,
    headers: Vec<(String, String)>,
    deadline: Instant,
    timeout: Duration,
}

impl Remote {
    /// Connects to `endpoint` (NATS: one connection; the others connect at
    /// the first call). Everything done with it must end within `timeout`
    /// of `started`.
    pub async fn connect(
        endpoint: &Endpoint,
        headers: Vec<(String, String)>,
        started: Instant,
        timeout: Duration,
    ) -> Result<Self, Fail> {
        let deadline = started
            .checked_add(timeout)
            .unwrap_or_else(|| transport::client::deadline_after(timeout));
        let upgrade: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| {
                k.eq_ignore_ascii_case(transport::headers::WORKLOAD)
                    || k.eq_ignore_ascii_case(transport::headers::NAMESPACE)
            })
            .cloned()
            .collect();
        let connector = Connector::new(CLIENT_NAME)
            .connect_headers(upgrade)
            .connect_timeout(deadline.saturating_duration_since(Instant::now()));
        let opts = CallOptions {
            timeout,
            idle_timeout: timeout,
        };
        let target = tokio::time::timeout_at(deadline, connector.target(endpoint, opts))
            .await
            .map_err(|_| {
                Fail::call(format!(
                    "cannot connect to {endpoint}: no answer within {timeout:?}"
                ))
            })?
            .map_err(|err| Fail::call(err.to_string()))?;
        Ok(Self {
            target,
            headers,
            deadline,
            timeout,
        })
    }

    /// Where calls go.
    pub fn endpoint(&self) -> &Endpoint {
        self.target.endpoint()
    }

    /// Calls `instance.func` with the encoded synchronous `params`, and
    /// returns the result bytes, checked against `results`. The error names
    /// the function as `` `instance.func` ``.
    pub async fn call(
        &self,
        instance: &str,
        func: &str,
        params: Bytes,
        results: &[WireType],
    ) -> Result<Vec<u8>, CallError> {
        let prepared = Prepared::answering(instance, func, results);
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let call = async {
            let call = Call::new(&prepared, params)
                .headers(&headers)
                .deadline(Deadline::At(self.deadline));
            let (tx, mut rx) = self.target.invoke(call).await?;
            drop(tx);
            let mut out = Vec::new();
            rx.read_to_end(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        match tokio::time::timeout_at(self.deadline, call).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(err)) => Err(CallError::of_io(prepared.name(), &self.target, err)),
            Err(_) => Err(CallError::new(
                prepared.name(),
                self.endpoint().clone(),
                CallErrorKind::Timeout(self.timeout),
                format!("no answer within {:?}", self.timeout),
            )),
        }
    }
}

/// The one line to print for a failed call: the reason alone when it is
/// about the target itself (nothing listens there, it is not wRPC), else
/// `` `instance.func` via TARGET: reason ``.
pub fn line(err: &CallError) -> String {
    if err.is_unusable() {
        err.reason().to_string()
    } else {
        format!("{} via {}: {}", err.function(), err.target(), err.reason())
    }
}
