//! The start-up check that each `wrpc:` target serves what is declared for
//! it, asked through `wrpc-ext:extension/discovery@0.1.0.describe`.

use core::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, info};
use transport::schema::{ScanPlan, WireType};
use transport::{Incoming, Invocation, Outgoing, Target};
use wrpc_transport::Invoke;

use crate::{InterfaceName, SetupError};

#[allow(dead_code, clippy::all)]
mod bindings {
    wit_bindgen_wrpc::generate!({ world: "client", path: "../wit/extension" });
}

/// What an extension said it serves.
pub(crate) struct Described {
    /// The extension's name.
    pub(crate) name: String,
    /// The instances it serves.
    pub(crate) instances: Vec<String>,
}

/// How asking a target went.
pub(crate) enum Answer {
    /// It described itself.
    Described(Described),
    /// Nothing answered (down, not started yet, or nothing subscribed):
    /// calls will say so with their own deadlines.
    Unreachable(String),
    /// It answered, but not with a description.
    Failed(String),
}

/// Asks `target` what it serves, within the target's deadline.
pub(crate) async fn describe(target: &Target) -> Answer {
    let direct = Direct { target };
    match bindings::wrpc_ext::extension::discovery::describe(&direct, ()).await {
        Ok(json) => match parse(&json) {
            Ok(described) => Answer::Described(described),
            Err(why) => Answer::Failed(format!("its description is not valid: {why}")),
        },
        Err(err) if transport::call::failure_kind(&err).is_some() => {
            Answer::Unreachable(transport::call::failure_reason(&err))
        }
        Err(err) => Answer::Failed(transport::call::failure_reason(&err)),
    }
}

fn parse(json: &str) -> Result<Described, String> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let name = doc["name"].as_str().ok_or("no `name`")?.to_string();
    let instances = doc["interfaces"]
        .as_array()
        .ok_or("no `interfaces`")?
        .iter()
        .filter_map(|i| i["instance"].as_str().map(str::to_string))
        .collect();
    Ok(Described { name, instances })
}

/// Checks one declaration against its target's answer.
pub(crate) fn check(
    declared: &InterfaceName,
    wire: Option<&InterfaceName>,
    target: &Target,
    answer: &Answer,
) -> Result<(), SetupError> {
    let endpoint = target.endpoint().to_string();
    match answer {
        Answer::Described(described) => {
            let wanted = wire.unwrap_or(declared);
            if described.instances.iter().any(|i| wanted.matches(i)) {
                debug!(interface = %declared, target = endpoint, extension = described.name, "target serves the interface");
                Ok(())
            } else {
                Err(SetupError::NotServed {
                    interface: declared.to_string(),
                    target: endpoint,
                    extension: described.name.clone(),
                    served: if described.instances.is_empty() {
                        "nothing else".to_string()
                    } else {
                        described.instances.join(", ")
                    },
                })
            }
        }
        Answer::Unreachable(reason) => {
            info!(interface = %declared, target = endpoint, reason, "target not checked: nothing answered");
            Ok(())
        }
        Answer::Failed(reason) => Err(SetupError::NotDescribed {
            interface: declared.to_string(),
            target: endpoint,
            reason: reason.clone(),
        }),
    }
}

/// Calls a target directly, outside the routes (discovery is not declared).
struct Direct<'a> {
    target: &'a Target,
}

impl Invoke for Direct<'_> {
    type Context = ();
    type Outgoing = Outgoing;
    type Incoming = Incoming;

    async fn invoke<P>(
        &self,
        (): (),
        instance: &str,
        func: &str,
        params: Bytes,
        _paths: impl AsRef<[P]> + Send,
    ) -> anyhow::Result<(Outgoing, Incoming)>
    where
        P: AsRef<[Option<usize>]> + Send + Sync,
    {
        let timer = self.target.timer(
            Arc::from(format!("`{instance}.{func}`")),
            Duration::ZERO,
            None,
        );
        let call = self
            .target
            .client()
            .invoke(Invocation {
                instance,
                func,
                headers: &[],
                params,
                params_complete: true,
                results: Some(ScanPlan::new(&[WireType::String])),
                result_paths: Arc::from([]),
                timer,
            })
            .await?;
        Ok(call)
    }
}
