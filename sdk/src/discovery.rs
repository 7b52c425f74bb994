//! `wrpc-ext:extension/discovery@0.1.0`: every extension says what it serves,
//! over wRPC (`describe`) and at `GET /describe` on its HTTP endpoint.

use std::sync::Arc;

use ops::Description;
use serde_json::json;
use transport::schema::{Signature, WireType};

use crate::dispatch::{Functions, RegisterError};

pub use transport::discovery::{DESCRIBE, INSTANCE, PER_INSTANCE};

/// The document's parts known before the listeners are bound.
pub(crate) struct Served {
    name: String,
    version: Option<String>,
    interfaces: Vec<serde_json::Value>,
    wit: Vec<Vec<(String, String)>>,
}

impl Served {
    /// What `functions` serves (read before discovery is registered).
    pub(crate) fn of(name: &str, version: Option<&str>, functions: &Functions) -> Self {
        let registered = functions.registered();
        let interfaces = functions
            .exported()
            .into_iter()
            .map(|instance| {
                let (path, version) = instance
                    .split_once('@')
                    .map_or((instance, None), |(p, v)| (p, Some(v)));
                let (package, interface) = path.split_once('/').unwrap_or((path, ""));
                let served: Vec<&str> = registered
                    .iter()
                    .filter(|(i, _)| *i == instance)
                    .map(|(_, f)| *f)
                    .collect();
                json!({
                    "instance": instance,
                    "package": package,
                    "interface": interface,
                    "version": version,
                    "functions": served,
                })
            })
            .collect();
        Self {
            name: name.to_string(),
            version: version.map(str::to_string),
            interfaces,
            wit: functions.wit().to_vec(),
        }
    }

    /// The whole document, once the listeners' addresses are known.
    pub(crate) fn document(&self, listeners: &[String]) -> String {
        json!({
            "name": self.name,
            "version": self.version,
            "sdk-version": env!("CARGO_PKG_VERSION"),
            "interfaces": self.interfaces,
            "listeners": listeners,
            "wit": self.wit,
        })
        .to_string()
    }
}

/// Serves `describe`, and [`PER_INSTANCE`] for every exported instance,
/// answering with `description` (set once the extension is listening).
pub(crate) fn register(
    functions: &mut Functions,
    description: &Description,
) -> Result<(), RegisterError> {
    functions.add_wit(&[wit::EXTENSION])?;
    let exported: Vec<String> = functions
        .exported()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut served = vec![(INSTANCE.to_string(), DESCRIBE)];
    for instance in exported {
        functions.add_signature(
            &instance,
            PER_INSTANCE,
            Signature {
                params: Vec::new(),
                results: vec![WireType::String],
            },
        );
        served.push((instance, PER_INSTANCE));
    }
    for (instance, func) in served {
        let description = Arc::clone(description);
        functions.serve(&instance, func, move |_cx, (): ()| {
            let document = description.get().cloned();
            async move {
                let document =
                    document.ok_or_else(|| anyhow::anyhow!("the extension is still starting"))?;
                Ok((document,))
            }
        })?;
    }
    Ok(())
}
