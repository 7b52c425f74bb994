//! Exports `example:echo/echo` by calling the `example:echo/echo` it
//! imports: answers `relay: ANSWER`. Two relays importing each other make
//! a cycle; a relay in front of `echo-service` shows a served export whose
//! component calls another in process.

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit/echo", "wit"],
        world: "test:echo-relay/relay",
        generate_all,
    });
}

use bindings::example::echo::echo::echo;
use bindings::exports::example::echo::echo::Guest;

struct Relay;

impl Guest for Relay {
    fn echo(message: String) -> String {
        format!("relay: {}", echo(&message))
    }
}

bindings::export!(Relay with_types_in bindings);
