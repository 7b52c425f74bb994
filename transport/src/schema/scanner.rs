//! Resumable validation of values arriving in pieces: the checks the
//! decoder ([`codec`](super::codec)) makes, with the same errors.
//!
//! The scanner is a state machine over an explicit stack of open records, tuples and lists (at
//! most `max_depth` of them) plus the partial state of the token being read (a LEB128 integer,
//! a `char`, a string's last code point, a count of bytes to skip). Each input byte is looked at
//! once; byte strings are skipped by arithmetic. The types are flattened once, in
//! [`Scanner::new`], into an arena the stack refers to by index.

use std::sync::Arc;

use super::{flags_upstream_padding, ValueError, ValueLimits, WireType};

/// Widths of LEB128 integers, with the checks `leb128-tokio` 0.1.8 applies to the last byte.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Leb {
    /// 16 bits: 3 bytes, the last at most `0x03` (unsigned) or sign-extending 2 bits.
    W16,
    /// 32 bits: 5 bytes, the last at most `0x0f` (unsigned) or sign-extending 4 bits.
    W32,
    /// 64 bits: 10 bytes, the last at most `0x01` (unsigned) or sign-extending 1 bit.
    W64,
}

impl Leb {
    /// Index of the last allowed byte, the largest unsigned last byte, and the shift that
    /// leaves only the sign-extension bits of a signed last byte.
    pub(crate) fn shape(self) -> (usize, u8, u32) {
        match self {
            Self::W16 => (2, 0x03, 1),
            Self::W32 => (4, 0x0f, 3),
            Self::W64 => (9, 0x01, 0),
        }
    }
}

/// Validates a tuple of values arriving in pieces: each byte is examined once.
///
/// Accepts and rejects what the decoder does on the concatenated pieces, with the same errors,
/// however the input is split.
#[derive(Debug)]
pub struct Scanner {
    plan: Arc<ScanPlan>,
    limits: ValueLimits,
    /// The next element of the tuple to scan once `stack` is empty.
    next_root: usize,
    stack: Vec<Frame>,
    cur: Cur,
    consumed: u64,
    /// Set on completion (`Ok`) or on the first error.
    outcome: Option<Result<(), ValueError>>,
    /// The zero bytes a `wit-bindgen-wrpc` 0.11 peer may write after the
    /// last token read, when that was a flags value (see
    /// [`Flags::upstream_padding`](super::Flags::upstream_padding)).
    padding: usize,
    /// How many more zero-size elements (`list<tuple<>>`) may be declared:
    /// the decoder's budget for values the input does not bound.
    zero_left: u64,
}

/// A tuple of types flattened for scanning: built once per function and
/// shared by every call's [`Scanner`].
#[derive(Debug)]
pub struct ScanPlan {
    /// The flattened types; the first `roots` nodes are the tuple's elements.
    nodes: Vec<Node>,
    /// Children of records, tuples (always `Some`) and variants (`None`: case without payload).
    kids: Vec<Option<usize>>,
    /// For each node whose values occupy no bytes (`WireType::is_zero_size`):
    /// what a decoder builds for one of them, unbounded by the input.
    zero: Vec<Option<Zero>>,
    roots: usize,
}

/// One value of a zero-size node, as the decoder builds it.
#[derive(Clone, Copy, Debug)]
struct Zero {
    /// The zero-size list elements it holds, which count against `max_list`.
    cost: u64,
    /// How deep its compound types nest.
    depth: u32,
}

/// What `n` elements of a zero-size node of `cost` count against `max_list`.
fn elements_cost(n: u64, cost: u64) -> u64 {
    n.saturating_mul(cost.saturating_add(1))
}

/// A [`WireType`] node, its children replaced by arena indices.
#[derive(Clone, Copy, Debug)]
enum Node {
    Bool,
    /// This many raw bytes: `u8`, `s8` (1), `f32` (4), `f64` (8).
    Raw(u8),
    Uleb(Leb),
    Sleb(Leb),
    Char,
    /// A byte string; `true` for `string` (UTF-8), `false` for `list<u8>`-like resources.
    Bytes(bool),
    Enum(u32),
    Flags(u32),
    /// `list<T>` or `stream<T>`; `None` for a stream without an element type.
    List(Option<usize>),
    /// `list<T, N>`: `len` elements of node `elem`, no count.
    Fixed {
        elem: usize,
        len: u32,
    },
    /// A record or tuple: its fields are `kids[first..first + len]`.
    Seq {
        first: usize,
        len: usize,
    },
    /// A variant: its cases are `kids[first..first + len]`.
    Variant {
        first: usize,
        len: usize,
    },
    Option(usize),
    Result(Option<usize>, Option<usize>),
    Future(Option<usize>),
}

/// An open compound value that resumes when its current child completes.
#[derive(Clone, Copy, Debug)]
enum Frame {
    /// Record or tuple fields `kids[next..end]` remain, at nesting `depth`.
    Seq { next: usize, end: usize, depth: u32 },
    /// `left` more elements of node `elem` remain, at nesting `depth`.
    List { elem: usize, left: u64, depth: u32 },
}

/// What the scanner does next.
#[derive(Clone, Copy, Debug)]
enum Cur {
    /// Start a value of node `node` inside `depth` compound types (no bytes read yet).
    Value { node: usize, depth: u32 },
    /// Read (more of) a token.
    Tok(Tok),
    /// The current value is complete: resume the enclosing frame.
    Ret,
}

/// A token being read, with its partial state.
#[derive(Clone, Copy, Debug)]
enum Tok {
    /// `left` raw bytes to skip (never 0).
    Skip(u64),
    /// `flags` with `n` flags; `left` bytes to go (never 0), the last one checked.
    Flags {
        n: u32,
        left: u64,
    },
    Bool,
    /// Unsigned LEB128: byte `i` next, value `x` so far, then `then`.
    Uleb {
        width: Leb,
        i: usize,
        x: u64,
        then: Then,
    },
    /// Signed LEB128: byte `i` next.
    Sleb {
        width: Leb,
        i: usize,
    },
    /// A `char`: the lead byte next if `need == 0`, else `need` continuation bytes, bits `c`.
    Char {
        need: u8,
        c: u32,
    },
    /// A string body: `left` bytes to go (never 0), `utf8` the state at the current byte.
    Str {
        left: u64,
        utf8: Utf8,
    },
    /// The tag byte of option, result or future node `node`, whose payload is at `depth`.
    Tag {
        node: usize,
        depth: u32,
    },
}

/// What an unsigned LEB128 is for.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// A `u16`/`u32`/`u64` value.
    Int,
    /// The case of enum or variant node `node`, whose payload is at `depth`.
    Case { node: usize, depth: u32 },
    /// The length of string, resource, list or stream node `node`, its elements at `depth`.
    Len { node: usize, depth: u32 },
}

/// Incremental UTF-8 validation (Unicode table 3-7, as `std::str::from_utf8`): `need` more
/// continuation bytes, the next one in `lo..=hi`.
#[derive(Clone, Copy, Debug)]
struct Utf8 {
    need: u8,
    lo: u8,
    hi: u8,
}

impl Utf8 {
    /// Between code points.
    const START: Self = Self::cont(0);

    const fn cont(need: u8) -> Self {
        Self::first(need, 0x80, 0xbf)
    }

    const fn first(need: u8, lo: u8, hi: u8) -> Self {
        Self { need, lo, hi }
    }

    fn next(self, b: u8) -> Result<Self, ValueError> {
        if self.need > 0 {
            return if (self.lo..=self.hi).contains(&b) {
                Ok(Self::cont(self.need - 1))
            } else {
                Err(ValueError::BadUtf8)
            };
        }
        Ok(match b {
            0x00..=0x7f => Self::START,
            0xc2..=0xdf => Self::cont(1),
            0xe0 => Self::first(2, 0xa0, 0xbf),
            0xed => Self::first(2, 0x80, 0x9f),
            0xe1..=0xef => Self::cont(2),
            0xf0 => Self::first(3, 0x90, 0xbf),
            0xf1..=0xf3 => Self::cont(3),
            0xf4 => Self::first(3, 0x80, 0x8f),
            _ => return Err(ValueError::BadUtf8),
        })
    }

    /// Validates the next bytes `s` of a string.
    fn chunk(mut self, mut s: &[u8]) -> Result<Self, ValueError> {
        // Finish a code point split by the previous piece, then let `std` validate in bulk.
        while self.need > 0 {
            let Some((&b, rest)) = s.split_first() else {
                return Ok(self);
            };
            self = self.next(b)?;
            s = rest;
        }
        match std::str::from_utf8(s) {
            Ok(_) => Ok(Self::START),
            // Cut off by the end of the piece: carry the partial code point over.
            Err(err) if err.error_len().is_none() => s
                .get(err.valid_up_to()..)
                .unwrap_or_default()
                .iter()
                .try_fold(Self::START, |st, &b| st.next(b)),
            Err(_) => Err(ValueError::BadUtf8),
        }
    }
}

/// Bytes of `left` available in `rest`.
fn avail(left: u64, rest: &[u8]) -> (u64, usize) {
    let n = usize::try_from(left).map_or(rest.len(), |left| left.min(rest.len()));
    (u64::try_from(n).unwrap_or(u64::MAX), n)
}

/// A `Skip` of `n` bytes, or nothing to skip.
fn skip(n: u64) -> Cur {
    if n == 0 {
        Cur::Ret
    } else {
        Cur::Tok(Tok::Skip(n))
    }
}

/// An unsigned LEB128 `u32` read for `then`.
fn uleb32(then: Then) -> Cur {
    Cur::Tok(Tok::Uleb {
        width: Leb::W32,
        i: 0,
        x: 0,
        then,
    })
}

/// Stands in for a node index that is out of range (never happens: indices come from `new`).
const NO_NODE: Node = Node::Seq { first: 0, len: 0 };

impl Scanner {
    /// A scanner for the tuple `types` (a function's params or results, encoded back to back).
    pub fn new(types: Arc<[WireType]>, limits: ValueLimits) -> Self {
        Self::with_plan(ScanPlan::new(&types), limits)
    }

    /// A scanner following `plan` (cheap: the plan is shared).
    pub fn with_plan(plan: Arc<ScanPlan>, limits: ValueLimits) -> Self {
        Self {
            plan,
            limits,
            next_root: 0,
            stack: Vec::new(),
            cur: Cur::Ret,
            consumed: 0,
            outcome: None,
            padding: 0,
            zero_left: limits.max_list.into(),
        }
    }
}

impl ScanPlan {
    /// Flattens the tuple `types` (a function's params or results).
    pub fn new(types: &[WireType]) -> Arc<Self> {
        let mut nodes = vec![NO_NODE; types.len()];
        let mut kids = Vec::new();
        // Flatten iteratively; children always get larger indices than their parent.
        let mut work: Vec<(&WireType, usize)> = types.iter().zip(0..).collect();
        fn alloc<'t>(
            nodes: &mut Vec<Node>,
            ty: &'t WireType,
            work: &mut Vec<(&'t WireType, usize)>,
        ) -> usize {
            let at = nodes.len();
            nodes.push(NO_NODE);
            work.push((ty, at));
            at
        }
        while let Some((ty, at)) = work.pop() {
            let node = match ty {
                WireType::Bool => Node::Bool,
                WireType::U8 | WireType::S8 => Node::Raw(1),
                WireType::F32 => Node::Raw(4),
                WireType::F64 => Node::Raw(8),
                WireType::U16 => Node::Uleb(Leb::W16),
                WireType::U32 => Node::Uleb(Leb::W32),
                WireType::U64 => Node::Uleb(Leb::W64),
                WireType::S16 => Node::Sleb(Leb::W16),
                WireType::S32 => Node::Sleb(Leb::W32),
                WireType::S64 => Node::Sleb(Leb::W64),
                WireType::Char => Node::Char,
                WireType::String => Node::Bytes(true),
                WireType::Resource => Node::Bytes(false),
                WireType::Enum(n) => Node::Enum(*n),
                WireType::Flags(n) => Node::Flags(*n),
                WireType::List(elem) => Node::List(Some(alloc(&mut nodes, elem, &mut work))),
                WireType::FixedList(elem, len) => Node::Fixed {
                    elem: alloc(&mut nodes, elem, &mut work),
                    len: *len,
                },
                WireType::Stream(elem) => {
                    Node::List(elem.as_deref().map(|ty| alloc(&mut nodes, ty, &mut work)))
                }
                WireType::Record(tys) | WireType::Tuple(tys) => {
                    let first = kids.len();
                    for ty in tys {
                        kids.push(Some(alloc(&mut nodes, ty, &mut work)));
                    }
                    Node::Seq {
                        first,
                        len: tys.len(),
                    }
                }
                WireType::Variant(cases) => {
                    let first = kids.len();
                    for ty in cases {
                        kids.push(ty.as_ref().map(|ty| alloc(&mut nodes, ty, &mut work)));
                    }
                    Node::Variant {
                        first,
                        len: cases.len(),
                    }
                }
                WireType::Option(ty) => Node::Option(alloc(&mut nodes, ty, &mut work)),
                WireType::Result { ok, err } => Node::Result(
                    ok.as_deref().map(|ty| alloc(&mut nodes, ty, &mut work)),
                    err.as_deref().map(|ty| alloc(&mut nodes, ty, &mut work)),
                ),
                WireType::Future(ty) => {
                    Node::Future(ty.as_deref().map(|ty| alloc(&mut nodes, ty, &mut work)))
                }
            };
            if let Some(slot) = nodes.get_mut(at) {
                *slot = node;
            }
        }
        // Children come after their parent, so a backward pass sees them first.
        let mut zero: Vec<Option<Zero>> = vec![None; nodes.len()];
        for at in (0..nodes.len()).rev() {
            let z = match nodes.get(at) {
                Some(Node::Seq { first, len }) => {
                    let one = Zero { cost: 0, depth: 1 };
                    kids.iter().skip(*first).take(*len).try_fold(one, |acc, k| {
                        let kid = zero.get((*k)?).copied().flatten()?;
                        Some(Zero {
                            cost: acc.cost.saturating_add(kid.cost),
                            depth: acc.depth.max(kid.depth.saturating_add(1)),
                        })
                    })
                }
                Some(Node::Flags(0)) => Some(Zero { cost: 0, depth: 0 }),
                Some(Node::Fixed { len: 0, .. }) => Some(Zero { cost: 0, depth: 1 }),
                Some(Node::Fixed { elem, len }) => {
                    zero.get(*elem).copied().flatten().map(|e| Zero {
                        cost: elements_cost((*len).into(), e.cost),
                        depth: e.depth.saturating_add(1),
                    })
                }
                _ => None,
            };
            if let Some(slot) = zero.get_mut(at) {
                *slot = z;
            }
        }
        Arc::new(Self {
            nodes,
            kids,
            zero,
            roots: types.len(),
        })
    }

    /// Whether the tuple is empty (a value of it is complete at once).
    pub fn is_empty(&self) -> bool {
        self.roots == 0
    }
}

impl Scanner {
    /// Feeds the next bytes. `Ok(Some(n))` when the tuple ends after the first `n` bytes
    /// of `bytes` (bytes after `n` do not belong to it); `Ok(None)` when more are needed.
    /// After completion or an error, further calls return the same outcome (`Some(0)` / the error).
    /// An empty `types` completes at once with `Some(0)`.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, ValueError> {
        // Fast path for the middle of a byte string, where small pieces are typical. (Once an
        // outcome is set, `cur` is `Ret`.)
        if let (Cur::Tok(Tok::Skip(left)), Ok(n)) = (&mut self.cur, u64::try_from(bytes.len())) {
            if n < *left {
                *left -= n;
                self.consumed = self.consumed.saturating_add(n);
                return Ok(None);
            }
        }
        if let Some(outcome) = &self.outcome {
            return outcome.clone().map(|()| Some(0));
        }
        let mut pos = 0;
        let res = self.run(bytes, &mut pos);
        self.consumed = self
            .consumed
            .saturating_add(u64::try_from(pos).unwrap_or(u64::MAX));
        match &res {
            Ok(Some(_)) => self.outcome = Some(Ok(())),
            Err(err) => {
                self.outcome = Some(Err(err.clone()));
                self.cur = Cur::Ret;
            }
            Ok(None) => {}
        }
        res
    }

    /// Bytes consumed so far (once complete, the tuple's encoded length).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Once complete: how many zero bytes may follow as a `wit-bindgen-wrpc`
    /// 0.11 peer's padding, because the value ended with flags it writes
    /// wider than it reads (17–24 or 33–56 flags).
    pub fn trailing_padding(&self) -> usize {
        self.padding
    }

    /// Advances through `bytes[*pos..]` until the tuple completes or the bytes run out.
    fn run(&mut self, bytes: &[u8], pos: &mut usize) -> Result<Option<usize>, ValueError> {
        loop {
            match self.cur {
                Cur::Value { node, depth } => self.cur = self.start(node, depth)?,
                Cur::Ret => {
                    if !self.resume() {
                        return Ok(Some(*pos));
                    }
                }
                Cur::Tok(tok) => {
                    let rest = bytes.get(*pos..).unwrap_or_default();
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    let (cur, used) = self.token(tok, rest)?;
                    self.padding = match (tok, cur) {
                        (Tok::Flags { n, .. }, Cur::Ret) => flags_upstream_padding(n as usize),
                        _ => 0,
                    };
                    self.cur = cur;
                    *pos = pos.saturating_add(used);
                }
            }
        }
    }

    /// Resumes the innermost open compound after a child completed; `false` when the whole
    /// tuple is complete.
    fn resume(&mut self) -> bool {
        self.cur = match self.stack.last_mut() {
            None if self.next_root < self.plan.roots => {
                let node = self.next_root;
                self.next_root = node.saturating_add(1);
                Cur::Value { node, depth: 0 }
            }
            None => return false,
            Some(Frame::Seq { next, end, depth }) if *next < *end => {
                let field = self.plan.kids.get(*next).copied().flatten();
                *next = next.saturating_add(1);
                match field {
                    Some(node) => Cur::Value {
                        node,
                        depth: *depth,
                    },
                    None => Cur::Ret,
                }
            }
            Some(Frame::List { elem, left, depth }) if *left > 0 => {
                *left -= 1;
                Cur::Value {
                    node: *elem,
                    depth: *depth,
                }
            }
            Some(_) => {
                self.stack.pop();
                Cur::Ret
            }
        };
        true
    }

    fn node(&self, at: usize) -> Node {
        self.plan.nodes.get(at).copied().unwrap_or(NO_NODE)
    }

    /// Starts a value of `node` at nesting `depth`: what can be checked without bytes is.
    fn start(&mut self, node: usize, depth: u32) -> Result<Cur, ValueError> {
        Ok(match self.node(node) {
            Node::Bool => Cur::Tok(Tok::Bool),
            Node::Raw(n) => skip(n.into()),
            Node::Uleb(width) => Cur::Tok(Tok::Uleb {
                width,
                i: 0,
                x: 0,
                then: Then::Int,
            }),
            Node::Sleb(width) => Cur::Tok(Tok::Sleb { width, i: 0 }),
            Node::Char => Cur::Tok(Tok::Char { need: 0, c: 0 }),
            Node::Bytes(_) => uleb32(Then::Len { node, depth }),
            Node::Enum(_) => uleb32(Then::Case { node, depth }),
            Node::Flags(n) => match n.div_ceil(8) {
                0 => Cur::Ret,
                len => Cur::Tok(Tok::Flags {
                    n,
                    left: len.into(),
                }),
            },
            Node::List(_) => uleb32(Then::Len {
                node,
                depth: self.limits.enter(depth)?,
            }),
            Node::Fixed { elem, len } => {
                let depth = self.limits.enter(depth)?;
                self.elements(elem, len.into(), depth)?
            }
            Node::Variant { .. } => uleb32(Then::Case {
                node,
                depth: self.limits.enter(depth)?,
            }),
            Node::Seq { first, len } => {
                let depth = self.limits.enter(depth)?;
                self.stack.push(Frame::Seq {
                    next: first,
                    end: first.saturating_add(len),
                    depth,
                });
                Cur::Ret
            }
            Node::Option(_) | Node::Result(..) | Node::Future(_) => Cur::Tok(Tok::Tag {
                node,
                depth: self.limits.enter(depth)?,
            }),
        })
    }

    /// Reads the token `tok` from `rest` (not empty): the next step and the bytes used.
    fn token(&mut self, tok: Tok, rest: &[u8]) -> Result<(Cur, usize), ValueError> {
        let Some(&b) = rest.first() else {
            return Ok((Cur::Tok(tok), 0));
        };
        let next = match tok {
            Tok::Skip(left) => {
                let (n, used) = avail(left, rest);
                return Ok((skip(left - n), used));
            }
            Tok::Flags { n, left } => {
                let (k, used) = avail(left, rest);
                if k < left {
                    return Ok((Cur::Tok(Tok::Flags { n, left: left - k }), used));
                }
                // Bits at and above `n` in the last byte must be clear (`bitflags::from_bits`).
                let last = used.checked_sub(1).and_then(|i| rest.get(i)).copied();
                let used_bits = n & 7;
                if let (Some(last), true) = (last, used_bits != 0) {
                    let unknown = last & u8::MAX.checked_shl(used_bits).unwrap_or(0);
                    if unknown != 0 {
                        let bit = (u64::from(n) & !7) | u64::from(unknown.trailing_zeros());
                        return Err(ValueError::BadDiscriminant {
                            what: "flag bit",
                            value: bit,
                        });
                    }
                }
                return Ok((Cur::Ret, used));
            }
            Tok::Str { left, utf8 } => {
                let (k, used) = avail(left, rest);
                let utf8 = utf8.chunk(rest.get(..used).unwrap_or_default())?;
                let left = left - k;
                if left > 0 {
                    return Ok((Cur::Tok(Tok::Str { left, utf8 }), used));
                }
                if utf8.need > 0 {
                    return Err(ValueError::BadUtf8);
                }
                return Ok((Cur::Ret, used));
            }
            Tok::Bool => match b {
                0 | 1 => Cur::Ret,
                b => return Err(ValueError::BadBool(b)),
            },
            Tok::Uleb { width, i, x, then } => {
                let (last, last_max, _) = width.shape();
                if i == last && b > last_max {
                    return Err(ValueError::BadLeb128);
                }
                let shift = u32::try_from(i.saturating_mul(7)).unwrap_or(u32::MAX);
                let x = x | u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
                if b & 0x80 == 0 {
                    self.uleb_done(x, then)?
                } else if i >= last {
                    return Err(ValueError::BadLeb128);
                } else {
                    Cur::Tok(Tok::Uleb {
                        width,
                        i: i + 1,
                        x,
                        then,
                    })
                }
            }
            Tok::Sleb { width, i } => {
                let (last, _, shift) = width.shape();
                if i == last {
                    let rest = (b & 0x7f) >> shift;
                    if b & 0x80 != 0 || (rest != 0 && rest != 0x7f >> shift) {
                        return Err(ValueError::BadLeb128);
                    }
                }
                if b & 0x80 == 0 {
                    Cur::Ret
                } else if i >= last {
                    return Err(ValueError::BadLeb128);
                } else {
                    Cur::Tok(Tok::Sleb { width, i: i + 1 })
                }
            }
            Tok::Char { need: 0, .. } => {
                let (need, init) = if b & 0x80 == 0 {
                    return Ok((Cur::Ret, 1));
                } else if b & 0b1110_0000 == 0b1100_0000 {
                    (1, b & 0b0001_1111)
                } else if b & 0b1111_0000 == 0b1110_0000 {
                    (2, b & 0b0000_1111)
                } else if b & 0b1111_1000 == 0b1111_0000 {
                    (3, b & 0b0000_0111)
                } else {
                    return Err(ValueError::BadUtf8);
                };
                Cur::Tok(Tok::Char {
                    need,
                    c: init.into(),
                })
            }
            Tok::Char { need, c } => {
                if b & 0b1100_0000 != 0b1000_0000 {
                    return Err(ValueError::BadUtf8);
                }
                // At most 3 + 3 * 6 = 21 bits: no overflow.
                let c = c << 6 | u32::from(b & 0b0011_1111);
                if need > 1 {
                    Cur::Tok(Tok::Char { need: need - 1, c })
                } else if char::from_u32(c).is_none() {
                    // Like `utf8-tokio`, overlong forms are accepted; the scalar value must be valid.
                    return Err(ValueError::BadChar(c));
                } else {
                    Cur::Ret
                }
            }
            Tok::Tag { node, depth } => {
                let (what, payload) = match self.node(node) {
                    Node::Option(ty) => ("option tag", (b == 1).then_some(ty)),
                    Node::Result(ok, err) => ("result tag", if b == 0 { ok } else { err }),
                    Node::Future(ty) => ("future tag", ty.filter(|_| b == 1)),
                    _ => ("tag", None),
                };
                if b > 1 {
                    return Err(ValueError::BadDiscriminant {
                        what,
                        value: b.into(),
                    });
                }
                payload.map_or(Cur::Ret, |node| Cur::Value { node, depth })
            }
        };
        Ok((next, 1))
    }

    /// Acts on a complete unsigned LEB128 value `x`.
    fn uleb_done(&mut self, x: u64, then: Then) -> Result<Cur, ValueError> {
        let (node, depth) = match then {
            Then::Int => return Ok(Cur::Ret),
            Then::Case { node, depth } => {
                let (what, cases, first) = match self.node(node) {
                    Node::Enum(n) => ("enum case", usize::try_from(n).unwrap_or(usize::MAX), None),
                    Node::Variant { first, len } => ("variant case", len, Some(first)),
                    _ => ("case", 0, None),
                };
                let i = match usize::try_from(x) {
                    Ok(i) if i < cases => i,
                    _ => return Err(ValueError::BadDiscriminant { what, value: x }),
                };
                let payload = first
                    .and_then(|first| self.plan.kids.get(first.saturating_add(i)))
                    .copied()
                    .flatten();
                return Ok(payload.map_or(Cur::Ret, |node| Cur::Value { node, depth }));
            }
            Then::Len { node, depth } => (node, depth),
        };
        let bytes = match self.node(node) {
            Node::Bytes(_) => true,
            Node::List(Some(elem)) => matches!(self.node(elem), Node::Raw(_)),
            _ => false,
        };
        if bytes {
            self.limits.check_bytes(x)?;
        } else {
            self.limits.check_len(x)?;
        }
        Ok(match self.node(node) {
            Node::Bytes(true) if x > 0 => Cur::Tok(Tok::Str {
                left: x,
                utf8: Utf8::START,
            }),
            Node::Bytes(_) => skip(x),
            Node::List(Some(elem)) => self.elements(elem, x, depth)?,
            // A `stream` without an element type: as many units.
            Node::List(None) => {
                self.charge_zero_size(x)?;
                Cur::Ret
            }
            _ => Cur::Ret,
        })
    }

    /// Takes `len` zero-size elements from the value's budget, as the decoder does.
    fn charge_zero_size(&mut self, len: u64) -> Result<(), ValueError> {
        if len > self.zero_left {
            return Err(ValueError::ListTooLong {
                len,
                max: self.limits.max_list,
            });
        }
        self.zero_left -= len;
        Ok(())
    }

    /// Starts `n` elements of node `elem` at `depth` (a list's, after its
    /// count, or a fixed-length list's).
    fn elements(&mut self, elem: usize, n: u64, depth: u32) -> Result<Cur, ValueError> {
        if let Node::Raw(width) = self.node(elem) {
            return Ok(skip(n.saturating_mul(width.into())));
        }
        if n == 0 {
            return Ok(Cur::Ret);
        }
        // Zero-size elements: no bytes to walk. What a decoder builds for
        // them counts against `max_list` (over the whole value, as the
        // decoder counts it), and their nesting is checked.
        if let Some(Zero {
            cost,
            depth: nested,
        }) = self.plan.zero.get(elem).copied().flatten()
        {
            self.charge_zero_size(elements_cost(n, cost))?;
            if depth.saturating_add(nested) > self.limits.max_depth {
                return Err(ValueError::TooDeep {
                    max: self.limits.max_depth,
                });
            }
            return Ok(Cur::Ret);
        }
        self.stack.push(Frame::List {
            elem,
            left: n - 1,
            depth,
        });
        Ok(Cur::Value { node: elem, depth })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_is_bounded_by_depth() {
        // list<list<record{list<tuple<u8>>}>> with long lists: the stack never holds more
        // frames than open compounds, whatever the declared lengths.
        let ty = WireType::List(Box::new(WireType::List(Box::new(WireType::Record(vec![
            WireType::List(Box::new(WireType::Tuple(vec![WireType::U8]))),
        ])))));
        let limits = ValueLimits {
            max_list: 1000,
            max_bytes: 1000,
            max_depth: 5,
        };
        let mut buf = vec![0xe8, 0x07]; // 1000 outer elements,
        for _ in 0..1000 {
            buf.extend_from_slice(&[1, 0xe8, 0x07]); // each 1 record with 1000 tuples
            buf.extend_from_slice(&[7; 1000]);
        }
        let mut scanner = Scanner::new(Arc::from([ty]), limits);
        let mut peak = 0;
        for (i, byte) in buf.chunks(1).enumerate() {
            let done = scanner.feed(byte);
            peak = peak.max(scanner.stack.len());
            assert_eq!(done, Ok((i + 1 == buf.len()).then_some(1)));
        }
        assert_eq!(peak, 5); // one frame per compound level, at most `max_depth`
        assert!(scanner.stack.capacity() <= 8);
    }
}
