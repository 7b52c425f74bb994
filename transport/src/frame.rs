//! The byte format of the stream transports (TCP, Unix, WebSocket): a
//! sans-I/O parser that checks every declared length against [`Limits`]
//! before anything is allocated, and the matching encoders.
//!
//! Two dialects share one listener (see `docs/WIRE.md`):
//!
//! - **plain**: upstream wRPC 0.17 framing, one connection per call: version
//!   byte `0x00`, the instance and function names, then frames
//!   `{path, data}` until the sender shuts down its half of the connection;
//! - **pooled**: after the preface (`FE 77 70 02 0A` or `FE 77 70 01` from
//!   the client, `FE 77 70 01` from the server), a connection
//!   carries calls one after another as tagged messages (`CALL`, `DATA`,
//!   `END`, `GOAWAY`, `ERROR`), so a client keeps it open between calls.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

use crate::Limits;

/// The upstream framing version byte.
pub const PLAIN_VERSION: u8 = 0x00;

/// The pooled dialect's preface: the server's answer, and what clients
/// before the line preface sent.
pub const POOL_PREFACE: [u8; 4] = [0xFE, b'w', b'p', 0x01];

/// The preface a client sends: [`POOL_PREFACE`] with version 2 and a
/// newline, which makes a line-oriented server (HTTP, Redis, SMTP…)
/// answer at once, so the client can tell it is not wRPC. The server
/// answers [`POOL_PREFACE`] to either.
pub const LINE_PREFACE: [u8; 5] = [0xFE, b'w', b'p', 0x02, b'\n'];

/// Most bytes of an `ERROR` message's text.
pub const MAX_ERROR_TEXT: u32 = 4096;

mod tag {
    pub const CALL: u8 = 1;
    pub const DATA: u8 = 2;
    pub const END: u8 = 3;
    pub const GOAWAY: u8 = 4;
    pub const ERROR: u8 = 5;
}

/// Which framing a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Upstream wRPC: one call per connection, ended by shutting down the write side.
    Plain,
    /// Tagged messages, several calls per connection, one at a time.
    Pooled,
}

/// The start of a call: what is called and the caller's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallHeader {
    /// The instance, e.g. `wrpc:keyvalue/store@0.2.0-draft`.
    pub instance: String,
    /// The function, e.g. `get`.
    pub func: String,
    /// Caller headers (pooled dialect only).
    pub headers: Vec<(String, String)>,
}

/// What the parser found next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer sent the pooled preface (a server answers it with its own).
    Preface,
    /// A call starts (server side).
    Call(CallHeader),
    /// Bytes of a frame for `path`; `last` when the frame is complete.
    Data {
        /// The frame's path (empty for the synchronous value).
        path: Vec<usize>,
        /// The next bytes of the frame (possibly empty for an empty frame).
        bytes: Bytes,
        /// Whether these are the frame's last bytes.
        last: bool,
    },
    /// The sender finished this call's direction (pooled dialect).
    End,
    /// The server will take no further call on this connection (pooled dialect).
    GoAway,
    /// The server failed the call (pooled dialect).
    Error(String),
}

/// A violation of the framing or of a limit. The connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame declared more data than `max_frame`.
    #[error("a frame declares {len} bytes, over the max-frame limit of {max}")]
    FrameTooLarge {
        /// Declared length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A path declared more elements than `max_path_depth`.
    #[error("a path declares {len} elements, over the max-path-depth limit of {max}")]
    PathTooDeep {
        /// Declared length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A path element exceeds `max_list`.
    #[error("a path index of {index} is over the max-list limit of {max}")]
    PathIndexTooLarge {
        /// The index.
        index: u64,
        /// The limit.
        max: u32,
    },
    /// A name or header declared more bytes than `max_name`.
    #[error("the {what} declares {len} bytes, over the max-name limit of {max}")]
    NameTooLong {
        /// What was being read.
        what: &'static str,
        /// Declared length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// More headers than [`crate::caller::MAX_HEADERS`].
    #[error("a call declares {count} headers, over the limit of {max}")]
    TooManyHeaders {
        /// Declared count.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A LEB128 number longer than its type allows.
    #[error("malformed length or index in the {0}")]
    Leb128(&'static str),
    /// Text that is not UTF-8.
    #[error("the {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// The first byte is neither the plain version nor the pooled preface.
    #[error("not wRPC: first byte {0:#04x} is neither version 0 nor the pooled preface")]
    UnsupportedVersion(u8),
    /// A pooled message with an unknown tag.
    #[error("unknown message tag {0:#04x}")]
    UnknownMessage(u8),
    /// A message that is not allowed here (e.g. `CALL` sent by a server).
    #[error("unexpected {0} message")]
    Unexpected(&'static str),
}

impl FrameError {
    /// The limit this error is about, if any (`max-frame`, `max-path-depth`,
    /// `max-list`, `max-name`), for log lines.
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            Self::FrameTooLarge { .. } => Some("max-frame"),
            Self::PathTooDeep { .. } => Some("max-path-depth"),
            Self::PathIndexTooLarge { .. } => Some("max-list"),
            Self::NameTooLong { .. } | Self::TooManyHeaders { .. } => Some("max-name"),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
enum State {
    /// Server: the first byte decides the dialect.
    Sniff,
    /// Server, plain: the call header comes next.
    PlainHeader,
    /// Plain frames until end of input.
    PlainFrames,
    /// Client, pooled: the server's preface comes next.
    AwaitPreface,
    /// Pooled messages.
    Messages,
    /// Inside a frame's data.
    InFrame { path: Vec<usize>, remaining: u32 },
}

/// Which end of the connection a parser reads for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Reads calls (a listener).
    Server,
    /// Reads results (a client).
    Client,
}

/// A sans-I/O parser of one connection's input.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    role: Role,
    state: State,
    dialect: Option<Dialect>,
}

impl Parser {
    /// A parser for a listener's accepted connection: the first byte decides the dialect.
    pub fn server(limits: Limits) -> Self {
        Self {
            limits,
            role: Role::Server,
            state: State::Sniff,
            dialect: None,
        }
    }

    /// A parser for a client connection of `dialect`.
    pub fn client(limits: Limits, dialect: Dialect) -> Self {
        let state = match dialect {
            Dialect::Plain => State::PlainFrames,
            Dialect::Pooled => State::AwaitPreface,
        };
        Self {
            limits,
            role: Role::Client,
            state,
            dialect: Some(dialect),
        }
    }

    /// The dialect, once known.
    pub fn dialect(&self) -> Option<Dialect> {
        self.dialect
    }

    /// Whether the parser is between messages (not inside a frame or a
    /// header), including before the first byte of a connection.
    pub fn at_boundary(&self) -> bool {
        matches!(
            self.state,
            State::Sniff | State::AwaitPreface | State::Messages | State::PlainFrames
        )
    }

    /// Takes the next event from the front of `buf`, or `Ok(None)` when more
    /// bytes are needed. Consumed bytes are removed from `buf`; declared lengths
    /// are checked before any of their bytes are awaited.
    ///
    /// # Errors
    ///
    /// A [`FrameError`]; the connection cannot be used afterwards.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, FrameError> {
        loop {
            match &mut self.state {
                State::InFrame { path, remaining } => {
                    if *remaining == 0 {
                        let path = core::mem::take(path);
                        self.state = self.after_frame();
                        return Ok(Some(Event::Data {
                            path,
                            bytes: Bytes::new(),
                            last: true,
                        }));
                    }
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = buf.len().min(*remaining as usize);
                    let bytes = buf.split_to(n).freeze();
                    *remaining -= n as u32;
                    let last = *remaining == 0;
                    let path = if last {
                        let path = core::mem::take(path);
                        self.state = self.after_frame();
                        path
                    } else {
                        path.clone()
                    };
                    return Ok(Some(Event::Data { path, bytes, last }));
                }
                State::Sniff => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    match first {
                        PLAIN_VERSION => {
                            buf.advance(1);
                            self.dialect = Some(Dialect::Plain);
                            self.state = State::PlainHeader;
                        }
                        b if b == POOL_PREFACE[0] => {
                            let Some(len) = preface_len(buf) else {
                                return Err(FrameError::UnsupportedVersion(first));
                            };
                            if len == 0 {
                                return Ok(None);
                            }
                            buf.advance(len);
                            self.dialect = Some(Dialect::Pooled);
                            self.state = State::Messages;
                            return Ok(Some(Event::Preface));
                        }
                        b => return Err(FrameError::UnsupportedVersion(b)),
                    }
                }
                State::AwaitPreface => {
                    if buf.len() < POOL_PREFACE.len() {
                        if !POOL_PREFACE.starts_with(buf) {
                            return Err(FrameError::Unexpected("preface"));
                        }
                        return Ok(None);
                    }
                    if buf[..POOL_PREFACE.len()] != POOL_PREFACE {
                        return Err(FrameError::Unexpected("preface"));
                    }
                    buf.advance(POOL_PREFACE.len());
                    self.state = State::Messages;
                    return Ok(Some(Event::Preface));
                }
                State::PlainHeader => {
                    let mut cur = Cursor::new(buf);
                    let Some(instance) = cur.name(&self.limits, "instance name")? else {
                        return Ok(None);
                    };
                    let Some(func) = cur.name(&self.limits, "function name")? else {
                        return Ok(None);
                    };
                    let used = cur.pos;
                    buf.advance(used);
                    self.state = State::PlainFrames;
                    return Ok(Some(Event::Call(CallHeader {
                        instance,
                        func,
                        headers: Vec::new(),
                    })));
                }
                State::PlainFrames => {
                    let mut cur = Cursor::new(buf);
                    let Some((path, len)) = cur.frame_header(&self.limits)? else {
                        return Ok(None);
                    };
                    let used = cur.pos;
                    buf.advance(used);
                    self.state = State::InFrame {
                        path,
                        remaining: len,
                    };
                }
                State::Messages => {
                    let Some(&t) = buf.first() else {
                        return Ok(None);
                    };
                    let mut cur = Cursor::new(buf);
                    cur.pos = 1;
                    match t {
                        tag::DATA => {
                            let Some((path, len)) = cur.frame_header(&self.limits)? else {
                                return Ok(None);
                            };
                            let used = cur.pos;
                            buf.advance(used);
                            self.state = State::InFrame {
                                path,
                                remaining: len,
                            };
                        }
                        tag::END => {
                            buf.advance(1);
                            return Ok(Some(Event::End));
                        }
                        tag::CALL if self.role == Role::Server => {
                            let Some(header) = cur.call(&self.limits)? else {
                                return Ok(None);
                            };
                            let used = cur.pos;
                            buf.advance(used);
                            return Ok(Some(Event::Call(header)));
                        }
                        tag::GOAWAY if self.role == Role::Client => {
                            buf.advance(1);
                            return Ok(Some(Event::GoAway));
                        }
                        tag::ERROR if self.role == Role::Client => {
                            let Some(len) = cur.leb_u32("error text")? else {
                                return Ok(None);
                            };
                            if len > MAX_ERROR_TEXT {
                                return Err(FrameError::NameTooLong {
                                    what: "error text",
                                    len: len.into(),
                                    max: MAX_ERROR_TEXT,
                                });
                            }
                            let Some(text) = cur.bytes(len as usize) else {
                                return Ok(None);
                            };
                            let text = String::from_utf8_lossy(text).into_owned();
                            let used = cur.pos;
                            buf.advance(used);
                            return Ok(Some(Event::Error(text)));
                        }
                        tag::CALL => return Err(FrameError::Unexpected("CALL")),
                        tag::GOAWAY => return Err(FrameError::Unexpected("GOAWAY")),
                        tag::ERROR => return Err(FrameError::Unexpected("ERROR")),
                        other => return Err(FrameError::UnknownMessage(other)),
                    }
                }
            }
        }
    }

    fn after_frame(&self) -> State {
        match self.dialect {
            Some(Dialect::Pooled) => State::Messages,
            _ => State::PlainFrames,
        }
    }
}

/// Reads without consuming: every method returns `Ok(None)` when `buf` ends first.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn leb_u32(&mut self, what: &'static str) -> Result<Option<u32>, FrameError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let Some((value, used)) = leb_u32(rest, what)? else {
            return Ok(None);
        };
        self.pos += used;
        Ok(Some(value))
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn name(&mut self, limits: &Limits, what: &'static str) -> Result<Option<String>, FrameError> {
        let Some(len) = self.leb_u32(what)? else {
            return Ok(None);
        };
        if len > limits.max_name {
            return Err(FrameError::NameTooLong {
                what,
                len: len.into(),
                max: limits.max_name,
            });
        }
        let Some(bytes) = self.bytes(len as usize) else {
            return Ok(None);
        };
        core::str::from_utf8(bytes)
            .map(|s| Some(s.to_string()))
            .map_err(|_| FrameError::NotUtf8(what))
    }

    fn frame_header(&mut self, limits: &Limits) -> Result<Option<(Vec<usize>, u32)>, FrameError> {
        let Some(depth) = self.leb_u32("frame path")? else {
            return Ok(None);
        };
        if depth > limits.max_path_depth {
            return Err(FrameError::PathTooDeep {
                len: depth.into(),
                max: limits.max_path_depth,
            });
        }
        let mut path = Vec::new();
        for _ in 0..depth {
            let Some(i) = self.leb_u32("frame path")? else {
                return Ok(None);
            };
            if i > limits.max_list {
                return Err(FrameError::PathIndexTooLarge {
                    index: i.into(),
                    max: limits.max_list,
                });
            }
            path.push(i as usize);
        }
        let Some(len) = self.leb_u32("frame length")? else {
            return Ok(None);
        };
        if len > limits.max_frame {
            return Err(FrameError::FrameTooLarge {
                len: len.into(),
                max: limits.max_frame,
            });
        }
        Ok(Some((path, len)))
    }

    fn call(&mut self, limits: &Limits) -> Result<Option<CallHeader>, FrameError> {
        let Some(instance) = self.name(limits, "instance name")? else {
            return Ok(None);
        };
        let Some(func) = self.name(limits, "function name")? else {
            return Ok(None);
        };
        let Some(count) = self.leb_u32("header count")? else {
            return Ok(None);
        };
        if count as usize > crate::caller::MAX_HEADERS {
            return Err(FrameError::TooManyHeaders {
                count: count.into(),
                max: crate::caller::MAX_HEADERS,
            });
        }
        let mut headers = Vec::new();
        for _ in 0..count {
            let Some(k) = self.name(limits, "header name")? else {
                return Ok(None);
            };
            let Some(v) = self.name(limits, "header value")? else {
                return Ok(None);
            };
            headers.push((k, v));
        }
        Ok(Some(CallHeader {
            instance,
            func,
            headers,
        }))
    }
}

/// An unsigned LEB128 `u32` at the front of `buf`: its value and how many
/// bytes it took, or `None` while more bytes are needed.
///
/// # Errors
///
/// [`FrameError::Leb128`] naming `what` when it is longer than a `u32`.
pub fn leb_u32(buf: &[u8], what: &'static str) -> Result<Option<(u32, usize)>, FrameError> {
    let mut value: u64 = 0;
    for (i, b) in buf.iter().take(5).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = u32::try_from(value).map_err(|_| FrameError::Leb128(what))?;
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 5 {
        return Err(FrameError::Leb128(what));
    }
    Ok(None)
}

/// Appends `n` as unsigned LEB128.
pub fn put_leb_u32(buf: &mut BytesMut, n: u32) {
    put_leb_u64(buf, n.into());
}

/// Appends `n` as unsigned LEB128.
pub fn put_leb_u64(buf: &mut BytesMut, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf.put_u8(b);
            return;
        }
        buf.put_u8(b | 0x80);
    }
}

fn put_name(buf: &mut BytesMut, s: &str) {
    put_leb_u32(buf, u32::try_from(s.len()).unwrap_or(u32::MAX));
    buf.put_slice(s.as_bytes());
}

/// Appends a plain-dialect call header: version byte, instance, function.
pub fn put_plain_header(buf: &mut BytesMut, instance: &str, func: &str) {
    buf.put_u8(PLAIN_VERSION);
    put_name(buf, instance);
    put_name(buf, func);
}

/// Appends the pooled preface (the server's answer).
pub fn put_preface(buf: &mut BytesMut) {
    buf.put_slice(&POOL_PREFACE);
}

/// Appends the client's line preface.
pub fn put_line_preface(buf: &mut BytesMut) {
    buf.put_slice(&LINE_PREFACE);
}

/// The length of the client preface at the front of `buf` (either form);
/// `Some(0)` when more bytes are needed, `None` when it is neither.
fn preface_len(buf: &[u8]) -> Option<usize> {
    let mut partial = false;
    for preface in [&POOL_PREFACE[..], &LINE_PREFACE[..]] {
        if buf.len() >= preface.len() {
            if buf[..preface.len()] == *preface {
                return Some(preface.len());
            }
        } else if preface.starts_with(buf) {
            partial = true;
        }
    }
    partial.then_some(0)
}

/// Appends a pooled `CALL`.
pub fn put_call(buf: &mut BytesMut, instance: &str, func: &str, headers: &[(&str, &str)]) {
    buf.put_u8(tag::CALL);
    put_name(buf, instance);
    put_name(buf, func);
    put_leb_u32(buf, u32::try_from(headers.len()).unwrap_or(u32::MAX));
    for (k, v) in headers {
        put_name(buf, k);
        put_name(buf, v);
    }
}

/// Appends a frame header (the pooled `DATA` tag first) for `len` bytes on `path`;
/// the data follows it.
pub fn put_frame_header(buf: &mut BytesMut, dialect: Dialect, path: &[usize], len: u32) {
    if dialect == Dialect::Pooled {
        buf.put_u8(tag::DATA);
    }
    put_leb_u32(buf, u32::try_from(path.len()).unwrap_or(u32::MAX));
    for i in path {
        put_leb_u32(buf, u32::try_from(*i).unwrap_or(u32::MAX));
    }
    put_leb_u32(buf, len);
}

/// Appends a whole frame.
pub fn put_frame(buf: &mut BytesMut, dialect: Dialect, path: &[usize], data: &[u8]) {
    put_frame_header(
        buf,
        dialect,
        path,
        u32::try_from(data.len()).unwrap_or(u32::MAX),
    );
    buf.put_slice(data);
}

/// Appends a pooled `END`.
pub fn put_end(buf: &mut BytesMut) {
    buf.put_u8(tag::END);
}

/// Appends a pooled `GOAWAY`.
pub fn put_goaway(buf: &mut BytesMut) {
    buf.put_u8(tag::GOAWAY);
}

/// Appends a pooled `ERROR` with `text` (cut to [`MAX_ERROR_TEXT`] bytes).
pub fn put_error(buf: &mut BytesMut, text: &str) {
    let mut end = text.len().min(MAX_ERROR_TEXT as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    buf.put_u8(tag::ERROR);
    put_name(buf, &text[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut Parser, buf: &mut BytesMut) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(ev) = parser.next(buf).unwrap() {
            out.push(ev);
        }
        out
    }

    #[test]
    fn plain_header_and_frames_parse_byte_by_byte() {
        let mut wire = BytesMut::new();
        put_plain_header(&mut wire, "wrpc:keyvalue/store@0.2.0-draft", "get");
        put_frame(&mut wire, Dialect::Plain, &[], b"\x01b\x01k");
        put_frame(&mut wire, Dialect::Plain, &[1, 0], b"xyz");
        let mut parser = Parser::server(Limits::DEFAULT);
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            events.extend(all(&mut parser, &mut buf));
        }
        assert_eq!(parser.dialect(), Some(Dialect::Plain));
        assert_eq!(
            events[0],
            Event::Call(CallHeader {
                instance: "wrpc:keyvalue/store@0.2.0-draft".into(),
                func: "get".into(),
                headers: vec![],
            })
        );
        let data: Vec<(Vec<usize>, Vec<u8>)> = events[1..]
            .iter()
            .map(|e| match e {
                Event::Data { path, bytes, .. } => (path.clone(), bytes.to_vec()),
                other => panic!("{other:?}"),
            })
            .collect();
        let root: Vec<u8> = data
            .iter()
            .filter(|(p, _)| p.is_empty())
            .flat_map(|(_, b)| b.clone())
            .collect();
        let nested: Vec<u8> = data
            .iter()
            .filter(|(p, _)| *p == [1, 0])
            .flat_map(|(_, b)| b.clone())
            .collect();
        assert_eq!(root, b"\x01b\x01k");
        assert_eq!(nested, b"xyz");
    }

    #[test]
    fn pooled_calls_follow_each_other() {
        let mut wire = BytesMut::new();
        put_preface(&mut wire);
        put_call(&mut wire, "i", "f", &[("wrpc-workload", "w")]);
        put_frame(&mut wire, Dialect::Pooled, &[], b"ab");
        put_end(&mut wire);
        put_call(&mut wire, "i", "g", &[]);
        put_end(&mut wire);
        let mut parser = Parser::server(Limits::DEFAULT);
        let events = all(&mut parser, &mut wire);
        assert_eq!(events[0], Event::Preface);
        assert!(
            matches!(&events[1], Event::Call(h) if h.func == "f" && h.headers == [("wrpc-workload".to_string(), "w".to_string())])
        );
        assert!(
            matches!(&events[2], Event::Data { path, bytes, last: true } if path.is_empty() && &bytes[..] == b"ab")
        );
        assert_eq!(events[3], Event::End);
        assert!(matches!(&events[4], Event::Call(h) if h.func == "g"));
        assert_eq!(events[5], Event::End);
        assert!(wire.is_empty());
    }

    #[test]
    fn client_reads_errors_and_goaway() {
        let mut wire = BytesMut::new();
        put_preface(&mut wire);
        put_error(&mut wire, "no such function");
        put_goaway(&mut wire);
        let mut parser = Parser::client(Limits::DEFAULT, Dialect::Pooled);
        let events = all(&mut parser, &mut wire);
        assert_eq!(
            events,
            [
                Event::Preface,
                Event::Error("no such function".into()),
                Event::GoAway
            ]
        );
    }

    #[test]
    fn declared_lengths_are_checked_before_their_bytes() {
        let limits = Limits::DEFAULT;
        // A frame declaring 4 GiB - 1: refused from its header alone.
        let mut wire = BytesMut::new();
        put_plain_header(&mut wire, "i", "f");
        wire.put_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut p = Parser::server(limits);
        assert!(matches!(p.next(&mut wire), Ok(Some(Event::Call(_)))));
        assert_eq!(
            p.next(&mut wire),
            Err(FrameError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: limits.max_frame
            })
        );
        // A name declaring 4 GiB - 1.
        let mut wire = BytesMut::from(&[0u8, 0xff, 0xff, 0xff, 0xff, 0x0f][..]);
        let err = Parser::server(limits).next(&mut wire).unwrap_err();
        assert_eq!(err.limit(), Some("max-name"));
        // A path of 2^32 - 1 elements.
        let mut wire = BytesMut::new();
        put_plain_header(&mut wire, "i", "f");
        wire.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut p = Parser::server(limits);
        p.next(&mut wire).unwrap();
        assert_eq!(
            p.next(&mut wire).unwrap_err().limit(),
            Some("max-path-depth")
        );
        // Garbage.
        let mut wire = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert_eq!(
            Parser::server(limits).next(&mut wire),
            Err(FrameError::UnsupportedVersion(b'G'))
        );
        // An overlong LEB128.
        let mut wire = BytesMut::from(&[0u8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01][..]);
        assert_eq!(
            Parser::server(limits).next(&mut wire),
            Err(FrameError::Leb128("instance name"))
        );
    }

    #[test]
    fn large_frames_arrive_in_pieces_without_buffering_the_whole() {
        let mut wire = BytesMut::new();
        put_preface(&mut wire);
        put_frame_header(&mut wire, Dialect::Pooled, &[0], 10);
        let mut p = Parser::client(Limits::DEFAULT, Dialect::Pooled);
        assert_eq!(p.next(&mut wire), Ok(Some(Event::Preface)));
        assert_eq!(p.next(&mut wire), Ok(None));
        wire.put_slice(b"0123");
        assert!(
            matches!(p.next(&mut wire), Ok(Some(Event::Data { last: false, ref bytes, .. })) if &bytes[..] == b"0123")
        );
        wire.put_slice(b"456789");
        assert!(
            matches!(p.next(&mut wire), Ok(Some(Event::Data { last: true, ref bytes, .. })) if &bytes[..] == b"456789")
        );
        assert!(p.at_boundary());
    }

    #[test]
    fn a_server_takes_either_preface_byte_by_byte() {
        for preface in [&POOL_PREFACE[..], &LINE_PREFACE[..]] {
            let mut p = Parser::server(Limits::DEFAULT);
            let mut wire = BytesMut::new();
            for (i, b) in preface.iter().enumerate() {
                wire.put_u8(*b);
                let want = if i + 1 == preface.len() {
                    Some(Event::Preface)
                } else {
                    None
                };
                assert_eq!(p.next(&mut wire), Ok(want));
            }
            assert_eq!(p.dialect(), Some(Dialect::Pooled));
        }
        let mut wire = BytesMut::from(&[0xFE, b'w', b'p', 0x03][..]);
        assert_eq!(
            Parser::server(Limits::DEFAULT).next(&mut wire),
            Err(FrameError::UnsupportedVersion(0xFE))
        );
    }
}
