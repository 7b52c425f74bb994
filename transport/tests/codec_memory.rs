//! The decoder allocates in proportion to the bytes it was given, never to
//! a length those bytes declare: hostile and random inputs against the
//! limits of a real listener, the heap's peak measured around each decode.
//! (One test in its own binary, so nothing else allocates meanwhile.)

use peak_alloc::PeakAlloc;
use transport::schema::codec::{decode_tuple, Decoded, Sink};
use transport::schema::{Enum, Flags, Record, Type, Variant};
use transport::Limits;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// Builds a small tree, as any face would: one node per value.
struct Tree;

enum Node {
    Leaf,
    Text(#[allow(dead_code)] String),
    Many(#[allow(dead_code)] Vec<Node>),
}

impl Sink for Tree {
    type Value = Node;

    fn value(&mut self, _: &Type, decoded: Decoded<'_, Node>) -> Result<Node, String> {
        Ok(match decoded {
            Decoded::String(s) => Node::Text(s.to_string()),
            Decoded::Bytes(b) => Node::Many(b.iter().map(|_| Node::Leaf).collect()),
            Decoded::Items(items) => Node::Many(items),
            Decoded::Case(_, Some(v)) | Decoded::Ready(Some(v)) | Decoded::Inline(v) => {
                Node::Many(vec![v])
            }
            _ => Node::Leaf,
        })
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn types() -> Vec<Type> {
    let list = |t: Type| Type::List(Box::new(t));
    let point = Type::Record(Record {
        name: None,
        fields: vec![("x".into(), Type::S32), ("tags".into(), list(Type::String))],
    });
    vec![
        list(Type::String),
        list(list(list(Type::U64))),
        list(Type::U8),
        list(Type::F64),
        list(point.clone()),
        Type::Option(Box::new(list(Type::Char))),
        Type::Variant(Variant {
            name: None,
            cases: vec![
                ("a".into(), None),
                ("b".into(), Some(list(point))),
                ("c".into(), Some(Type::String)),
            ],
        }),
        Type::Enum(Enum {
            name: None,
            cases: vec!["x".into(), "y".into()],
        }),
        Type::Flags(Flags {
            name: None,
            flags: (0..20).map(|i| format!("f{i}")).collect(),
        }),
        Type::Stream(Some(Box::new(Type::String))),
        Type::Future(Some(Box::new(list(Type::Bool)))),
        Type::FixedList(Box::new(list(Type::String)), 3),
        Type::Own("r".into()),
    ]
}

/// Inputs: declared lengths far beyond the bytes (bombs), and random bytes
/// biased towards small numbers and continuation bits.
fn inputs(rng: &mut XorShift) -> Vec<Vec<u8>> {
    let mut out = vec![
        vec![0xff, 0xff, 0x3f],
        vec![0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![0x80, 0x80, 0x40, 1, 0x80, 0x80, 0x40],
        vec![1, 0x80, 0x80, 0x40],
        vec![2, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x3f],
    ];
    for _ in 0..4000 {
        let n = (rng.next() % 40) as usize;
        out.push(
            (0..n)
                .map(|_| match rng.next() % 6 {
                    0..=2 => (rng.next() % 4) as u8,
                    3 => 0x80 | (rng.next() % 0x80) as u8,
                    _ => rng.next() as u8,
                })
                .collect(),
        );
    }
    out
}

#[test]
fn decoding_allocates_in_proportion_to_the_input() {
    let limits = Limits::DEFAULT.value();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let inputs = inputs(&mut rng);
    let mut worst = (0usize, 0usize);
    for ty in types() {
        let tys = [ty];
        for input in &inputs {
            let before = HEAP.current_usage();
            HEAP.reset_peak_usage();
            let decoded = decode_tuple(&tys, input, &limits, &mut Tree);
            let peak = HEAP.peak_usage().saturating_sub(before);
            drop(decoded);
            // A node per input byte at most, each a few words, plus a little slack.
            let bound = 256 * input.len() + 64 * 1024;
            assert!(
                peak <= bound,
                "{}: {peak} bytes for {} input bytes {input:02x?}",
                tys[0],
                input.len()
            );
            if peak > worst.0 {
                worst = (peak, input.len());
            }
        }
    }
    println!("worst peak: {} bytes for {} input bytes", worst.0, worst.1);
}
