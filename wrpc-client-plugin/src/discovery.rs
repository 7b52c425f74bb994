//! The start-up check that each `wrpc:` target serves what is declared for
//! it. Every sdk-built extension answers `INSTANCE.wrpc-ext:describe` for
//! each instance it serves (and `wrpc-ext:extension/discovery@0.1.0.describe`
//! in general), with a JSON description of itself. Asking per instance
//! means that over NATS, where extensions share a prefix, only an extension
//! serving the instance answers.

use transport::schema::WireType;
use transport::{discovery, CallErrorKind, Prepared, Target, TypedClient};

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
    let client = TypedClient::new(
        target.clone(),
        [Prepared::answering(instance, func, &[WireType::String])],
    );
    match client
        .call::<(), (String,)>(Vec::new(), instance, func, ())
        .await
    {
        Ok((json,)) => match parse(&json) {
            Ok(described) => Answer::Described(described),
            Err(why) => Answer::Failed(format!("its description is not valid: {why}")),
        },
        Err(err) => {
            let err = client.call_error(format!("`{instance}.{func}`"), &err);
            match err.kind() {
                CallErrorKind::Failed => Answer::Failed(err.reason().to_string()),
                _ => Answer::Unreachable(err.reason().to_string()),
            }
        }
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
