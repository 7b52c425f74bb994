//! The `http:` section: a workload's route on the host's HTTP listener, and
//! the limits of each request it handles.

use core::time::Duration;

use serde::de;
use serde::{Deserialize, Deserializer};

use super::entries::{component_name, Bounded, Parsed};

/// The default of `http.timeout`: how long one request may take to answer.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of `http.max_request_bytes`: the largest request body.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;

/// `http:`: requests on the host's HTTP listener that this workload answers,
/// with the component exporting `wasi:http/incoming-handler` (WASI 0.2) or
/// `wasi:http/handler` (WASI 0.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The component answering; needed only when several export a handler.
    pub component: Option<String>,
    /// The `Host` header values it answers (lower case, without a port; a
    /// leading `*.` matches any subdomain); empty for any host.
    pub hosts: Vec<String>,
    /// The path prefix it answers, on a segment boundary (`/api` takes
    /// `/api` and `/api/x`, not `/apix`); `/` for every path. The component
    /// sees the whole path.
    pub path: String,
    /// How long a request may take until the response starts.
    pub timeout: Duration,
    /// The largest request body; a larger declared length gets 413, a body
    /// growing past it is cut with an error the component sees.
    pub max_request_bytes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default, deserialize_with = "optional_component")]
    component: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    path: Option<String>,
    timeout: Option<Parsed<Bounded>>,
    max_request_bytes: Option<u64>,
}

fn optional_component<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    component_name(d).map(Some)
}

impl<'de> Deserialize<'de> for HttpRoute {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRoute::deserialize(d)?;
        let hosts = raw
            .hosts
            .into_iter()
            .map(|h| host_pattern(&h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(de::Error::custom)?;
        let path = match raw.path {
            None => "/".to_string(),
            Some(p) => path_prefix(&p).map_err(de::Error::custom)?,
        };
        let max_request_bytes = raw.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        Ok(Self {
            component: raw.component,
            hosts,
            path,
            timeout: raw.timeout.map_or(DEFAULT_HTTP_TIMEOUT, |t| t.0 .0),
            max_request_bytes,
        })
    }
}

/// A `hosts:` entry, checked and lower-cased.
fn host_pattern(written: &str) -> Result<String, String> {
    let host = written.trim().to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(host)
    } else {
        Err(format!(
            "`http.hosts`: `{written}` is not a host name (letters, digits, `-` and `.`, optionally after `*.`; no port)"
        ))
    }
}

/// A `path:` prefix, checked, without a trailing `/` (except `/` itself).
fn path_prefix(written: &str) -> Result<String, String> {
    if !written.starts_with('/') || written.contains(['?', '#', ' ']) {
        return Err(format!(
            "`http.path`: `{written}` must start with `/` and hold no `?`, `#` or space"
        ));
    }
    let trimmed = written.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

impl HttpRoute {
    /// Whether a request for `host` (lower case, port removed) and `path`
    /// falls on this route.
    pub fn matches(&self, host: Option<&str>, path: &str) -> bool {
        let host_ok = self.hosts.is_empty()
            || host.is_some_and(|h| {
                self.hosts.iter().any(|p| match p.strip_prefix("*.") {
                    Some(suffix) => h
                        .strip_suffix(suffix)
                        .is_some_and(|rest| rest.ends_with('.')),
                    None => p == h,
                })
            });
        host_ok && self.path_matches(path)
    }

    fn path_matches(&self, path: &str) -> bool {
        self.path == "/"
            || path
                .strip_prefix(&self.path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// How specific the route is, to pick the best of several that match:
    /// a named host before any host, then the longer path.
    pub fn specificity(&self) -> (bool, usize) {
        (!self.hosts.is_empty(), self.path.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(yaml: &str) -> Result<HttpRoute, serde_yaml::Error> {
        serde_yaml::from_str(yaml)
    }

    #[test]
    fn defaults_and_matching() {
        let r = route("{}").unwrap();
        assert_eq!(r.path, "/");
        assert_eq!(r.timeout, DEFAULT_HTTP_TIMEOUT);
        assert!(r.matches(None, "/anything"));

        let r = route("hosts: [Counter.Local, '*.apps.test']\npath: /api/").unwrap();
        assert_eq!(r.path, "/api");
        assert!(r.matches(Some("counter.local"), "/api"));
        assert!(r.matches(Some("x.apps.test"), "/api/v1"));
        assert!(
            !r.matches(Some("apps.test"), "/api"),
            "`*.` needs a subdomain"
        );
        assert!(
            !r.matches(Some("counter.local"), "/apix"),
            "segment boundary"
        );
        assert!(!r.matches(None, "/api"), "named hosts need a Host header");
    }

    #[test]
    fn bad_fields_are_named() {
        let err = route("hosts: ['a b']").unwrap_err().to_string();
        assert!(err.contains("`http.hosts`: `a b`"), "{err}");
        let err = route("hosts: ['h:80']").unwrap_err().to_string();
        assert!(err.contains("no port"), "{err}");
        let err = route("path: api").unwrap_err().to_string();
        assert!(err.contains("`http.path`"), "{err}");
        let err = route("timeout: 0s").unwrap_err().to_string();
        assert!(err.contains("`0s` must be greater than zero"), "{err}");
        let err = route("prefix: /").unwrap_err().to_string();
        assert!(err.contains("unknown field `prefix`"), "{err}");
    }
}
