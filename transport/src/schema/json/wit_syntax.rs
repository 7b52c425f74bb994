//! WIT-style values: the text form of WIT values that `wasm-tools` and
//! wasmtime users write, read against the parameter's [`Type`] into the JSON
//! form [`encode`](super::encode) takes, so both forms share one encoder.
//!
//! | WIT | text |
//! |---|---|
//! | `bool` | `true`, `false` |
//! | integers | `42`, `-7` |
//! | floats | `1.5`, `-2e10`, `nan`, `inf`, `-inf` |
//! | `char` | `'a'`, `'\n'`, `'\u{1F600}'` |
//! | `string` | `"text"` (escapes `\n \t \r \\ \' \" \u{…}`) |
//! | `list<T>` | `[v, v]`; `list<u8>` also `"text"` (its UTF-8) |
//! | `tuple<…>` | `(v, v)` |
//! | `record` | `{field-name: v, …}`; an `option` field may be left out (none) |
//! | `variant` | `case`, `case(v)` |
//! | `enum` | `case` |
//! | `option<T>` | `some(v)`, `none` |
//! | `result<T, E>` | `ok`, `ok(v)`, `err`, `err(v)` |
//! | `flags` | `{flag-a, flag-b}`, `{}` |
//!
//! Whitespace may separate tokens; lists, tuples, records and flags take a
//! trailing comma. A name may be written with WIT's `%` prefix (`%list`).

use serde_json::{Map, Value};

use super::unsupported;
use crate::schema::codec::{EncodeError, Step};
use crate::schema::Type;

/// Deepest nesting of brackets read (as deep as `serde_json` reads JSON).
const MAX_NESTING: u32 = 128;

/// Why text is not a value of the type.
#[derive(Debug)]
pub(super) enum Error {
    /// Not WIT value syntax: what is wrong at byte `at` of the text.
    Syntax {
        /// Byte offset in the text.
        at: usize,
        /// What is wrong there.
        message: String,
        /// Whether it is a quoted name in braces, as JSON writes object keys.
        quoted_name: bool,
    },
    /// Well-formed, but not a value of the type.
    Value(EncodeError),
}

impl Error {
    /// The error as `encode_arg` reports it: syntax errors with their place
    /// in `text` (`at column 7: …`), value errors with their path.
    pub(super) fn into_encode_error(self, text: &str) -> EncodeError {
        match self {
            Self::Syntax { at, message, .. } => {
                EncodeError::new(format!("at {}: {message}", position(text, at)))
            }
            Self::Value(err) => err,
        }
    }
}

/// `column N` (1-based, in characters), or `line L, column N` when `text`
/// has several lines.
fn position(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    if text.contains('\n') {
        format!("line {line}, column {column}")
    } else {
        format!("column {column}")
    }
}

/// Reads `text`, all of it, as a WIT-style value of `ty`, into the JSON form
/// [`encode`](super::encode) takes for `ty`.
pub(super) fn parse(ty: &Type, text: &str) -> Result<Value, Error> {
    let mut parser = Parser { text, pos: 0 };
    let node = parser.value(0)?;
    parser.skip_ws();
    if let Some(c) = parser.peek() {
        return Err(parser.error(format!("unexpected `{c}` after the value")));
    }
    convert(ty, &node, text).map_err(Error::Value)
}

/// A value as written, before its type is applied.
#[derive(Debug)]
struct Node {
    kind: Kind,
    /// Where it starts and ends in the text, in bytes.
    start: usize,
    end: usize,
}

#[derive(Debug)]
enum Kind {
    /// A number as written (`42`, `-1.5e3`, `-inf`): its text is the node's.
    Number,
    /// `'c'`.
    Char(char),
    /// `"…"`, escapes resolved.
    Str(String),
    /// A name: `true`, `none`, `ok`, a case, `nan`, `inf`.
    Label(String),
    /// `name(payload)`.
    Case(String, Box<Node>),
    /// `[…]`.
    List(Vec<Node>),
    /// `(…)`.
    Tuple(Vec<Node>),
    /// `{…}`: record fields (`name: value`) or flags (`name`).
    Brace(Vec<(String, Option<Node>)>),
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '%'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// A character as error messages show it.
fn shown_char(c: Option<char>) -> String {
    match c {
        Some(c) if c.is_control() => format!("{:?}", c),
        Some(c) => format!("`{c}`"),
        None => "the end".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> Error {
        Error::Syntax {
            at,
            message: message.into(),
            quoted_name: false,
        }
    }

    fn value(&mut self, depth: u32) -> Result<Node, Error> {
        self.skip_ws();
        if depth >= MAX_NESTING {
            return Err(self.error(format!("nested deeper than {MAX_NESTING} levels")));
        }
        let start = self.pos;
        let kind = match self.peek() {
            Some('[') => Kind::List(self.sequence(']', depth)?),
            Some('(') => Kind::Tuple(self.sequence(')', depth)?),
            Some('{') => self.brace(depth)?,
            Some('"') => Kind::Str(self.string()?),
            Some('\'') => Kind::Char(self.char()?),
            Some(c) if c == '-' || c.is_ascii_digit() => {
                self.number()?;
                Kind::Number
            }
            Some(c) if is_label_start(c) => {
                let name = self.label()?;
                let end = self.pos;
                self.skip_ws();
                if self.peek() == Some('(') {
                    self.pos += 1;
                    let payload = self.value(depth + 1)?;
                    self.skip_ws();
                    match self.peek() {
                        Some(')') => self.pos += 1,
                        c => {
                            return Err(self.error(format!(
                                "expected `)` closing `{name}(`, got {}",
                                shown_char(c)
                            )))
                        }
                    }
                    Kind::Case(name, Box::new(payload))
                } else {
                    self.pos = end;
                    Kind::Label(name)
                }
            }
            c => return Err(self.error(format!("expected a value, got {}", shown_char(c)))),
        };
        Ok(Node {
            kind,
            start,
            end: self.pos,
        })
    }

    /// `[a, b, …]` or `(a, b, …)`, a trailing comma allowed.
    fn sequence(&mut self, close: char, depth: u32) -> Result<Vec<Node>, Error> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                c => {
                    return Err(
                        self.error(format!("expected `,` or `{close}`, got {}", shown_char(c)))
                    )
                }
            }
        }
    }

    /// `{name: value, …}` (a record) or `{name, …}` (flags).
    fn brace(&mut self, depth: u32) -> Result<Kind, Error> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    return Ok(Kind::Brace(entries));
                }
                Some(c) if is_label_start(c) => {}
                c => {
                    return Err(Error::Syntax {
                        at: self.pos,
                        message: format!("expected a field or flag name, got {}", shown_char(c)),
                        quoted_name: c == Some('"'),
                    })
                }
            }
            let name = self.label()?;
            self.skip_ws();
            let value = if self.peek() == Some(':') {
                self.pos += 1;
                Some(self.value(depth + 1)?)
            } else {
                None
            };
            entries.push((name, value));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                c => return Err(self.error(format!("expected `,` or `}}`, got {}", shown_char(c)))),
            }
        }
    }

    /// A name, `%` prefix dropped.
    fn label(&mut self) -> Result<String, Error> {
        if self.peek() == Some('%') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                return Err(self.error(format!(
                    "expected a name after `%`, got {}",
                    shown_char(self.peek())
                )));
            }
        }
        let start = self.pos;
        while self.peek().is_some_and(is_label_char) {
            self.pos += 1;
        }
        Ok(self.text[start..self.pos].to_string())
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?` or `-inf`; the node keeps the text.
    fn number(&mut self) -> Result<(), Error> {
        if self.peek() == Some('-') {
            self.pos += 1;
            let rest = &self.text[self.pos..];
            if rest.starts_with("inf") && !rest[3..].starts_with(is_label_char) {
                self.pos += 3;
                return Ok(());
            }
        }
        let digits = |p: &mut Self| {
            let start = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos > start
        };
        if !digits(self) {
            return Err(self.error(format!(
                "expected a number after `-`, got {}",
                shown_char(self.peek())
            )));
        }
        let rest = &self.text.as_bytes()[self.pos..];
        if rest.first() == Some(&b'.') && rest.get(1).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
            digits(self);
        }
        let rest = &self.text.as_bytes()[self.pos..];
        if matches!(rest.first(), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(rest.get(1), Some(b'+' | b'-')));
            if rest.get(1 + sign).is_some_and(u8::is_ascii_digit) {
                self.pos += 1 + sign;
                digits(self);
            }
        }
        Ok(())
    }

    /// `"…"`, escapes resolved.
    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape()?),
                Some(c) => out.push(c),
                None => return Err(self.error_at(start, "the string is not closed")),
            }
        }
    }

    /// `'c'`.
    fn char(&mut self) -> Result<char, Error> {
        let start = self.pos;
        self.pos += 1;
        let c = match self.bump() {
            Some('\\') => self.escape()?,
            Some('\'') => return Err(self.error_at(start, "an empty character literal")),
            Some(c) => c,
            None => return Err(self.error_at(start, "the character literal is not closed")),
        };
        match self.bump() {
            Some('\'') => Ok(c),
            Some(_) => Err(self.error_at(
                start,
                "a character literal holds one character (strings take double quotes)",
            )),
            None => Err(self.error_at(start, "the character literal is not closed")),
        }
    }

    /// What follows a `\` (just read) in a string or character literal.
    fn escape(&mut self) -> Result<char, Error> {
        let at = self.pos - 1;
        match self.bump() {
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some(c @ ('\\' | '\'' | '"')) => Ok(c),
            Some('u') => {
                let rest = &self.text[self.pos..];
                let code = rest
                    .strip_prefix('{')
                    .and_then(|r| r.split_once('}'))
                    .map(|(hex, _)| hex)
                    .filter(|hex| {
                        (1..=6).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    });
                let c = code
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .and_then(char::from_u32);
                match (code, c) {
                    (Some(hex), Some(c)) => {
                        self.pos += hex.len() + 2;
                        Ok(c)
                    }
                    (Some(hex), None) => {
                        Err(self
                            .error_at(at, format!("`\\u{{{hex}}}` is not a Unicode scalar value")))
                    }
                    (None, _) => Err(self.error_at(
                        at,
                        "expected `\\u{…}` with 1 to 6 hex digits, as in `\\u{1F600}`",
                    )),
                }
            }
            Some(c) => Err(self.error_at(
                at,
                format!("unknown escape `\\{c}` (escapes: \\n \\t \\r \\\\ \\' \\\" \\u{{…}})"),
            )),
            None => Err(self.error_at(at, "the string is not closed")),
        }
    }
}

/// The node as written, in a few characters, for error messages.
fn shown(node: &Node, text: &str) -> String {
    const MAX: usize = 40;
    let written = &text[node.start..node.end];
    match written.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &written[..at]),
        None => written.to_string(),
    }
}

/// What WIT-style text a type takes, for error messages (empty when obvious).
fn hint(ty: &Type) -> String {
    let join = |names: Vec<String>| names.join(", ");
    match ty {
        Type::Bool => " (true or false)".into(),
        Type::Char => " (a character in single quotes)".into(),
        Type::String => " (a string in double quotes)".into(),
        Type::List(elem) if **elem == Type::U8 => {
            " (a string in double quotes or a list of bytes)".into()
        }
        Type::List(_) => " ([…])".into(),
        Type::Option(_) => " (some(…) or none)".into(),
        Type::Result { ok, err } => {
            let side = |name: &str, ty: &Option<Box<Type>>| match ty {
                Some(_) => format!("{name}(…)"),
                None => name.to_string(),
            };
            format!(" ({} or {})", side("ok", ok), side("err", err))
        }
        Type::Tuple(tys) => format!(" (a tuple of {}: (…, …))", tys.len()),
        Type::Record(r) => format!(
            " ({{field: …}}; fields: {})",
            join(r.fields.iter().map(|(n, _)| n.clone()).collect())
        ),
        Type::Variant(v) => format!(" (cases: {})", case_names(&v.cases)),
        Type::Enum(e) => format!(" (one of: {})", join(e.cases.clone())),
        Type::Flags(f) => format!(" ({{flag, …}}; flags: {})", join(f.flags.clone())),
        _ => String::new(),
    }
}

/// `none, circle(…), poly(…)`.
fn case_names(cases: &[(String, Option<Type>)]) -> String {
    cases
        .iter()
        .map(|(name, ty)| match ty {
            Some(_) => format!("{name}(…)"),
            None => name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `node` as a value of `ty`, in the JSON form `encode` takes.
fn convert(ty: &Type, node: &Node, text: &str) -> Result<Value, EncodeError> {
    let mismatch = || {
        EncodeError::new(format!(
            "expected {ty}{}, got {}",
            hint(ty),
            shown(node, text)
        ))
    };
    let written = &text[node.start..node.end];
    match (ty, &node.kind) {
        (Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_), _) => {
            Err(unsupported(&ty.to_string()))
        }
        (Type::Bool, Kind::Label(b)) if b == "true" || b == "false" => Ok(Value::Bool(b == "true")),
        (Type::U8, Kind::Number) => unsigned(written, u8::MAX.into()).ok_or_else(mismatch),
        (Type::U16, Kind::Number) => unsigned(written, u16::MAX.into()).ok_or_else(mismatch),
        (Type::U32, Kind::Number) => unsigned(written, u32::MAX.into()).ok_or_else(mismatch),
        (Type::U64, Kind::Number) => unsigned(written, u64::MAX).ok_or_else(mismatch),
        (Type::S8, Kind::Number) => {
            signed(written, i8::MIN.into(), i8::MAX.into()).ok_or_else(mismatch)
        }
        (Type::S16, Kind::Number) => {
            signed(written, i16::MIN.into(), i16::MAX.into()).ok_or_else(mismatch)
        }
        (Type::S32, Kind::Number) => {
            signed(written, i32::MIN.into(), i32::MAX.into()).ok_or_else(mismatch)
        }
        (Type::S64, Kind::Number) => signed(written, i64::MIN, i64::MAX).ok_or_else(mismatch),
        (Type::F32 | Type::F64, Kind::Number | Kind::Label(_)) => {
            let x = match &node.kind {
                Kind::Label(l) if l == "nan" => f64::NAN,
                Kind::Label(l) if l == "inf" => f64::INFINITY,
                Kind::Number if written == "-inf" => f64::NEG_INFINITY,
                Kind::Number => written.parse::<f64>().map_err(|_| mismatch())?,
                _ => return Err(mismatch()),
            };
            // Only `-inf`, `inf` and `nan` are not finite: `1e999` is out
            // of range, as is what an f32 rounds to infinity.
            let fits = x.is_finite() && (*ty != Type::F32 || (x as f32).is_finite());
            let out_of_range = matches!(node.kind, Kind::Number) && written != "-inf" && !fits;
            if out_of_range {
                return Err(EncodeError::new(format!(
                    "expected {ty}, got {} (out of range)",
                    shown(node, text)
                )));
            }
            Ok(float(x))
        }
        (Type::Char, Kind::Char(c)) => Ok(Value::String(c.to_string())),
        (Type::String, Kind::Str(s)) => Ok(Value::String(s.clone())),
        // `encode` takes a `list<u8>` string as its UTF-8.
        (Type::List(elem), Kind::Str(s)) if **elem == Type::U8 => Ok(Value::String(s.clone())),
        (Type::FixedList(elem, _), Kind::Str(s)) if **elem == Type::U8 => {
            Ok(Value::String(s.clone()))
        }
        (Type::FixedList(elem, n), Kind::List(items)) if items.len() == *n as usize => items
            .iter()
            .enumerate()
            .map(|(i, item)| convert(elem, item, text).map_err(|e| e.within(Step::Index(i))))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        (Type::List(elem), Kind::List(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| convert(elem, item, text).map_err(|e| e.within(Step::Index(i))))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        (Type::Option(_), Kind::Label(l)) if l == "none" => Ok(Value::Null),
        (Type::Option(inner), Kind::Case(l, payload)) if l == "some" => {
            let value =
                convert(inner, payload, text).map_err(|e| e.within(Step::Name(l.clone())))?;
            // `option<option<T>>`: the outer some is `{"some": …}` in JSON.
            Ok(if matches!(**inner, Type::Option(_)) {
                Value::Object(Map::from_iter([(l.clone(), value)]))
            } else {
                value
            })
        }
        (Type::Result { ok, err }, Kind::Label(side) | Kind::Case(side, _))
            if side == "ok" || side == "err" =>
        {
            let side_ty = if side == "ok" { ok } else { err };
            let payload = case_payload(side_ty.as_deref(), node, text)
                .map_err(|e| e.within(Step::Name(side.clone())))?;
            Ok(Value::Object(Map::from_iter([(side.clone(), payload)])))
        }
        (Type::Tuple(tys), Kind::Tuple(items)) if tys.len() == items.len() => tys
            .iter()
            .zip(items)
            .enumerate()
            .map(|(i, (ty, item))| convert(ty, item, text).map_err(|e| e.within(Step::Index(i))))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        (Type::Record(r), Kind::Brace(entries)) => {
            let mut object = Map::new();
            for (name, value) in entries {
                let Some((_, field_ty)) = r.fields.iter().find(|(n, _)| n == name) else {
                    let known: Vec<&str> = r.fields.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(EncodeError::new(format!(
                        "unknown field `{name}` of {ty} (fields: {})",
                        known.join(", ")
                    )));
                };
                if object.contains_key(name) {
                    return Err(EncodeError::new(format!("field `{name}` given twice")));
                }
                let Some(value) = value else {
                    return Err(EncodeError::new(format!(
                        "field `{name}` of {ty} has no value (write `{name}: …`)"
                    )));
                };
                let value = convert(field_ty, value, text)
                    .map_err(|e| e.within(Step::Name(name.clone())))?;
                object.insert(name.clone(), value);
            }
            for (name, field_ty) in &r.fields {
                if !object.contains_key(name) {
                    if !matches!(field_ty, Type::Option(_)) {
                        return Err(EncodeError::new(format!("missing field `{name}` of {ty}")));
                    }
                    object.insert(name.clone(), Value::Null);
                }
            }
            Ok(Value::Object(object))
        }
        (Type::Variant(v), Kind::Label(case) | Kind::Case(case, _)) => {
            let Some((_, case_ty)) = v.cases.iter().find(|(n, _)| n == case) else {
                return Err(EncodeError::new(format!(
                    "unknown case `{case}` of {ty}{}",
                    hint(ty)
                )));
            };
            let payload = case_payload(case_ty.as_ref(), node, text)
                .map_err(|e| e.within(Step::Name(case.clone())))?;
            Ok(match payload {
                Value::Null if case_ty.is_none() => Value::String(case.clone()),
                payload => Value::Object(Map::from_iter([(case.clone(), payload)])),
            })
        }
        (Type::Enum(e), Kind::Label(case)) => {
            if e.cases.contains(case) {
                Ok(Value::String(case.clone()))
            } else {
                Err(EncodeError::new(format!(
                    "unknown case `{case}` of {ty}{}",
                    hint(ty)
                )))
            }
        }
        (Type::Flags(f), Kind::Brace(entries)) if entries.iter().all(|(_, v)| v.is_none()) => {
            let mut set = Vec::with_capacity(entries.len());
            for (name, _) in entries {
                if !f.flags.contains(name) {
                    return Err(EncodeError::new(format!(
                        "unknown flag `{name}` of {ty} (flags: {})",
                        f.flags.join(", ")
                    )));
                }
                set.push(Value::String(name.clone()));
            }
            Ok(Value::Array(set))
        }
        _ => Err(mismatch()),
    }
}

/// The payload of `case` or `case(v)` (a `Kind::Label` or `Kind::Case`
/// node): required when the case has a type, else absent (`null`).
fn case_payload(ty: Option<&Type>, node: &Node, text: &str) -> Result<Value, EncodeError> {
    match (ty, &node.kind) {
        (Some(ty), Kind::Case(_, payload)) => convert(ty, payload, text),
        (Some(ty), _) => Err(EncodeError::new(format!(
            "expected a payload of type {ty}, as in `{}(…)`",
            shown(node, text)
        ))),
        (None, Kind::Case(name, _)) => Err(EncodeError::new(format!(
            "this case has no payload (write `{name}`), got {}",
            shown(node, text)
        ))),
        (None, _) => Ok(Value::Null),
    }
}

/// An integer written as `-?digits`, if in `0..=max`.
fn unsigned(written: &str, max: u64) -> Option<Value> {
    integer(written)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n <= max)
        .map(Value::from)
}

/// An integer written as `-?digits`, if in `min..=max`.
fn signed(written: &str, min: i64, max: i64) -> Option<Value> {
    integer(written)
        .and_then(|n| i64::try_from(n).ok())
        .filter(|n| (min..=max).contains(n))
        .map(Value::from)
}

fn integer(written: &str) -> Option<i128> {
    let digits = written.strip_prefix('-').unwrap_or(written);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    written.parse().ok()
}

/// A float in the JSON form `encode` takes (non-finite ones as strings).
fn float(x: f64) -> Value {
    match serde_json::Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".into()),
        None if x > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

#[cfg(test)]
mod tests;
