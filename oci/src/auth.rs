//! Registry credentials: given, from the environment, or from the standard
//! docker config file.
//!
//! Credential helpers (`credsStore`, `credHelpers`) and identity tokens are
//! not supported: an entry that only a helper could answer is skipped with a
//! warning, and the pull goes on anonymously.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::Error;

/// The user name variable read by [`Credentials::Auto`].
pub const ENV_USERNAME: &str = "OCI_USERNAME";
/// The password variable read by [`Credentials::Auto`].
pub const ENV_PASSWORD: &str = "OCI_PASSWORD";

/// Where the credentials for a registry come from.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// In order: `OCI_USERNAME`/`OCI_PASSWORD` (for every registry), then the
    /// registry's entry in `$DOCKER_CONFIG/config.json` (or
    /// `~/.docker/config.json`), else anonymous.
    #[default]
    Auto,
    /// Only the registry's entry in this `config.json` file, else anonymous.
    DockerConfig(PathBuf),
    /// This user name and password, for every registry.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// No credentials.
    Anonymous,
}

/// Credentials resolved for one registry, and a description of their source
/// (named in 401/403 errors).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub auth: RegistryAuth,
    pub source: String,
}

impl Resolved {
    fn anonymous() -> Self {
        Self {
            auth: RegistryAuth::Anonymous,
            source: "none".into(),
        }
    }
}

impl Credentials {
    /// The credentials for `registry` (`host[:port]`).
    pub(crate) fn resolve(&self, registry: &str) -> Result<Resolved, Error> {
        match self {
            Credentials::Anonymous => Ok(Resolved::anonymous()),
            Credentials::Basic { username, password } => Ok(Resolved {
                auth: RegistryAuth::Basic(username.clone(), password.clone()),
                source: "given by the caller".into(),
            }),
            Credentials::DockerConfig(path) => from_docker_config(path, registry),
            Credentials::Auto => {
                if let Some(resolved) = from_env()? {
                    return Ok(resolved);
                }
                match docker_config_path() {
                    Some(path) if path.exists() => from_docker_config(&path, registry),
                    _ => Ok(Resolved::anonymous()),
                }
            }
        }
    }
}

fn from_env() -> Result<Option<Resolved>, Error> {
    let username = std::env::var(ENV_USERNAME).ok();
    let password = std::env::var(ENV_PASSWORD).ok();
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(Resolved {
            auth: RegistryAuth::Basic(username, password),
            source: format!("{ENV_USERNAME}/{ENV_PASSWORD}"),
        })),
        (None, None) => Ok(None),
        _ => Err(Error::Credentials {
            source_name: format!("{ENV_USERNAME}/{ENV_PASSWORD}"),
            reason: "only one of the two is set".into(),
        }),
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The `host[:port]` an `auths` key names: keys may carry a scheme and a
/// path (`https://index.docker.io/v1/`).
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Whether an `auths` key is for `registry` (Docker Hub has three names).
fn key_matches(key: &str, registry: &str) -> bool {
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    let host = key_host(key);
    host.eq_ignore_ascii_case(registry) || (hub(host) && hub(registry))
}

fn from_docker_config(path: &Path, registry: &str) -> Result<Resolved, Error> {
    let invalid = |reason: String| Error::Credentials {
        source_name: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let config: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| key_matches(key, registry));
    let Some((_, entry)) = entry else {
        let helper = config
            .cred_helpers
            .iter()
            .find(|(key, _)| key_matches(key, registry))
            .map(|(_, helper)| helper)
            .or(config.creds_store.as_ref());
        if let Some(helper) = helper {
            tracing::warn!(
                registry,
                helper,
                config = %path.display(),
                "credential helpers are not supported; pulling anonymously"
            );
        }
        return Ok(Resolved::anonymous());
    };
    let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| invalid(format!("`auth` for {registry} is not base64: {e}")))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| invalid(format!("`auth` for {registry} is not UTF-8")))?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| invalid(format!("`auth` for {registry} is not `user:password`")))?;
            (user.to_string(), pass.to_string())
        }
        (_, Some(user), Some(pass)) => (user.clone(), pass.clone()),
        _ => return Ok(Resolved::anonymous()),
    };
    Ok(Resolved {
        auth: RegistryAuth::Basic(username, password),
        source: path.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, json: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        path
    }

    fn basic(r: &Resolved) -> Option<(&str, &str)> {
        match &r.auth {
            RegistryAuth::Basic(u, p) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn auth_field_and_username_password_and_hub_names_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            r#"{"auths": {
                "http://127.0.0.1:5000/v2/": {"auth": "YWxpY2U6czNjcmV0"},
                "reg.example": {"username": "bob", "password": "pw"},
                "https://index.docker.io/v1/": {"auth": "aHViOmh1Yg=="}
            }}"#,
        );
        let config = Credentials::DockerConfig(path);
        let r = config.resolve("127.0.0.1:5000").unwrap();
        assert_eq!(basic(&r), Some(("alice", "s3cret")));
        assert_eq!(
            basic(&config.resolve("reg.example").unwrap()),
            Some(("bob", "pw"))
        );
        assert_eq!(
            basic(&config.resolve("docker.io").unwrap()),
            Some(("hub", "hub"))
        );
        assert_eq!(basic(&config.resolve("other:1").unwrap()), None);
    }

    #[test]
    fn malformed_auth_is_a_credentials_error_and_helpers_fall_back_to_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), r#"{"auths": {"r.example": {"auth": "!!"}}}"#);
        let err = Credentials::DockerConfig(path)
            .resolve("r.example")
            .unwrap_err();
        assert!(matches!(err, Error::Credentials { .. }), "{err}");
        let path = write(dir.path(), r#"{"credsStore": "desktop"}"#);
        let r = Credentials::DockerConfig(path)
            .resolve("r.example")
            .unwrap();
        assert_eq!(r.source, "none");
    }
}
