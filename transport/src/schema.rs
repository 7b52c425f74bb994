//! The one model of WIT types and the one codec of wRPC values.
//!
//! - [`Type`]: WIT types with their member names, read from WIT by
//!   [`Signatures`] (one walk of `wit-parser`'s `Resolve`) or, in the host,
//!   from Wasmtime's component types.
//! - [`WireType`]: the shape derived from a [`Type`] ([`Type::wire`]): what
//!   the [`Scanner`] checks against the [`ValueLimits`] as bytes arrive,
//!   before anything is decoded.
//! - [`codec`]: one encoder and one decoder, for any face of values: the
//!   host's Wasmtime `Val`s (`val`, feature `wasmtime`), `wrpc-ext`'s JSON
//!   (`json`, feature `json`).
//!
//! The encodings are those of `wrpc-transport` 0.29 and `wit-bindgen-wrpc`
//! 0.11 (checked byte-exact against them in the tests), written down in
//! docs/WIRE.md. Nothing here allocates in proportion to a length read from
//! the wire before the bytes behind it have arrived.

pub mod codec;
#[cfg(feature = "json")]
pub mod json;
mod scanner;
mod types;
#[cfg(feature = "wasmtime")]
pub mod val;
mod wire;
mod wit;

pub use scanner::{ScanPlan, Scanner};
pub(crate) use types::flags_upstream_padding;
pub use types::{Enum, Flags, Record, Type, Variant};
pub use wire::{scan, type_at_path, Scanned, Signature, ValueError, ValueLimits, WireType};
pub use wit::{Function, Signatures, WitError};

#[cfg(test)]
mod fuzzed;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upstream;
