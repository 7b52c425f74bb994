//! The start-up check that each `wrpc:` target serves what is declared for
//! it. Every sdk-built extension answers `INSTANCE.wrpc-ext:describe` for
//! each instance it serves (and `wrpc-ext:extension/discovery@0.1.0.describe`
//! in general), with a JSON description of itself. Asking per instance
//! means that over NATS, where extensions share a prefix, only an extension
//! serving the instance answers.

use core::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use transport::schema::{ScanPlan, WireType};
use transport::{discovery, Incoming, Invocation, Outgoing, Target};
use wrpc_transport::{Invoke, InvokeExt as _};

/// What an extension said it serves.
pub(crate) struct Described {
    /// The extension's name.
    pub(crate) name: String,
    /// The instances it serves.
    pub(crate) instances: Vec<String>,
}

/// How asking a target went.
pub(crate) enum Answer {
    /// It answered.
    Described(Described),
    /// Nothing answered (down, not started yet; over NATS also: nothing on
    /// the prefix serves it): calls will say so with their own deadlines.
    Unreachable(String),
    /// Something answered, but not with a description.
    Failed(String),
}

/// Asks `target` through `instance.func` what it serves, within the target's
/// deadline.
pub(crate) async fn ask(target: &Target, instance: &str, func: &str) -> Answer {
    let direct = Direct { target };
    let no_paths: [[Option<usize>; 0]; 0] = [];
    match direct
        .invoke_values_blocking::<_, (), (String,)>((), instance, func, (), no_paths)
        .await
    {
        Ok((json,)) => match parse(&json) {
            Ok(described) => Answer::Described(described),
            Err(why) => Answer::Failed(format!("its description is not valid: {why}")),
        },
        Err(err) if transport::call::failure_kind(&err).is_some() => {
            Answer::Unreachable(transport::call::failure_reason(&err))
        }
        Err(err) => Answer::Failed(transport::call::failure_reason(&err)),
    }
}

/// Asks `target` what it serves in general (for the error naming what it
/// serves instead).
pub(crate) async fn describe(target: &Target) -> Answer {
    ask(target, discovery::INSTANCE, discovery::DESCRIBE).await
}

fn parse(json: &str) -> Result<Described, String> {
    let doc = discovery::Document::parse(json)?;
    Ok(Described {
        instances: doc.instances().map(str::to_string).collect(),
        name: doc.name,
    })
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
