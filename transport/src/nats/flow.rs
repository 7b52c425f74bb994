//! Flow control of a call's streams over NATS, between peers that both speak it.
//!
//! NATS itself cannot slow a publisher down: a stream's reader that falls
//! behind would otherwise have to buffer without bound (or fail the call).
//! So the reader of each async path grants the writer a window of
//! [`WINDOW`] bytes and, as it consumes them, sends *credit* messages to the
//! writer's call inbox (`<inbox>.<call>.credit`, payload `PATH CONSUMED`:
//! the path's indices joined by `.`, a space, and the cumulative bytes the
//! reader has taken). A writer never has more than the window unacknowledged.
//!
//! Negotiation (header [`CREDIT_HEADER`], value: the window in bytes): a
//! caller of ours sends it on the invocation, granting windows on the result
//! streams; a server of ours then limits its result streams by it, and
//! grants windows on parameter streams by sending the header on its
//! handshake. Peers that send no header get no flow control in that
//! direction, as in wRPC 0.17.

use std::collections::HashMap;

/// Header granting a window (bytes) on the streams the sender of the header reads.
pub const CREDIT_HEADER: &str = "wrpc-credit";

/// The window granted on each stream: at most this many bytes travel
/// unacknowledged, so a stalled reader holds at most this much.
pub const WINDOW: u64 = 4 << 20;

/// The subject tail credit messages arrive on.
pub(crate) const CREDIT_TAIL: &str = "credit";

/// One direction's bookkeeping, per async path.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    /// Window the peer granted on what this side writes; `None`: unlimited.
    pub(crate) out_window: Option<u64>,
    /// Window this side granted on what it reads; `None`: it sends no credit.
    pub(crate) in_window: Option<u64>,
    /// The peer's call inbox, where this side's credits go.
    pub(crate) credit_to: Option<String>,
    /// Per written path: bytes sent and bytes the reader acknowledged.
    pub(crate) written: HashMap<Vec<usize>, (u64, u64)>,
    /// Per read path: bytes consumed and bytes already credited.
    pub(crate) read: HashMap<Vec<usize>, (u64, u64)>,
}

impl Flow {
    /// How many bytes may be written on `path` now; `None` when unlimited.
    pub(crate) fn room(&self, path: &[usize]) -> Option<u64> {
        let window = self.out_window?;
        let (sent, acked) = self.written.get(path).copied().unwrap_or_default();
        Some(window.saturating_sub(sent.saturating_sub(acked)))
    }

    /// Records `n` bytes written on `path`.
    pub(crate) fn sent(&mut self, path: &[usize], n: usize) {
        if self.out_window.is_some() {
            self.written.entry(path.to_vec()).or_default().0 += n as u64;
        }
    }

    /// Applies a credit message's payload; `false` when it is malformed.
    pub(crate) fn credit(&mut self, payload: &[u8]) -> bool {
        let Some((path, consumed)) = parse_credit(payload) else {
            return false;
        };
        let entry = self.written.entry(path).or_default();
        // Credits are cumulative: a late one never takes acknowledged bytes back.
        entry.1 = entry.1.max(consumed.min(entry.0));
        true
    }

    /// Records `n` bytes consumed on `path`; returns the credit message to
    /// send (subject, payload) once half the window is unacknowledged.
    pub(crate) fn consumed(&mut self, path: &[usize], n: usize) -> Option<(String, String)> {
        let window = self.in_window?;
        let to = self.credit_to.as_ref()?;
        let entry = self.read.entry(path.to_vec()).or_default();
        entry.0 += n as u64;
        if entry.0 - entry.1 < window / 2 {
            return None;
        }
        entry.1 = entry.0;
        Some((format!("{to}.{CREDIT_TAIL}"), credit_payload(path, entry.0)))
    }
}

/// `PATH CONSUMED`, e.g. `1.0 1048576`.
pub(crate) fn credit_payload(path: &[usize], consumed: u64) -> String {
    let path: Vec<String> = path.iter().map(ToString::to_string).collect();
    format!("{} {consumed}", path.join("."))
}

pub(crate) fn parse_credit(payload: &[u8]) -> Option<(Vec<usize>, u64)> {
    let text = core::str::from_utf8(payload).ok()?;
    let (path, consumed) = text.split_once(' ')?;
    let path = path
        .split('.')
        .map(str::parse)
        .collect::<Result<Vec<usize>, _>>()
        .ok()?;
    if path.is_empty() || path.len() > 32 {
        return None;
    }
    Some((path, consumed.parse().ok()?))
}

/// The window a header value grants, if it is a sane number of bytes.
pub(crate) fn parse_window(value: &str) -> Option<u64> {
    let window: u64 = value.trim().parse().ok()?;
    (1024..=1 << 30).contains(&window).then_some(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow {
            out_window: Some(100),
            in_window: Some(100),
            credit_to: Some("_INBOX.x.7".into()),
            ..Flow::default()
        }
    }

    #[test]
    fn writers_stop_at_the_window_until_credited() {
        let mut f = flow();
        assert_eq!(f.room(&[1]), Some(100));
        f.sent(&[1], 70);
        assert_eq!(f.room(&[1]), Some(30));
        f.sent(&[1], 30);
        assert_eq!(f.room(&[1]), Some(0));
        assert!(f.credit(b"1 60"));
        assert_eq!(f.room(&[1]), Some(60));
        // Stale and over-eager credits change nothing beyond what was sent.
        assert!(f.credit(b"1 10"));
        assert!(f.credit(b"1 1000"));
        assert_eq!(f.room(&[1]), Some(100));
        assert_eq!(f.room(&[0, 1]), Some(100));
        assert!(!f.credit(b"x 1"));
        assert!(!f.credit(b" 1"));
        assert!(!f.credit(b"1"));
    }

    #[test]
    fn readers_credit_every_half_window() {
        let mut f = flow();
        assert_eq!(f.consumed(&[0, 0], 30), None);
        assert_eq!(
            f.consumed(&[0, 0], 30),
            Some(("_INBOX.x.7.credit".into(), "0.0 60".into()))
        );
        assert_eq!(f.consumed(&[0, 0], 49), None);
        assert_eq!(
            f.consumed(&[0, 0], 1),
            Some(("_INBOX.x.7.credit".into(), "0.0 110".into()))
        );
    }

    #[test]
    fn no_window_no_limits_and_no_credits() {
        let mut f = Flow::default();
        assert_eq!(f.room(&[1]), None);
        f.sent(&[1], 1 << 40);
        assert_eq!(f.room(&[1]), None);
        assert_eq!(f.consumed(&[1], 1 << 30), None);
        assert_eq!(parse_window("4194304"), Some(WINDOW));
        assert_eq!(parse_window("1"), None);
        assert_eq!(parse_window("lots"), None);
    }
}
