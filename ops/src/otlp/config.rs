//! What the exporter is told: where spans go, over which protocol, with
//! which headers and which CA, from flags or the standard
//! `OTEL_EXPORTER_OTLP_*` variables.

use std::path::PathBuf;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

/// The exporter's flags, shared by the host and every extension; pull them
/// in with `#[command(flatten)]`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OtlpArgs {
    /// Send spans to this OpenTelemetry collector: `http[s]://HOST[:PORT][/PATH]` (off when unset; http:// without a port means 4318, or 4317 for grpc).
    #[arg(
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        global = true
    )]
    pub endpoint: Option<Endpoint>,

    /// How spans are sent: http/protobuf (POST ENDPOINT/v1/traces) or grpc.
    #[arg(
        long = "otlp-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        default_value_t,
        global = true
    )]
    pub protocol: Protocol,

    /// Headers sent with every export, e.g. for authentication: `KEY=VALUE[,KEY=VALUE…]`, values URL-encoded (`authorization=Bearer%20TOKEN`).
    #[arg(
        long = "otlp-headers",
        env = "OTEL_EXPORTER_OTLP_HEADERS",
        hide_env_values = true,
        global = true
    )]
    pub headers: Option<Headers>,

    /// PEM file of the CA certificates an https:// collector's certificate must chain to (default: the Mozilla roots).
    #[arg(
        long = "otlp-certificate",
        env = "OTEL_EXPORTER_OTLP_CERTIFICATE",
        global = true
    )]
    pub certificate: Option<Certificate>,
}

impl OtlpArgs {
    /// The exporter's configuration, or `None` without `--otlp-endpoint`.
    pub fn config(&self) -> Option<Config> {
        Some(Config {
            endpoint: self.endpoint.clone()?,
            protocol: self.protocol,
            headers: self.headers.clone().unwrap_or_default(),
            certificate: self.certificate.clone(),
        })
    }
}

/// Everything the exporter needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The collector.
    pub endpoint: Endpoint,
    /// OTLP/HTTP protobuf or gRPC.
    pub protocol: Protocol,
    /// Sent with every export.
    pub headers: Headers,
    /// The CA for an `https://` endpoint; the Mozilla roots when `None`.
    pub certificate: Option<Certificate>,
}

impl Config {
    /// Sends OTLP/HTTP protobuf to `endpoint`, without headers or own CA.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            protocol: Protocol::default(),
            headers: Headers::default(),
            certificate: None,
        }
    }
}

/// How spans travel (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies: `POST {endpoint}/v1/traces`.
    #[default]
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/gRPC: the collector's `TraceService/Export`.
    #[value(name = "grpc")]
    Grpc,
}

/// A value the exporter cannot use.
#[derive(Debug, thiserror::Error)]
#[error("{value:?}: {reason}")]
pub struct ConfigError {
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

fn fail(value: &str, reason: impl ToString) -> ConfigError {
    ConfigError {
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A collector's base URL: `http://` or `https://`, a host, an optional
/// port and path prefix.
#[derive(Clone, Debug)]
pub struct Endpoint {
    url: url::Url,
    /// Whether the port was written out (`url` hides a scheme's default).
    explicit_port: bool,
}

impl core::str::FromStr for Endpoint {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|e| fail(s, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(s, "not an http:// or https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(fail(s, "no host"));
        }
        let authority = s
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        let explicit_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        Ok(Self { url, explicit_port })
    }
}

impl Endpoint {
    /// Whether the collector is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The URL spans are sent to with `protocol`: `/v1/traces` under the
    /// base path for OTLP/HTTP, the base itself for gRPC. `http://`
    /// without a port means OTLP's usual port (4318, or 4317 for gRPC).
    pub fn target(&self, protocol: Protocol) -> String {
        let mut url = self.url.clone();
        if !self.explicit_port && !self.is_https() {
            let port = match protocol {
                Protocol::HttpProtobuf => 4318,
                Protocol::Grpc => 4317,
            };
            let _ = url.set_port(Some(port));
        }
        match protocol {
            Protocol::HttpProtobuf => {
                let base = url.path().trim_end_matches('/').to_string();
                url.set_path(&format!("{base}/v1/traces"));
                url.to_string()
            }
            Protocol::Grpc => url.to_string().trim_end_matches('/').to_string(),
        }
    }
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Headers sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`:
/// `KEY=VALUE` pairs separated by commas, values URL-encoded). Shown by
/// name only: values are often secrets.
#[derive(Clone, Default)]
pub struct Headers(pub http::HeaderMap);

impl core::str::FromStr for Headers {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut map = http::HeaderMap::new();
        for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| fail(s, "expected KEY=VALUE pairs separated by commas"))?;
            let name = http::HeaderName::from_bytes(key.trim().as_bytes())
                .map_err(|e| fail(key, format!("not a header name: {e}")))?;
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|e| fail(key, format!("value not UTF-8 once decoded: {e}")))?;
            let value = http::HeaderValue::from_str(&value)
                .map_err(|e| fail(key, format!("not a header value: {e}")))?;
            map.append(name, value);
        }
        Ok(Self(map))
    }
}

impl core::fmt::Debug for Headers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// CA certificates read from a PEM file (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
#[derive(Clone)]
pub struct Certificate {
    path: PathBuf,
    pem: Vec<u8>,
    certificates: Vec<CertificateDer<'static>>,
}

impl core::str::FromStr for Certificate {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let pem = std::fs::read(s).map_err(|e| fail(s, e))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(s, format!("not PEM: {e}")))?;
        if certificates.is_empty() {
            return Err(fail(s, "no CERTIFICATE in the file"));
        }
        Ok(Self {
            path: s.into(),
            pem,
            certificates,
        })
    }
}

impl Certificate {
    /// The file's PEM text.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// The certificates in it.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Certificate({})", self.path.display())
    }
}
