//! The `?key=value&…` options of an endpoint URL: each key at most once,
//! each consumed by the parser of the scheme that knows it, so a key left
//! over is an error naming it.

use std::borrow::Cow;
use std::path::PathBuf;

use super::TlsFiles;
use crate::access::{Access, NamespaceSource};

/// `?key=value&…`, each key at most once, each consumed by the parser that knows it.
pub(super) struct Options(Vec<(String, String, bool)>);

impl Options {
    pub(super) fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut out: Vec<(String, String, bool)> = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k)?;
            let v = percent_decode(v)?;
            if out.iter().any(|(seen, _, _)| *seen == k) {
                return Err(format!("option `{k}` is given twice"));
            }
            out.push((k, v, false));
        }
        Ok(Self(out))
    }

    pub(super) fn take(&mut self, key: &str) -> Option<String> {
        self.0
            .iter_mut()
            .find(|(k, _, used)| k == key && !*used)
            .map(|(_, v, used)| {
                *used = true;
                v.clone()
            })
    }

    pub(super) fn take_path(&mut self, key: &str) -> Result<Option<PathBuf>, String> {
        match self.take(key) {
            Some(v) if v.is_empty() => Err(format!("option `{key}` needs a file path")),
            Some(v) => Ok(Some(PathBuf::from(v))),
            None => Ok(None),
        }
    }

    pub(super) fn take_tls(&mut self) -> Result<TlsFiles, String> {
        Ok(TlsFiles {
            ca_file: self.take_path("tls_ca")?,
            cert_file: self.take_path("tls_cert")?,
            key_file: self.take_path("tls_key")?,
        })
    }

    /// `tls=required` or any `tls_*` file: TLS with those files.
    pub(super) fn take_tls_option(&mut self) -> Result<Option<TlsFiles>, String> {
        let files = self.take_tls()?;
        match self.take("tls").as_deref() {
            None if files.is_empty() => Ok(None),
            None | Some("required" | "true" | "on" | "1") => Ok(Some(files)),
            Some(other) => Err(format!("option `tls={other}` must be `required`")),
        }
    }

    /// The listener options of [`crate::access`]; `verified` says whether
    /// the listener verifies client certificates (a client CA is given).
    pub(super) fn take_access(&mut self, scheme: &str, verified: bool) -> Result<Access, String> {
        let list = |v: String, key: &str| -> Result<Vec<String>, String> {
            let items: Vec<String> = v.split(',').map(str::to_string).collect();
            if items.iter().any(String::is_empty) {
                return Err(format!(
                    "option `{key}` needs a comma-separated list without empty items"
                ));
            }
            Ok(items)
        };
        let uid = |v: &str, key: &str| -> Result<u32, String> {
            v.parse()
                .map_err(|_| format!("option `{key}`: `{v}` is not a numeric uid"))
        };
        let mut access = Access::default();
        if let Some(v) = self.take("allow") {
            if !verified {
                return Err(match scheme {
                    "unix" => "`allow` names client certificates; a unix:// listener takes allow_uid=UID".into(),
                    "nats" => "`allow` does not apply to nats://: NATS permissions decide who may publish (docs/SECURITY.md)".into(),
                    _ => "`allow` names client certificates: it needs tls_ca=FILE (mutual TLS)".into(),
                });
            }
            access.allow_names = list(v, "allow")?;
        }
        if let Some(v) = self.take("allow_uid") {
            if scheme != "unix" {
                return Err("`allow_uid` applies to unix:// listeners only".into());
            }
            access.allow_uids = list(v, "allow_uid")?
                .iter()
                .map(|u| uid(u, "allow_uid"))
                .collect::<Result<_, _>>()?;
        }
        let mut sources = Vec::new();
        if let Some(ns) = self.take("namespace") {
            crate::caller::validate_identity("option `namespace`", &ns)
                .map_err(|e| e.to_string())?;
            sources.push(NamespaceSource::Fixed(ns));
        }
        match self.take("namespace_from").as_deref() {
            None => {}
            Some("headers") => sources.push(NamespaceSource::Headers),
            Some("cert") if verified => sources.push(NamespaceSource::Certificate),
            Some("cert") => {
                return Err("`namespace_from=cert` needs verified client certificates: tls_ca=FILE on a tcp:// or wss:// listener".into())
            }
            Some(other) => {
                return Err(format!("option `namespace_from={other}` must be `cert` or `headers`"))
            }
        }
        if let Some(v) = self.take("uid_namespace") {
            if scheme != "unix" {
                return Err("`uid_namespace` applies to unix:// listeners only".into());
            }
            let mut map = Vec::new();
            for pair in list(v, "uid_namespace")? {
                let (u, ns) = pair.split_once(':').ok_or_else(|| {
                    format!("option `uid_namespace`: `{pair}` is not UID:NAMESPACE")
                })?;
                crate::caller::validate_identity("option `uid_namespace`", ns)
                    .map_err(|e| e.to_string())?;
                map.push((uid(u, "uid_namespace")?, ns.to_string()));
            }
            sources.push(NamespaceSource::Uid(map));
        }
        if sources.len() > 1 {
            return Err("give one of namespace=, namespace_from= and uid_namespace=".into());
        }
        access.namespace = sources.pop().unwrap_or_default();
        Ok(access)
    }

    pub(super) fn take_pool(&mut self) -> Result<bool, String> {
        match self.take("pool").as_deref() {
            None | Some("on" | "true" | "1") => Ok(true),
            Some("off" | "false" | "0") => Ok(false),
            Some(other) => Err(format!("option `pool={other}` must be on or off")),
        }
    }

    pub(super) fn finish(self) -> Result<(), String> {
        match self.0.iter().find(|(_, _, used)| !used) {
            Some((k, _, _)) => Err(format!("unknown option `{k}` for this scheme")),
            None => Ok(()),
        }
    }
}

pub(super) fn percent_decode(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a `%` escape must be followed by two hex digits".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a `%` escape decodes to invalid UTF-8".to_string())
}

/// `raw` with the password or token of its userinfo and any secret option
/// value replaced by `***`, for error messages about input that did not parse.
pub(super) fn redact_raw(raw: &str) -> String {
    let (head, query) = match raw.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (raw, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, hosts)) => {
                    let shown = match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => "***".to_string(),
                    };
                    format!("{scheme}://{shown}@{hosts}{path}")
                }
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_option(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn is_secret_option(key: &str) -> bool {
    matches!(key, "token" | "password")
}

/// What the parser splits an option value at.
pub(crate) const QUERY: &[char] = &['&'];
/// What the parser splits a NATS user name at.
pub(super) const USER: &[char] = &[':', '/', '?', '@'];

/// `s` with `%` and the `special` characters percent-encoded, as the
/// parser decodes them: an endpoint prints as text that parses back to it.
pub(crate) fn escape<'a>(s: &'a str, special: &[char]) -> Cow<'a, str> {
    let escaped = |c: char| c == '%' || special.contains(&c);
    if !s.contains(escaped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if escaped(c) {
            out.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
