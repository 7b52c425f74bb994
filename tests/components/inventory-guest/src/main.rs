//! Calls every function of `example:inventory/stock` against a freshly
//! started inventory extension and checks each answer, the typed errors
//! (`stock-error`) included. `ITEM` (component config; default `apple`) names
//! the item stocked. Prints, one per line:
//!
//! ```text
//! on hand: 5
//! reserved #ID
//! short: requested 3, available 2
//! unknown item: pear
//! invalid quantity
//! released #ID
//! unknown reservation: ID
//! ITEM: 5 on hand, 0 reserved
//! ```
//!
//! Any other answer is printed to stderr and the guest exits with code 3,
//! which reaches the host as a failure: `wasi:cli/exit@0.2` carries only
//! success or failure, so the host exits 1.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/inventory",
        world: "client",
    });
}

use std::fmt::Debug;
use std::process::exit;

use bindings::example::inventory::stock::{
    get, list, release, reserve, restock, Item, Shortage, StockError,
};

/// Reports an unexpected answer to `call` and exits with code 3.
fn unexpected(call: &str, got: impl Debug) -> ! {
    eprintln!("unexpected answer to {call}: {got:?}");
    exit(3)
}

fn main() {
    let item = std::env::var("ITEM").unwrap_or_else(|_| "apple".into());

    match restock(&item, 5) {
        Ok(5) => println!("on hand: 5"),
        other => unexpected(&format!("restock({item:?}, 5)"), other),
    }

    let id = match reserve(&item, 3) {
        Ok(id) => id,
        other => unexpected(&format!("reserve({item:?}, 3)"), other),
    };
    println!("reserved #{id}");

    match reserve(&item, 3) {
        Err(StockError::Insufficient(Shortage {
            item: short,
            requested: 3,
            available: 2,
        })) if short == item => println!("short: requested 3, available 2"),
        other => unexpected(&format!("a second reserve({item:?}, 3)"), other),
    }

    match get("pear") {
        Err(StockError::UnknownItem(name)) if name == "pear" => println!("unknown item: {name}"),
        other => unexpected("get(\"pear\")", other),
    }

    match reserve(&item, 0) {
        Err(StockError::InvalidQuantity) => println!("invalid quantity"),
        other => unexpected(&format!("reserve({item:?}, 0)"), other),
    }

    match release(id) {
        Ok(()) => println!("released #{id}"),
        other => unexpected(&format!("release({id})"), other),
    }

    match release(id) {
        Err(StockError::UnknownReservation(gone)) if gone == id => {
            println!("unknown reservation: {gone}")
        }
        other => unexpected(&format!("a second release({id})"), other),
    }

    let stocked = |i: &Item| i.name == item && i.on_hand == 5 && i.reserved == 0;
    match get(&item) {
        Ok(i) if stocked(&i) => {
            println!("{}: {} on hand, {} reserved", i.name, i.on_hand, i.reserved)
        }
        other => unexpected(&format!("get({item:?})"), other),
    }

    // `list` is checked, not printed: the one item stocked, as `get` saw it.
    match list().as_slice() {
        [only] if stocked(only) => {}
        other => unexpected("list()", other),
    }
}
