//! [`CallError`]: why a call failed, naming the function, the target and why.

use core::time::Duration;

use std::io;

use crate::call::{failure_kind, failure_reason};
use crate::stream::UnusableTarget;
use crate::{Endpoint, Target};

/// Why a call failed, in one kind a caller can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// No answer arrived before the deadline (the target's timeout).
    Timeout(Duration),
    /// Nothing answered at the target (refused, no NATS responders, not a
    /// wRPC server): the callee never saw the call.
    Unreachable,
    /// The call started but broke (connection lost, malformed reply, the
    /// callee failed it, …).
    Failed,
}

/// A call that failed in transit. Its message names the function (as the
/// caller knows it), the target and why:
/// `FUNCTION: no answer from TARGET within 10s`,
/// `FUNCTION: extension unreachable at TARGET: REASON`,
/// `FUNCTION: call to TARGET failed: REASON`.
#[derive(Debug, thiserror::Error)]
#[error("{function}: {}", self.what())]
pub struct CallError {
    function: String,
    /// Boxed: an endpoint is large, and errors travel in `Result`s.
    target: Box<Endpoint>,
    kind: CallErrorKind,
    reason: String,
    unusable: bool,
}

impl CallError {
    /// A failure of `function` at `target` of this `kind`; `reason` is what
    /// went wrong, without the call's name.
    pub fn new(
        function: impl Into<String>,
        target: Endpoint,
        kind: CallErrorKind,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            function: function.into(),
            target: Box::new(target),
            kind,
            reason: reason.into(),
            unusable: false,
        }
    }

    /// What a call of `function` (named as the caller knows it) through
    /// `target` failed with: `err` from [`Target::invoke`], or from reading
    /// or decoding its results (the transport's error anywhere in the chain).
    pub fn of(function: impl Into<String>, target: &Target, err: &anyhow::Error) -> Self {
        let kind = match failure_kind(err) {
            Some(io::ErrorKind::TimedOut) => CallErrorKind::Timeout(target.timeout()),
            Some(_) => CallErrorKind::Unreachable,
            None => CallErrorKind::Failed,
        };
        let unusable = err.chain().any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| UnusableTarget::of(e).is_some())
        });
        Self {
            unusable,
            ..Self::new(
                function,
                target.endpoint().clone(),
                kind,
                failure_reason(err),
            )
        }
    }

    /// Like [`CallError::of`], for the I/O error of a call's streams.
    pub fn of_io(function: impl Into<String>, target: &Target, err: io::Error) -> Self {
        Self::of(function, target, &anyhow::Error::from(err))
    }

    /// The function, as the caller named it.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// Where the call went.
    pub fn target(&self) -> &Endpoint {
        &self.target
    }

    /// Why, in a kind.
    pub fn kind(&self) -> CallErrorKind {
        self.kind
    }

    /// What the transport said, without the call's name (for a timeout,
    /// which deadline passed).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether nothing answered at the target: the callee never saw the call.
    pub fn is_unreachable(&self) -> bool {
        self.kind == CallErrorKind::Unreachable
    }

    /// Whether no call can succeed at the target: nothing listens there, or
    /// it is not a wRPC server ([`CallError::reason`] names the target then).
    pub fn is_unusable(&self) -> bool {
        self.unusable
    }

    /// The message after the function's name.
    fn what(&self) -> String {
        let target = &self.target;
        match self.kind {
            CallErrorKind::Timeout(timeout) => {
                format!("no answer from {target} within {timeout:?}")
            }
            CallErrorKind::Unreachable => {
                format!("extension unreachable at {target}: {}", self.reason)
            }
            CallErrorKind::Failed => format!("call to {target} failed: {}", self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamClient;
    use crate::{CallTimer, Client, Limits};

    fn target() -> Target {
        let endpoint: Endpoint = "tcp://127.0.0.1:1".parse().unwrap();
        let client = StreamClient::for_endpoint(&endpoint, Limits::DEFAULT, Vec::new()).unwrap();
        Target::new(
            endpoint,
            Client::Stream(client),
            Duration::from_secs(3),
            Duration::from_secs(4),
        )
    }

    fn failed(kind: io::ErrorKind, why: &str) -> anyhow::Error {
        let timer = CallTimer::new("`i.f` via tcp://127.0.0.1:1", None, Duration::ZERO);
        anyhow::Error::from(timer.annotate(io::Error::new(kind, why.to_string())))
            .context("decoding results")
    }

    #[test]
    fn a_passed_deadline_names_the_target_and_its_timeout() {
        let err = CallError::of(
            "a:b/c.f",
            &target(),
            &failed(io::ErrorKind::TimedOut, "its deadline passed"),
        );
        assert_eq!(err.kind(), CallErrorKind::Timeout(Duration::from_secs(3)));
        assert_eq!(err.reason(), "its deadline passed");
        assert_eq!(
            err.to_string(),
            "a:b/c.f: no answer from tcp://127.0.0.1:1 within 3s"
        );
    }

    #[test]
    fn no_responders_is_unreachable() {
        let err = CallError::of(
            "a:b/c.f",
            &target(),
            &failed(io::ErrorKind::NotConnected, "no responders"),
        );
        assert!(err.is_unreachable());
        assert!(!err.is_unusable());
        assert_eq!(
            err.to_string(),
            "a:b/c.f: extension unreachable at tcp://127.0.0.1:1: nothing is serving it (no NATS responders)"
        );
    }

    #[test]
    fn any_other_failure_is_a_failed_call_with_the_transports_words() {
        let err = CallError::of(
            "a:b/c.f",
            &target(),
            &failed(io::ErrorKind::UnexpectedEof, "incomplete results"),
        );
        assert_eq!(err.kind(), CallErrorKind::Failed);
        assert_eq!(
            err.to_string(),
            "a:b/c.f: call to tcp://127.0.0.1:1 failed: incomplete results"
        );
        let plain = CallError::of("a:b/c.f", &target(), &anyhow::anyhow!("no such thing"));
        assert_eq!(plain.reason(), "no such thing");
    }
}
