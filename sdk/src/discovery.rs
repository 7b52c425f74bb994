//! `wrpc-ext:extension/discovery@0.1.0`: every extension says what it serves,
//! over wRPC (`describe`) and at `GET /describe` on its HTTP endpoint.

use std::sync::Arc;

use ops::Description;
use transport::discovery::{Document, Interface};
use transport::schema::{Function, Type};

use crate::dispatch::{Functions, RegisterError};

pub use transport::discovery::{DESCRIBE, INSTANCE, PER_INSTANCE};

/// The document's parts known before the listeners are bound.
pub(crate) struct Served(Document);

impl Served {
    /// What `functions` serves (read before discovery is registered).
    pub(crate) fn of(name: &str, version: Option<&str>, functions: &Functions) -> Self {
        let registered = functions.registered();
        let interfaces = functions
            .exported()
            .into_iter()
            .map(|instance| {
                let served = registered
                    .iter()
                    .filter(|(i, _)| *i == instance)
                    .map(|(_, f)| (*f).to_string())
                    .collect();
                Interface::new(instance, served)
            })
            .collect();
        Self(Document {
            name: name.to_string(),
            version: version.map(str::to_string),
            sdk_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            interfaces,
            listeners: Vec::new(),
            wit: functions.wit().to_vec(),
        })
    }

    /// The whole document, once the listeners' addresses are known.
    pub(crate) fn document(&self, listeners: &[String]) -> String {
        Document {
            listeners: listeners.to_vec(),
            ..self.0.clone()
        }
        .to_json()
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
            Function::new(Vec::new(), vec![Type::String], false),
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
