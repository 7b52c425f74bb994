//! `wrpc-ext describe TARGET`: what an extension says it serves.

use serde_json::Value;
use tokio::time::Instant;
use transport::schema::json::Json;

use crate::remote::{self, Options, Remote};
use crate::wit_source;
use crate::Fail;

/// Members printed first, in this order; the rest follow, `wit` last.
const FIRST: [&str; 4] = ["name", "version", "interfaces", "listeners"];

/// Print what an extension says it serves.
///
/// Its name, version, interfaces and listeners, as it answers
/// `wrpc-ext:extension/discovery@0.1.0.describe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The extension: tcp://HOST:PORT, unix:///PATH, ws://HOST[:PORT][/PATH],
    /// wss://…, nats://HOST[:PORT][/PREFIX].
    target: String,

    /// Also print the WIT it serves (`wit`: packages of [file, contents]).
    #[arg(long)]
    wit: bool,

    #[command(flatten)]
    options: Options,
}

/// Runs `describe`.
pub async fn run(args: Args) -> Result<(), Fail> {
    let endpoint = remote::endpoint(&args.target)?;
    let headers = remote::headers(&args.options.headers)?;
    let remote = Remote::connect(&endpoint, headers, Instant::now(), args.options.timeout).await?;
    let text = wit_source::describe(&remote)
        .await
        .map_err(|err| err.fail(&endpoint, ""))?;
    let value: Value = serde_json::from_str(&text).map_err(|err| {
        Fail::call(format!(
            "{endpoint} described itself with invalid JSON ({err})"
        ))
    })?;
    args.options.print(&ordered(value, args.wit))
}

/// The description with its main members first, `wit` last (or left out).
fn ordered(value: Value, wit: bool) -> Json {
    let Value::Object(mut map) = value else {
        return value.into();
    };
    let mut members: Vec<(String, Json)> = FIRST
        .iter()
        .filter_map(|key| map.remove(*key).map(|v| (key.to_string(), v.into())))
        .collect();
    let wit_value = map.remove("wit");
    members.extend(map.into_iter().map(|(k, v)| (k, v.into())));
    if let (true, Some(v)) = (wit, wit_value) {
        members.push(("wit".into(), v.into()));
    }
    Json::Object(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_members_first_and_wit_on_request() {
        let value: Value = serde_json::from_str(
            r#"{"wit":[[["a.wit","package a:b;"]]],"zeta":1,"version":"0.1.0","name":"kv","interfaces":["a:b/c"]}"#,
        )
        .unwrap();
        let keys = |json: &Json| match json {
            Json::Object(members) => members.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            _ => panic!("not an object"),
        };
        assert_eq!(
            keys(&ordered(value.clone(), false)),
            ["name", "version", "interfaces", "zeta"]
        );
        assert_eq!(
            keys(&ordered(value, true)),
            ["name", "version", "interfaces", "zeta", "wit"]
        );
        assert_eq!(ordered(Value::Bool(true), false), Json::Bool(true));
    }
}
