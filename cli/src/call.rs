//! `wrpc-ext call TARGET INSTANCE.FUNC [ARG ...]`: one call, arguments as
//! JSON or WIT values, results as JSON (see `transport::schema::json` for
//! the forms each WIT type takes).

use std::path::PathBuf;

use tokio::time::Instant;
use transport::schema::codec::DecodeError;
use transport::schema::json::{self, Json};
use transport::schema::Function;
use transport::Limits;

use crate::remote::{self, Options, Remote};
use crate::wit_source::{self, Catalog};
use crate::Fail;

/// Call one function of an extension: arguments as JSON or WIT values,
/// results as JSON.
///
/// Each ARG is a JSON value for the parameter in its position: numbers,
/// `true`, `"text"`, `[…]` for lists and tuples, `null` for `none`,
/// `{"ok": v}`/`{"err": v}` for results, `{"field": v}` for records,
/// `{"case": v}` or `"case"` for variants, `"case"` for enums, `["flag"]`
/// for flags. A `string` or `list<u8>` parameter also takes a bare word;
/// `list<u8>` takes a string (its UTF-8), an array of bytes or
/// `{"base64": "…"}`, and prints as a string when its bytes are UTF-8.
///
/// An ARG that is not JSON of that form is read as a WIT value: `'c'`, `"\u{78}"`,
/// `(1, "a")`, `{field: v}` (option fields may be left out), `case(v)`,
/// `some(v)`/`none`, `ok(v)`/`err`, `nan`, `inf`, `{flag-a, flag-b}`.
///
/// The result prints as its JSON value; a function without results prints
/// nothing.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// The extension: tcp://HOST:PORT, unix:///PATH, ws://HOST[:PORT][/PATH],
    /// wss://…, nats://HOST[:PORT][/PREFIX].
    target: String,

    /// The function, e.g. wrpc:keyvalue/store@0.2.0-draft.get.
    #[arg(value_name = "INSTANCE.FUNC")]
    function: String,

    /// One value per parameter: JSON, a WIT value, or a bare word for text.
    #[arg(value_name = "ARG")]
    args: Vec<String>,

    /// WIT of the interface: a .wit file, or a directory (a package, with
    /// its dependencies in deps/). Repeatable, dependencies first. Without
    /// it, the target is asked to describe itself.
    #[arg(long, value_name = "PATH")]
    wit: Vec<PathBuf>,

    #[command(flatten)]
    options: Options,
}

/// A call ready to go: where, what, and the encoded parameters.
struct Prepared<'a> {
    instance: &'a str,
    func: &'a str,
    function: &'a Function,
    params: Vec<u8>,
}

/// Runs `call`.
pub async fn run(args: Args) -> Result<(), Fail> {
    let endpoint = remote::endpoint(&args.target)?;
    let headers = remote::headers(&args.options.headers)?;
    // With WIT at hand, usage errors come before any connection.
    let local = if args.wit.is_empty() {
        None
    } else {
        Some(Catalog::from_paths(&args.wit).map_err(Fail::usage)?)
    };
    let prepared = local
        .as_ref()
        .map(|catalog| prepare(catalog, &args))
        .transpose()?;
    let remote = Remote::connect(&endpoint, headers, Instant::now(), args.options.timeout).await?;
    let fetched;
    let call = match prepared {
        Some(call) => call,
        None => {
            // A function name has no `.`: the instance is what comes before
            // the last one (checked against the WIT once it is here).
            let instance = args.function.rsplit_once('.').map(|(i, _)| i);
            fetched = wit_source::fetch_signatures(&remote, instance).await?;
            prepare(&fetched, &args)?
        }
    };
    let Prepared {
        instance,
        func,
        function,
        params,
    } = call;
    let bytes = remote
        .call(instance, func, params.into(), &function.signature().results)
        .await
        .map_err(|err| Fail::call(remote::line(&err)))?;
    let values =
        json::decode_all(&function.results, &bytes, &Limits::DEFAULT.value()).map_err(|err| {
            let why = if matches!(err, DecodeError::Incomplete) {
                "incomplete results (the call ended early)".to_string()
            } else {
                format!("results not understood: {err}")
            };
            Fail::call(format!(
                "`{instance}.{func}` via {}: {why}",
                remote.endpoint()
            ))
        })?;
    // WIT gives a function at most one result.
    match values.as_slice() {
        [] => Ok(()),
        [value] => args.options.print(value),
        _ => {
            let members = values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect();
            args.options.print(&Json::Object(members))
        }
    }
}

/// Finds the function and encodes the arguments: usage errors name the
/// function, the parameter and where in its value.
fn prepare<'a>(catalog: &'a Catalog, args: &Args) -> Result<Prepared<'a>, Fail> {
    let (instance, func, function) = catalog.lookup(&args.function).map_err(Fail::usage)?;
    let param = |i: usize, name: &str| format!("parameter {} ({name})", i + 1);
    for (i, (name, ty)) in function.params.iter().enumerate() {
        if let Some(what) = json::first_unsupported(ty) {
            return Err(Fail::usage(format!(
                "`{instance}.{func}` {}: {}",
                param(i, name),
                json::unsupported(&what)
            )));
        }
    }
    for (i, ty) in function.results.iter().enumerate() {
        if let Some(what) = json::first_unsupported(ty) {
            return Err(Fail::usage(format!(
                "`{instance}.{func}` result {}: {}",
                i + 1,
                json::unsupported(&what)
            )));
        }
    }
    if args.args.len() != function.params.len() {
        let expected: Vec<String> = function
            .params
            .iter()
            .map(|(name, ty)| format!("{name}: {ty}"))
            .collect();
        return Err(Fail::usage(format!(
            "`{instance}.{func}` takes {} argument{} ({}), got {}",
            expected.len(),
            if expected.len() == 1 { "" } else { "s" },
            expected.join(", "),
            args.args.len()
        )));
    }
    let mut params = Vec::new();
    for (i, ((name, ty), arg)) in function.params.iter().zip(&args.args).enumerate() {
        json::encode_arg(ty, arg, &mut params)
            .map_err(|err| Fail::usage(format!("{}: {err}", param(i, name))))?;
    }
    Ok(Prepared {
        instance,
        func,
        function,
        params,
    })
}
