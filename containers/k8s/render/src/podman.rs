//! What a rendered manifest needs before `podman kube play` 4.3 runs it
//! (the measurements are in `containers/k8s/PODMAN-NOTES.md`).
//!
//! Podman 4.3 stores a `kind: Secret` document as YAML, but reads a
//! `secretKeyRef` from a Podman secret holding a JSON object of key →
//! base64 value, so a Secret in the manifest makes the play fail. And it
//! turns a `livenessProbe` into a shell healthcheck (`CMD-SHELL curl …`)
//! that cannot run in a scratch image and restarts the container once it
//! has failed three times (whenever systemd timers or `podman healthcheck
//! run` run it).

use anyhow::{anyhow, bail, Result};
use serde_yaml::{Mapping, Value};

use crate::{pod_spec_mut, to_yaml};

/// A manifest made playable by Podman 4.3, and the secrets to create first.
#[derive(Debug)]
pub struct Play {
    /// The manifest without Secrets and liveness probes.
    pub yaml: String,
    /// Each Secret: its name, and the JSON to create it from with
    /// `podman secret create NAME FILE` before playing (and to remove with
    /// `podman secret rm NAME` after: `podman kube down` leaves it).
    pub secrets: Vec<(String, String)>,
}

/// Takes the Secrets out of `docs` (returned as Podman secrets) and drops
/// every container's `livenessProbe`; everything else is kept.
///
/// # Errors
///
/// A Secret has no name, or a value that is not a string (base64 under
/// `data`).
pub fn prepare(docs: Vec<Value>) -> Result<Play> {
    let mut kept = Vec::with_capacity(docs.len());
    let mut secrets = Vec::new();
    for mut doc in docs {
        if doc.get("kind").and_then(Value::as_str) == Some("Secret") {
            secrets.push(secret_json(&doc)?);
            continue;
        }
        if let Some(pod) = pod_spec_mut(&mut doc) {
            drop_liveness_probes(pod);
        }
        kept.push(doc);
    }
    Ok(Play {
        yaml: to_yaml(&kept)?,
        secrets,
    })
}

fn drop_liveness_probes(pod: &mut Mapping) {
    for key in ["initContainers", "containers"] {
        if let Some(Value::Sequence(containers)) = pod.get_mut(key) {
            for container in containers.iter_mut().filter_map(Value::as_mapping_mut) {
                container.remove("livenessProbe");
            }
        }
    }
}

/// A Secret's name and its data as Podman 4.3's `secretKeyRef` reads it: a
/// JSON object of key → base64 of the value (`stringData` wins over `data`,
/// as in Kubernetes).
///
/// # Errors
///
/// The Secret has no name, or a value is not a string.
pub fn secret_json(secret: &Value) -> Result<(String, String)> {
    let name = secret
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("a Secret has no metadata.name"))?;
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut put = |key: &str, encoded: String| {
        entries.retain(|(k, _)| k != key);
        entries.push((key.to_owned(), encoded));
    };
    for (field, is_base64) in [("data", true), ("stringData", false)] {
        let Some(map) = secret.get(field).and_then(Value::as_mapping) else {
            continue;
        };
        for (key, value) in map {
            let (Some(key), Some(value)) = (key.as_str(), value.as_str()) else {
                bail!("Secret `{name}`: every {field} key and value must be a string");
            };
            let encoded = if is_base64 {
                value.to_owned()
            } else {
                base64(value.as_bytes())
            };
            put(key, encoded);
        }
    }
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
        .collect();
    Ok((name.to_owned(), format!("{{{}}}", body.join(","))))
}

/// Standard base64 with padding (what Go's `[]byte` JSON decoding wants).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_documents;

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"redis://:pw@h:6379"), "cmVkaXM6Ly86cHdAaDo2Mzc5");
    }

    #[test]
    fn secrets_become_podman_json_and_probes_go() {
        let docs = parse_documents(
            "\
kind: Secret
metadata: {name: creds}
data: {A: YQ==, B: Yg==}
stringData: {B: \"b\\\"2\", C: c}
---
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app
          livenessProbe: {httpGet: {path: /healthz, port: 9090}}
          readinessProbe: {httpGet: {path: /readyz, port: 9090}}
",
        )
        .unwrap();
        let play = prepare(docs).unwrap();
        assert_eq!(
            play.secrets,
            [(
                "creds".to_owned(),
                r#"{"A":"YQ==","B":"YiIy","C":"Yw=="}"#.to_owned()
            )]
        );
        assert!(!play.yaml.contains("Secret"));
        assert!(!play.yaml.contains("livenessProbe"));
        assert!(play.yaml.contains("readinessProbe"));
    }
}
