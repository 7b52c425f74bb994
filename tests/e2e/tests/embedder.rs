//! The example embedder (`host/examples/embed.rs`): the host as a library,
//! with a plugin of the embedder's own beside the built-in ones.

use std::time::Duration;

use e2e::{assert_success, CONFIG_GUEST, ECHO_GUEST};
use harness::example;
use harness::workload::{Component, Workload};

const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The embedder's plugin answers `example:echo/echo` in process (in upper
/// case); a built-in (`config`) serves beside it.
#[test]
fn the_example_embedder_serves_its_own_plugin_beside_the_builtins() {
    let embed = example("embed").unwrap();
    let run = Workload::new("embedded")
        .component(
            Component::new("app", ECHO_GUEST)
                .config("MESSAGE", "HI there")
                .config("COUNT", 2),
        )
        .host("example:echo/echo")
        .run_with(&embed, &[], RUN_LIMIT)
        .unwrap();
    assert_success(&run, "HI THERE #0\nHI THERE #1\n");

    let builtin = Workload::new("embedded")
        .component(Component::new("reader", CONFIG_GUEST).config("KEYS", "KEYS"))
        .host("wasi:config")
        .host("wasi:logging")
        .run_with(&embed, &[], RUN_LIMIT)
        .unwrap();
    assert_success(&builtin, "get KEYS: KEYS\nall: KEYS=KEYS\n");

    let unasked = Workload::new("embedded")
        .component(Component::new("app", ECHO_GUEST))
        .run_with(&embed, &[], RUN_LIMIT)
        .unwrap();
    assert_eq!(unasked.code, Some(1), "{unasked:#?}");
    assert!(
        unasked
            .stderr
            .contains("declare it under `host:` to serve it in process (plugin `shout`)"),
        "{unasked:#?}"
    );
}
