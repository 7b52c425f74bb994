//! After NATS answered a call with "no responders": does anything serve the
//! call's instance on that prefix? Several extensions share a prefix and each
//! subscribes only to the functions it serves, so "no responders" alone
//! cannot tell a function the extension lacks from an instance nothing
//! serves. The call asks `INSTANCE.wrpc-ext:describe` (answered by every
//! sdk-built extension for each instance it exports): an answer means the
//! extension is there and the function is not served by it.
//!
//! Only failed calls ask, so a call that reaches its function costs nothing.

use core::future::poll_fn;
use core::task::Poll;
use core::time::Duration;

use std::io;
use std::sync::Arc;

use async_nats::{HeaderMap, StatusCode};
use bytes::Bytes;

use super::demux::Demux;
use super::LEAN_HEADER;
use crate::discovery::PER_INSTANCE;

/// How long the question may take before the call reports no responders.
const WAIT: Duration = Duration::from_secs(1);

/// Probe questions use the failed call's id with this bit set, so they
/// share the caller's inbox without meeting its calls' ids.
const ID_BIT: u64 = 1 << 62;

/// A client call's subject, kept to ask about its instance if it fails.
#[derive(Clone)]
pub(crate) struct Probe {
    /// `[prefix.]wrpc.0.0.1.INSTANCE.FUNC`.
    subject: String,
    /// Where `INSTANCE` starts in `subject`.
    instance_at: usize,
}

impl Probe {
    /// The probe of a call to `func` of `instance` on `subject` (see
    /// [`super::invocation_subject`]); none for calls that cannot be asked
    /// about: without an instance, or a discovery question themselves.
    pub(crate) fn new(subject: &str, instance: &str, func: &str) -> Option<Self> {
        let instance_at = subject.len().checked_sub(instance.len() + 1 + func.len())?;
        (!instance.is_empty() && func != PER_INSTANCE).then(|| Self {
            subject: subject.to_string(),
            instance_at,
        })
    }

    fn instance_and_func(&self) -> (&str, &str) {
        let called = &self.subject[self.instance_at..];
        called.rsplit_once('.').unwrap_or((called, ""))
    }

    /// The failed call's error: the function is not served by the extension
    /// serving its instance, or nothing answers for the instance at all.
    pub(crate) async fn failure(
        self,
        nats: async_nats::Client,
        demux: Arc<Demux>,
        id: u64,
    ) -> io::Error {
        let (instance, func) = self.instance_and_func();
        let served = instance_served(
            &self.subject[..self.instance_at],
            instance,
            &nats,
            &demux,
            id | ID_BIT,
        )
        .await;
        if served {
            io::Error::other(format!(
                "the extension failed the call: `{instance}.{func}` is not served by this extension"
            ))
        } else {
            no_responders()
        }
    }
}

/// The error of a call nothing answered.
pub(crate) fn no_responders() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "no NATS responders")
}

/// Whether anything answers `INSTANCE.wrpc-ext:describe` under `base`
/// (`[prefix.]wrpc.0.0.1.`) within [`WAIT`].
async fn instance_served(
    base: &str,
    instance: &str,
    nats: &async_nats::Client,
    demux: &Demux,
    id: u64,
) -> bool {
    struct Registered<'a>(&'a Demux, u64);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            self.0.unregister(self.1);
        }
    }
    demux.register(id, [String::new(), "results".to_string()]);
    let _registered = Registered(demux, id);
    let mut headers = HeaderMap::new();
    headers.insert(LEAN_HEADER, "1");
    let ask = async {
        let subject = format!("{base}{instance}.{PER_INSTANCE}");
        if nats
            .publish_with_reply_and_headers(subject, demux.subject(id, ""), headers, Bytes::new())
            .await
            .is_err()
        {
            return false;
        }
        poll_fn(|cx| {
            // A result: the extension ran the question.
            if let Poll::Ready(got) = demux.poll_recv(id, "results", cx) {
                return Poll::Ready(got.is_ok());
            }
            // On the reply subject: NATS' "no responders", or a peer's
            // handshake (it is there).
            demux
                .poll_recv(id, "", cx)
                .map(|got| got.is_ok_and(|msg| msg.status != Some(StatusCode::NO_RESPONDERS)))
        })
        .await
    };
    tokio::time::timeout(WAIT, ask).await.unwrap_or(false)
}
