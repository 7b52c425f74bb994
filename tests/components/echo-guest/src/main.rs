//! Calls `example:echo/echo.echo` with each command-line-free `MESSAGE`
//! (component config) and prints the answers, one per line.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/echo",
        world: "client",
    });
}

fn main() {
    let message = std::env::var("MESSAGE").unwrap_or_else(|_| "hello".into());
    let count: usize = std::env::var("COUNT").ok().and_then(|c| c.parse().ok()).unwrap_or(1);
    for i in 0..count {
        let answer = bindings::example::echo::echo::echo(&format!("{message} #{i}"));
        println!("{answer}");
    }
}
