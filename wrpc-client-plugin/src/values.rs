//! Values between a guest's store and the wire: a component function's
//! types as they travel ([`function_of`]), what the generic path refuses
//! ([`refusal`]), and the futures and streams a call passes ([`send`],
//! [`receive`]), for routed imports and for served exports alike.

mod payload;
mod streams;

use transport::schema::val::type_of;
use transport::schema::{Function, Type};
use wasmtime::component::types::ComponentFunc;

pub use streams::{receive, send};

/// The [`Function`] of a component function: its parameter and result
/// types as they travel.
///
/// # Errors
///
/// A type wRPC cannot carry, named as WIT writes it.
pub fn function_of(func: &ComponentFunc) -> Result<Function, String> {
    let params = func
        .params()
        .map(|(name, ty)| Ok((name.to_string(), type_of(&ty)?)))
        .collect::<Result<_, String>>()?;
    let results = func
        .results()
        .map(|ty| type_of(&ty))
        .collect::<Result<_, _>>()?;
    Ok(Function::new(params, results, func.async_()))
}

/// Why a function cannot travel over wRPC through the host, if it cannot:
/// a resource handle, or a future or stream whose payload cannot be carried.
pub fn refusal(f: &Function) -> Option<String> {
    let types = || f.params.iter().map(|(_, t)| t).chain(&f.results);
    if let Some(handle) = types().find_map(Type::handle) {
        return Some(format!(
            "it passes a resource handle ({handle}); only resource-free interfaces are forwarded"
        ));
    }
    types().find_map(payload::unsupported).map(|ty| {
        format!(
            "it passes {ty}, whose payload Wasmtime's dynamic API cannot carry here (payloads: {})",
            payload::SUPPORTED
        )
    })
}
