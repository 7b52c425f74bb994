//! Traps as the user reads them.

/// A trap as one line: its causes, without the wasm backtrace (logged at debug).
pub fn describe_trap(err: &wasmtime::Error) -> String {
    // Wasmtime attaches the backtrace as a context of its own, wherever
    // other contexts put it in the chain.
    let causes: Vec<String> = err
        .chain()
        .map(|c| c.to_string())
        .filter(|c| !c.contains("wasm backtrace:"))
        .collect();
    if causes.is_empty() {
        err.root_cause().to_string()
    } else {
        causes.join(": ")
    }
}
