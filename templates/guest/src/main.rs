//! A guest component (a `wasi:cli/run` command) calling the inventory
//! extension through `example:inventory/stock`.
//!
//! The host routes the import over wRPC to the target named in
//! `workload.yaml`; to the code here it is a plain function call whose
//! `result` carries the interface's own error type (`stock-error`). A call
//! the transport cannot complete (no extension listening, a deadline passed)
//! traps the component instead: the host exits 1 with one line naming the
//! function and the target.
//!
//! Configuration arrives as environment variables (`config:` in the
//! workload): `ITEM` names the item to stock (default `apple`).

// Rust bindings for the `client` world of `wit/inventory.wit`: the
// `example:inventory/stock` functions, and its records and variants as Rust
// types.
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "client",
    });
}

use std::process::ExitCode;

use bindings::example::inventory::stock::{self, StockError};

fn main() -> ExitCode {
    let item = std::env::var("ITEM").unwrap_or_else(|_| "apple".into());
    match run(&item) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("inventory error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(item: &str) -> Result<(), StockError> {
    let on_hand = stock::restock(item, 10)?;
    println!("restocked {item}: {on_hand} on hand");

    let id = stock::reserve(item, 4)?;
    println!("reserved 4 {item} as #{id}");

    // An error the extension returns is a value to handle, like any other.
    match stock::reserve(item, 100) {
        Err(StockError::Insufficient(short)) => println!(
            "cannot reserve {} {}: {} free",
            short.requested, short.item, short.available
        ),
        other => println!("reserving 100 {item}: {other:?}"),
    }

    let it = stock::get(item)?;
    println!(
        "{}: {} on hand, {} reserved",
        it.name, it.on_hand, it.reserved
    );

    stock::release(id)?;
    println!("released #{id}");

    for it in stock::list() {
        println!(
            "in stock: {} ({} on hand, {} reserved)",
            it.name, it.on_hand, it.reserved
        );
    }
    Ok(())
}

/// One line for each way a stock operation can fail.
fn describe(err: &StockError) -> String {
    match err {
        StockError::UnknownItem(name) => format!("no item named {name}"),
        StockError::UnknownReservation(id) => format!("no reservation #{id}"),
        StockError::Insufficient(s) => {
            format!("{} {} requested, {} free", s.requested, s.item, s.available)
        }
        StockError::InvalidQuantity => "a quantity must be greater than zero".into(),
    }
}
