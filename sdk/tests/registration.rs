//! Registration from WIT: the generated registration covers every function
//! of an exported interface, and an extension whose exported interface has
//! a function without a handler does not start.

use bytes::Bytes;
use clap::Parser as _;
use sdk::messaging::{consumer, BrokerMessage};
use sdk::{CallerContext, Exports, Extension, Functions, RegisterError, ServeArgs, ServeError};

const STORE: &str = "wrpc:keyvalue/store@0.2.0-draft";

#[derive(Clone)]
struct Consumer;

impl consumer::Handler<CallerContext> for Consumer {
    async fn publish(
        &self,
        _cx: CallerContext,
        _msg: BrokerMessage,
    ) -> anyhow::Result<Result<(), String>> {
        Ok(Ok(()))
    }

    async fn request(
        &self,
        _cx: CallerContext,
        subject: String,
        body: Bytes,
        _timeout_ms: u32,
    ) -> anyhow::Result<Result<BrokerMessage, String>> {
        Ok(Ok(BrokerMessage {
            subject,
            body,
            reply_to: None,
        }))
    }
}

/// Every function of `instance` in the WIT, and whether each is registered.
fn coverage<'a>(functions: &'a Functions, instance: &'a str) -> Vec<(&'a str, bool)> {
    let registered = functions.registered();
    functions
        .signatures()
        .functions(instance)
        .map(|(func, _)| (func, registered.contains(&(instance, func))))
        .collect()
}

#[test]
fn generated_registration_serves_every_exported_function() {
    let mut functions = Functions::new();
    sdk::messaging::serve(Consumer)
        .register(&mut functions)
        .unwrap();
    assert_eq!(
        coverage(&functions, sdk::messaging::CONSUMER),
        [("publish", true), ("request", true)]
    );
    // The imported handler interface is typed by the WIT but not served.
    assert_eq!(
        coverage(&functions, sdk::messaging::HANDLER),
        [("handle-message", false)]
    );
    assert_eq!(functions.exported(), [sdk::messaging::CONSUMER]);
    functions.check_complete().unwrap();
}

/// Registers the key-value WIT and exports `store`, but serves only `get`.
struct GetOnly;

impl Exports for GetOnly {
    fn register(&self, functions: &mut Functions) -> Result<(), RegisterError> {
        functions.add_wit(&[wit::WRPC_KEYVALUE])?;
        functions.export(&[STORE])?;
        functions.serve(
            STORE,
            "get",
            |_cx, (_bucket, _key): (String, String)| async {
                Ok((Ok::<Option<Bytes>, String>(None),))
            },
        )
    }
}

#[tokio::test]
async fn an_exported_function_without_a_handler_stops_the_start() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let cli = Cli::parse_from([
        "get-only",
        "--listen",
        "tcp://127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let Err(err) = Extension::new("get-only", cli.serve).start(GetOnly).await else {
        panic!("an extension missing four functions of an exported interface started");
    };
    let ServeError::Register(RegisterError::Missing {
        instance,
        functions,
    }) = &err
    else {
        panic!("unexpected error: {err:?}");
    };
    assert_eq!(instance, STORE);
    assert_eq!(functions, &["delete", "exists", "list-keys", "set"]);
    assert_eq!(
        err.to_string(),
        "`wrpc:keyvalue/store@0.2.0-draft` is exported but these functions are not registered: \
         delete, exists, list-keys, set"
    );
}

#[test]
fn exporting_an_instance_the_wit_lacks_is_refused() {
    let mut functions = Functions::new();
    functions.add_wit(&[wit::WRPC_KEYVALUE]).unwrap();
    let err = functions
        .export(&["wrpc:keyvalue/store@9.9.9"])
        .unwrap_err();
    assert!(
        matches!(&err, RegisterError::UnknownInstance(i) if i == "wrpc:keyvalue/store@9.9.9"),
        "{err:?}"
    );
}
