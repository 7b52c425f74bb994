//! The one encoder and the one decoder of wRPC values, for any face.
//!
//! A face is how a program holds values: Wasmtime's `Val` in the host,
//! JSON in `wrpc-ext` ([`json`](super::json), behind the `json` feature).
//! It implements [`Source`] to be encoded and [`Sink`] to be decoded into;
//! the byte layout lives only here (and is written down in docs/WIRE.md):
//!
//! - `bool`, `u8`, `s8`: one byte; other integers LEB128 (signed ones
//!   sign-extended, shortest form written, up to the width's bytes read);
//!   floats little-endian; `char` its UTF-8;
//! - `string`, `list<u8>`, handles: a LEB128 `u32` length, then the bytes;
//!   other lists a LEB128 `u32` count, then the elements;
//! - fixed-length lists, tuples and records: their members back to back;
//! - `option`, `result`: a tag byte (0 none/ok, 1 some/err), then the
//!   payload; variants and enums: a LEB128 `u32` case index, then the
//!   payload; flags: `ceil(n / 8)` bytes, flag `i` at bit `i % 8` of byte
//!   `i / 8`;
//! - `future<T>`: tag 0 (pending: the value follows on the future's path)
//!   or 1 then the value; `stream<T>`: a `list<T>`, non-empty for the whole
//!   stream, empty when pending (chunks, each a `list<T>`, follow on the
//!   stream's path until an empty one).
//!
//! Paths of async values: the index of the parameter or result, then one
//! index per enclosing tuple, record field, list or stream element;
//! `option`, `result` and variant payloads add none.

mod decode;
mod encode;
mod value;

use core::fmt;

pub use decode::{decode_chunk, decode_tuple, decode_value, Check, Chunk, Decoded, Sink};
pub use encode::{encode_tuple, encode_value, Deferred, Source, View};
pub use value::{ToValue, Value};

use super::ValueError;

/// One step into a value, for messages: an element, or a named member
/// (record field, variant case, `ok`/`err`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A list, fixed-length list or tuple element, or a parameter.
    Index(usize),
    /// A record field, a variant case, `ok` or `err`.
    Name(String),
}

/// Why a value could not be encoded, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError {
    path: Vec<Step>,
    message: String,
}

impl EncodeError {
    /// An error at the value itself.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// The same error one step further out.
    #[must_use]
    pub fn within(mut self, step: Step) -> Self {
        self.path.insert(0, step);
        self
    }

    /// Where in the value: the steps from its root.
    pub fn path(&self) -> &[Step] {
        &self.path
    }

    /// What is wrong, without where.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// `[3].qty: expected u32, got -1`, or only the message at the root.
impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.path.iter().enumerate() {
            match step {
                Step::Index(n) => write!(f, "[{n}]")?,
                Step::Name(name) if i == 0 => f.write_str(name)?,
                Step::Name(name) => write!(f, ".{name}")?,
            }
        }
        if !self.path.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for EncodeError {}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the value does.
    #[error("the value ends early")]
    Incomplete,
    /// The bytes are not a value of the type.
    #[error(transparent)]
    Invalid(#[from] ValueError),
    /// The face cannot hold the value (its message says why).
    #[error("{0}")]
    Refused(String),
}

#[cfg(test)]
mod tests;
