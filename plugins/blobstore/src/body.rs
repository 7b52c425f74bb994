//! Object bodies as `wasi:io` streams, in bounded memory.
//!
//! Writing: the guest's output stream queues at most [`QUEUE`] writes of at
//! most [`CHUNK`] bytes; a task writes them to a staged file. `finish` waits
//! for the task to write what is queued, then the file is renamed into
//! place, so an object is either all there or not at all. A body over
//! `max_object_bytes` fails the write that crosses it, and `finish`.
//!
//! Reading: the file, from the range's start, read through Wasmtime's
//! [`AsyncReadStream`] (one read of at most 64 KiB buffered at a time).

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tempfile::NamedTempFile;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot};
use wasmtime_wasi::p2::pipe::AsyncReadStream;
use wasmtime_wasi::p2::{DynInputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Largest write the output stream takes at once (what `check-write` allows).
pub(crate) const CHUNK: usize = 64 * 1024;

/// Writes queued before the guest must wait for the file.
pub(crate) const QUEUE: usize = 4;

/// Why a body failed, once it did.
#[derive(Default)]
struct Failure(Mutex<Option<String>>);

impl Failure {
    fn set(&self, why: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(why);
    }

    fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A body being written, as its outgoing value holds it.
pub(crate) struct Upload {
    end: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<NamedTempFile, String>>>,
    failure: Arc<Failure>,
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Unfinished: the staged file is removed with the task.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Upload {
    /// Starts writing to `staged`; returns the upload and the guest's stream
    /// (which refuses bytes past `max` in all).
    pub(crate) fn start(staged: NamedTempFile, max: u64) -> (Self, BodyWriter) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (end, ended) = oneshot::channel();
        let failure = Arc::new(Failure::default());
        let task = tokio::spawn(spool(staged, rx, ended, Arc::clone(&failure)));
        let upload = Self {
            end: Some(end),
            task: Some(task),
            failure: Arc::clone(&failure),
        };
        let writer = BodyWriter {
            tx,
            failure,
            written: 0,
            max,
        };
        (upload, writer)
    }

    /// A body that cannot be written, for `why`: its stream fails with it.
    pub(crate) fn failed(why: String) -> (Self, BodyWriter) {
        let (tx, _) = mpsc::channel(1);
        let failure = Arc::new(Failure::default());
        failure.set(why);
        let upload = Self {
            end: None,
            task: None,
            failure: Arc::clone(&failure),
        };
        let writer = BodyWriter {
            tx,
            failure,
            written: 0,
            max: 0,
        };
        (upload, writer)
    }

    /// Ends the body (the stream takes no more) and waits until the staged
    /// file holds every byte written.
    pub(crate) async fn finish(mut self) -> Result<NamedTempFile, String> {
        if let Some(end) = self.end.take() {
            let _ = end.send(());
        }
        let written = match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|err| Err(format!("writing the body failed: {err}"))),
            None => Err(String::new()),
        };
        match self.failure.get() {
            Some(why) => Err(why),
            None => written,
        }
    }
}

/// Writes what the stream queues to the staged file, until the stream is
/// dropped or the body is finished (then what is queued is written too).
async fn spool(
    staged: NamedTempFile,
    mut rx: mpsc::Receiver<Bytes>,
    mut ended: oneshot::Receiver<()>,
    failure: Arc<Failure>,
) -> Result<NamedTempFile, String> {
    let written = async {
        let mut file = tokio::fs::File::from_std(staged.as_file().try_clone()?);
        let mut ending = false;
        loop {
            let next = if ending {
                rx.recv().await
            } else {
                tokio::select! {
                    next = rx.recv() => next,
                    _ = &mut ended => {
                        ending = true;
                        rx.close();
                        continue;
                    }
                }
            };
            match next {
                Some(bytes) => file.write_all(&bytes).await?,
                None => break,
            }
        }
        file.flush().await?;
        file.sync_all().await
    };
    match written.await {
        Ok(()) => Ok(staged),
        Err(err) => {
            let why = format!("writing the body failed: {err}");
            failure.set(why.clone());
            Err(why)
        }
    }
}

/// The guest's output stream of an outgoing value.
pub(crate) struct BodyWriter {
    tx: mpsc::Sender<Bytes>,
    failure: Arc<Failure>,
    written: u64,
    max: u64,
}

impl BodyWriter {
    /// Whether it can still be written: the failure, or closed once finished.
    fn usable(&self) -> StreamResult<()> {
        if let Some(why) = self.failure.get() {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "{why}"
            )));
        }
        if self.tx.is_closed() {
            return Err(StreamError::Closed);
        }
        Ok(())
    }
}

#[cfg(test)]
impl BodyWriter {
    /// Waits until the upload no longer takes bytes.
    pub(crate) async fn closed(&self) {
        self.tx.closed().await;
    }
}

impl OutputStream for BodyWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.usable()?;
        if bytes.is_empty() {
            return Ok(());
        }
        let len = bytes.len() as u64;
        if self.written + len > self.max {
            self.failure.set(format!(
                "the object is larger than max_object_bytes ({} bytes)",
                self.max
            ));
            return self.usable();
        }
        match self.tx.try_send(bytes) {
            Ok(()) => {
                self.written += len;
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(StreamError::trap("wrote more than check-write allowed"))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.usable()?;
                Err(StreamError::Closed)
            }
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        // What is queued reaches the file before `finish` returns.
        self.usable()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.usable()?;
        Ok(if self.tx.capacity() > 0 { CHUNK } else { 0 })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BodyWriter {
    async fn ready(&mut self) {
        if self.usable().is_ok() {
            // Ready once a write fits (the slot is given back at once).
            let _ = self.tx.reserve().await;
        }
    }
}

/// The guest's input stream over `len` bytes of `file` from where it is.
pub(crate) fn reader(file: std::fs::File, len: u64) -> DynInputStream {
    Box::new(AsyncReadStream::new(
        tokio::fs::File::from_std(file).take(len),
    ))
}
