//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the
//! parts of the NATS transport that read what a peer sends, which the
//! public API reaches only through a live connection. Each is a thin
//! wrapper that runs the transport's own code.

use std::sync::Arc;

use bytes::Bytes;

use crate::nats::flow;
use crate::schema::ScanPlan;
use crate::value;
use crate::Limits;

/// [`crate::nats::CREDIT_HEADER`]'s value as a window, as a server and a
/// caller read it.
pub fn nats_window(value: &str) -> Option<u64> {
    flow::parse_window(value)
}

/// A credit message's payload (`PATH CONSUMED`), as a writer reads it.
pub fn nats_credit(payload: &[u8]) -> Option<(Vec<usize>, u64)> {
    flow::parse_credit(payload)
}

/// The payload a reader sends to credit `consumed` bytes on `path`.
pub fn nats_credit_payload(path: &[usize], consumed: u64) -> String {
    flow::credit_payload(path, consumed)
}

/// A writer's flow control: a peer granted `window`, then the writer sent
/// and the reader credited bytes.
#[derive(Debug)]
pub struct Flow(flow::Flow);

impl Flow {
    /// A writer's bookkeeping under a granted `window`.
    pub fn writer(window: u64) -> Self {
        Self(flow::Flow {
            out_window: Some(window),
            ..flow::Flow::default()
        })
    }

    /// Records `n` bytes written on `path`.
    pub fn sent(&mut self, path: &[usize], n: usize) {
        self.0.sent(path, n);
    }

    /// Applies a credit message's payload; `false` when it is malformed.
    pub fn credit(&mut self, payload: &[u8]) -> bool {
        self.0.credit(payload)
    }

    /// How many bytes may be written on `path` now.
    pub fn room(&self, path: &[usize]) -> Option<u64> {
        self.0.room(path)
    }
}

/// A call's synchronous value as both transports take it in: a NATS
/// server's lean call passes its first message here, and expects the value
/// complete after it.
pub struct RootValue(value::RootValue);

impl RootValue {
    /// The value of a tuple scanned by `plan` under `limits`.
    pub fn new(plan: Arc<ScanPlan>, limits: &Limits) -> Self {
        Self(value::RootValue::new(Some(plan), limits))
    }

    /// Takes the next bytes; returns what may be passed on to a decoder.
    ///
    /// # Errors
    ///
    /// Why the bytes are not (the rest of) the value.
    pub fn push(&mut self, bytes: Bytes) -> Result<Option<Bytes>, String> {
        self.0.push(bytes)
    }

    /// Whether the value is complete.
    pub fn complete(&self) -> bool {
        self.0.complete()
    }
}
