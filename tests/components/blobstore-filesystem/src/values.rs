//! `outgoing-value` and `incoming-value`, and where their `wasi:io` streams
//! come from.
//!
//! This component exports `wasi:blobstore/types`, whose functions return
//! `wasi:io/streams` handles; it does not export `wasi:io`, so it cannot
//! make streams of its own. It imports `wasi:io/streams` (the same instance
//! `wasi:filesystem` uses), and the streams it returns are the host's file
//! streams:
//!
//! - `outgoing-value-write-body`: a new file in `.blobstore-partial/`, and
//!   its `write-via-stream(0)`. `write-data` records where the body goes,
//!   `finish` renames the file to `<container>/<object>` (so an object is
//!   replaced at once, and a value dropped unfinished leaves nothing but an
//!   unlinked file). Wasmtime finishes a pending file write when the stream
//!   is dropped, which the WIT requires before `finish`.
//! - `incoming-value-consume-async`: the object file's `read-via-stream(start)`
//!   when the range runs to the end of the object. A range ending earlier
//!   cannot be cut short on a host stream, so it is first copied (1 MiB at a
//!   time) into a new file in `.blobstore-partial/`, whose name is removed
//!   at once; its `read-via-stream(0)` is returned.
//! - `incoming-value-consume-sync`: the range read into memory (at most
//!   `SYNC_LIMIT` bytes).

use std::cell::RefCell;

use crate::bindings::exports::wasi::blobstore::types::{
    Error, GuestIncomingValue, GuestOutgoingValue, IncomingValue, IncomingValueAsyncBody,
    IncomingValueSyncBody, OutgoingValue,
};
use crate::bindings::wasi::filesystem::types::Descriptor;
use crate::bindings::wasi::io::streams::OutputStream;
use crate::fs::{self, failed, with_root, Partial};

/// The most bytes `incoming-value-consume-sync` returns.
pub const SYNC_LIMIT: u64 = 1 << 30;

#[derive(Default)]
pub struct FsOutgoing {
    state: RefCell<OutgoingState>,
}

#[derive(Default)]
struct OutgoingState {
    /// The body's file, once there is one.
    partial: Option<Partial>,
    /// Whether `outgoing-value-write-body` was called.
    body_taken: bool,
    /// (container, object), from `write-data`.
    target: Option<(String, String)>,
    /// Why the body could not be given, told by `write-data` and `finish`.
    failed: Option<String>,
}

impl OutgoingState {
    fn partial(&mut self) -> Result<&Partial, String> {
        if self.partial.is_none() {
            self.partial = Some(with_root(Partial::create)?);
        }
        Ok(self.partial.as_ref().unwrap())
    }
}

impl FsOutgoing {
    /// `write-data(name, this)` on container `container`.
    pub fn set_target(&self, container: &str, object: &str) -> Result<(), Error> {
        let mut state = self.state.borrow_mut();
        if let Some(why) = &state.failed {
            return Err(why.clone());
        }
        if let Some((c, o)) = &state.target {
            return Err(format!("this outgoing-value is already written to `{c}/{o}`"));
        }
        state.target = Some((container.to_string(), object.to_string()));
        Ok(())
    }
}

impl GuestOutgoingValue for FsOutgoing {
    fn new_outgoing_value() -> OutgoingValue {
        OutgoingValue::new(FsOutgoing::default())
    }

    fn outgoing_value_write_body(&self) -> Result<OutputStream, ()> {
        let mut state = self.state.borrow_mut();
        if state.body_taken {
            return Err(());
        }
        state.body_taken = true;
        let stream = state
            .partial()
            .and_then(|p| p.file().write_via_stream(0).map_err(|e| failed("opening the body stream", e)));
        stream.map_err(|why| {
            state.failed = Some(why);
        })
    }

    fn finish(this: OutgoingValue) -> Result<(), Error> {
        let value: FsOutgoing = this.into_inner();
        let mut state = value.state.borrow_mut();
        if let Some(why) = state.failed.take() {
            return Err(why);
        }
        let Some((container, object)) = state.target.take() else {
            return Err("finish before write-data: the value has no object to become".into());
        };
        // A value whose body was never asked for is an empty object.
        state.partial()?;
        let mut partial = state.partial.take().unwrap();
        with_root(|root| partial.rename_to(root, &container, &object))
    }
}

pub struct FsIncoming {
    path: String,
    file: Descriptor,
    start: u64,
    len: u64,
    size: u64,
}

impl FsIncoming {
    /// Bytes `start..start + len` of `file` (`path`, `size` bytes long).
    pub fn new(path: String, file: Descriptor, start: u64, len: u64, size: u64) -> Self {
        FsIncoming { path, file, start, len, size }
    }
}

impl GuestIncomingValue for FsIncoming {
    fn incoming_value_consume_sync(this: IncomingValue) -> Result<IncomingValueSyncBody, Error> {
        let value: FsIncoming = this.into_inner();
        if value.len > SYNC_LIMIT {
            return Err(format!(
                "{} bytes of `{}` are too many to consume at once (at most {SYNC_LIMIT}): use incoming-value-consume-async",
                value.len, value.path
            ));
        }
        fs::read_range(&value.file, value.start, value.len, &value.path)
    }

    fn incoming_value_consume_async(this: IncomingValue) -> Result<IncomingValueAsyncBody, Error> {
        let value: FsIncoming = this.into_inner();
        let open = |file: &Descriptor, offset: u64| {
            file.read_via_stream(offset)
                .map_err(|e| failed(&format!("opening a stream of `{}`", value.path), e))
        };
        if value.len == 0 {
            // At the end of the object: a stream that is closed at once.
            return open(&value.file, value.size);
        }
        if value.start + value.len == value.size {
            return open(&value.file, value.start);
        }
        with_root(|root| {
            let partial = Partial::create(root)?;
            fs::copy_range(&value.file, value.start, value.len, partial.file(), &value.path)?;
            let copy = partial.unlink_keep_open(root);
            open(&copy, 0)
        })
    }

    // The value's size is the length of the range read, not the object's.
    #[allow(clippy::misnamed_getters)]
    fn size(&self) -> u64 {
        self.len
    }
}
