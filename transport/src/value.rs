//! A call's synchronous value, checked by the scanner before any of it
//! reaches a decoder.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::schema::{ScanPlan, Scanner};
use crate::Limits;

/// The synchronous value of a call, checked by the scanner before any of it
/// reaches a decoder.
pub(crate) struct RootValue {
    scanner: Option<Scanner>,
    done: bool,
    /// The value has no parts (a function without results): it is complete
    /// at once, and only the end of the call says the callee ran.
    nothing: bool,
    held: BytesMut,
    max: usize,
    /// Zero bytes still accepted after the value: a `wit-bindgen-wrpc` 0.11
    /// peer writes flags of 17–24 or 33–56 members wider than it reads them
    /// (see `Flags::upstream_padding`); such a value may end with them.
    padding: usize,
}

impl RootValue {
    pub(crate) fn new(plan: Option<Arc<ScanPlan>>, limits: &Limits) -> Self {
        let done = plan.as_ref().is_some_and(|p| p.is_empty());
        Self {
            scanner: plan
                .filter(|p| !p.is_empty())
                .map(|p| Scanner::with_plan(p, limits.value())),
            done,
            nothing: done,
            held: BytesMut::new(),
            max: limits.max_frame as usize,
            padding: 0,
        }
    }

    /// Takes the next bytes of the value; returns what may be passed on.
    pub(crate) fn push(&mut self, bytes: Bytes) -> Result<Option<Bytes>, String> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let Some(scanner) = &mut self.scanner else {
            if self.done {
                return Err("data after the synchronous value".into());
            }
            return Ok(Some(bytes));
        };
        if self.done {
            return self.pad(&bytes).map(|()| None);
        }
        if self.held.len() + bytes.len() > self.max {
            return Err(format!(
                "the synchronous value exceeds the max-frame limit of {} bytes",
                self.max
            ));
        }
        let fed = scanner.feed(&bytes).map_err(|e| e.to_string())?;
        let trailing = scanner.trailing_padding();
        match fed {
            None => {
                self.held.extend_from_slice(&bytes);
                Ok(None)
            }
            Some(n) => {
                self.done = true;
                self.padding = trailing;
                self.pad(&bytes[n..])?;
                let value = bytes.slice(..n);
                if self.held.is_empty() {
                    Ok(Some(value))
                } else {
                    self.held.extend_from_slice(&value);
                    Ok(Some(core::mem::take(&mut self.held).freeze()))
                }
            }
        }
    }

    /// Takes bytes after the complete value: only the padding a
    /// `wit-bindgen-wrpc` peer may write after flags, which is dropped.
    fn pad(&mut self, rest: &[u8]) -> Result<(), String> {
        if rest.len() <= self.padding && rest.iter().all(|b| *b == 0) {
            self.padding -= rest.len();
            return Ok(());
        }
        Err("data after the synchronous value".into())
    }

    pub(crate) fn complete(&self) -> bool {
        self.done
    }

    /// Whether the value has no parts (see `nothing`): a caller reading it
    /// waits for the end of the call rather than for bytes.
    pub(crate) fn expects_nothing(&self) -> bool {
        self.nothing
    }
}

impl RootValue {
    /// A value that is already complete (nothing may follow).
    pub(crate) fn finished() -> Self {
        Self {
            scanner: None,
            done: true,
            nothing: false,
            held: BytesMut::new(),
            max: 0,
            padding: 0,
        }
    }
}
