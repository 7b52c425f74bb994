//! Why a stream target cannot take calls at all: nothing listens at its
//! address, or what answers there is not a wRPC server.

use std::io;

/// A stream target that cannot take calls, whatever the call. Carried
/// inside the `io::Error` of the call that found it (see [`UnusableTarget::of`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnusableTarget {
    /// Connecting was refused, or the Unix socket does not exist.
    #[error("nothing listens at {target} ({why})")]
    NothingListens {
        /// The target, e.g. `tcp://127.0.0.1:7761`.
        target: String,
        /// `connection refused`, `no such socket`.
        why: &'static str,
    },
    /// The server answered the preface with bytes no wRPC server sends.
    #[error("{target} is not a wRPC server: it answered `{answer}` ({looks_like})")]
    NotWrpc {
        /// The target.
        target: String,
        /// The first line of the answer, non-printable bytes escaped.
        answer: String,
        /// What the answer looks like, e.g. `an HTTP server`.
        looks_like: &'static str,
    },
}

impl UnusableTarget {
    /// The target error inside `err` (also inside a call's
    /// [`crate::CallFailure`]), if `err` is one.
    pub fn of(err: &io::Error) -> Option<&Self> {
        let inner = err.get_ref()?;
        if let Some(found) = inner.downcast_ref::<Self>() {
            return Some(found);
        }
        inner
            .downcast_ref::<crate::CallFailure>()
            .and_then(|failure| Self::of(failure.io_error()))
    }

    /// `err` from connecting to `target`, named as a [`UnusableTarget`] when it
    /// means that nothing listens there.
    pub(crate) fn on_connect(target: &impl core::fmt::Display, err: io::Error) -> io::Error {
        if err.raw_os_error().is_none() {
            // Not the socket's own error (e.g. a rejected WebSocket upgrade).
            return err;
        }
        let why = match err.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused",
            io::ErrorKind::NotFound => "no such socket",
            _ => return err,
        };
        let kind = err.kind();
        io::Error::new(
            kind,
            Self::NothingListens {
                target: target.to_string(),
                why,
            },
        )
    }

    /// The error for a server at `target` that answered the preface with
    /// `answer` (its first bytes).
    pub(crate) fn not_wrpc(target: &impl core::fmt::Display, answer: &[u8]) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            Self::NotWrpc {
                target: target.to_string(),
                answer: first_line(answer),
                looks_like: looks_like(answer),
            },
        )
    }
}

/// The first line of `bytes` (at most 60 bytes), escaped.
fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(bytes.len())
        .min(60);
    bytes[..end].escape_ascii().to_string()
}

/// What a server answering `bytes` to the wRPC preface probably is.
fn looks_like(bytes: &[u8]) -> &'static str {
    let line_ends = bytes.windows(2).any(|w| w == b"\r\n");
    if bytes.starts_with(b"HTTP/") {
        "an HTTP server"
    } else if bytes.starts_with(b"INFO {") {
        "a NATS server: use nats://"
    } else if bytes.starts_with(b"SSH-") {
        "an SSH server"
    } else if line_ends && matches!(bytes.first(), Some(b'-' | b'+' | b'$' | b'*' | b':')) {
        "the Redis protocol, RESP"
    } else if bytes
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "text"
    } else {
        "not the wRPC preface"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_answered() {
        let err = UnusableTarget::not_wrpc(&"tcp://h:1", b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert_eq!(
            err.to_string(),
            "tcp://h:1 is not a wRPC server: it answered `HTTP/1.1 400 Bad Request` (an HTTP server)"
        );
        let err = UnusableTarget::not_wrpc(&"tcp://h:1", b"-ERR unknown command '\xfewp'\r\n");
        assert!(err.to_string().ends_with(
            "it answered `-ERR unknown command \\'\\xfewp\\'` (the Redis protocol, RESP)"
        ));
        assert!(UnusableTarget::of(&err).is_some());
        let refused = io::Error::from_raw_os_error(111);
        let err = UnusableTarget::on_connect(&"tcp://h:1", refused);
        assert_eq!(
            err.to_string(),
            "nothing listens at tcp://h:1 (connection refused)"
        );
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
