//! The inventory example extension (`extensions/inventory`, written with the
//! sdk's scaffold) serving `example:inventory/stock`, a user-defined
//! interface whose functions return typed errors: the host forwards it
//! generically, and each `stock-error` case reaches the guest as a value.

use std::time::Duration;

use e2e::{per_transport, serve, unserved_target, Transport, INVENTORY_GUEST};
use harness::workload::{Component, Workload};
use harness::{bin, Nats};

const RUN_LIMIT: Duration = Duration::from_secs(120);

per_transport!(inventory_roundtrip);

fn manifest(target: &str) -> Workload {
    Workload::new("shop")
        .namespace("tests")
        .component(Component::new("api", INVENTORY_GUEST).config("ITEM", "apple"))
        .route("example:inventory/stock", target, "timeout: 5s")
}

/// Every function over the wire against a fresh extension: successes, and
/// each error case (`insufficient` with its record, `unknown-item`,
/// `invalid-quantity`, `unknown-reservation`) as the value the guest matches
/// on. On any other answer the guest prints it to stderr and fails (the
/// host exits 1).
fn inventory_roundtrip(transport: Transport) {
    let served = serve(transport, &bin("inventory").unwrap(), &[]);
    let run = manifest(&served.target).run(&[], RUN_LIMIT).unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "on hand: 5",
            "reserved #1",
            "short: requested 3, available 2",
            "unknown item: pear",
            "invalid quantity",
            "released #1",
            "unknown reservation: 1",
            "apple: 5 on hand, 0 reserved",
        ],
        "{run:#?}"
    );
}

/// With no inventory extension listening, the guest's first call fails and
/// the host exits 1 with one line naming the function and the target: a
/// generic import has no error value for a transport failure (its
/// `stock-error` is the extension's, not the transport's), so the guest traps.
#[test]
fn inventory_extension_not_running() {
    let nats = Nats::start().unwrap();
    let target = unserved_target(Transport::Tcp, &nats);
    let run = manifest(&target).run(&[], RUN_LIMIT).unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(
        run.stderr.starts_with(&format!(
            "component `api` trapped: example:inventory/stock@0.1.0.restock: extension unreachable at {target}: "
        )) && run.stderr.lines().count() == 1,
        "{run:#?}"
    );
}
