//! Writes the seed corpora (`cargo test --manifest-path fuzz/Cargo.toml
//! --lib -- --ignored write_seeds`, see docs/RELIABILITY.md): real
//! encodings of each target's input, made with the crate's own encoders.

use std::fmt::Write as _;
use std::path::Path;

use arbitrary::Unstructured;
use bytes::BytesMut;
use transport::discovery::{Document, Interface};
use transport::frame::{self, Dialect};
use transport::schema::codec::{encode_tuple, Value};
use transport::schema::json::{decode_all, first_unsupported};
use transport::schema::Type;

use crate::{join_input, ty, types};

/// A xorshift generator: seeds differ from run to run only if this does.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A value of `ty`; futures and streams pending.
fn value(rng: &mut Rng, ty: &Type) -> Value {
    let items = |rng: &mut Rng, elem: &Type, n: u64| {
        Value::Items((0..n).map(|_| value(rng, elem)).collect())
    };
    match ty {
        Type::Bool => Value::Bool(rng.below(2) == 1),
        Type::U8 => Value::U8(rng.next() as u8),
        Type::U16 => Value::U16(rng.next() as u16),
        Type::U32 => Value::U32(rng.next() as u32 >> rng.below(32)),
        Type::U64 => Value::U64(rng.next() >> rng.below(64)),
        Type::S8 => Value::S8(rng.next() as i8),
        Type::S16 => Value::S16(rng.next() as i16),
        Type::S32 => Value::S32(rng.next() as i32 >> rng.below(32)),
        Type::S64 => Value::S64(rng.next() as i64 >> rng.below(64)),
        Type::F32 => Value::F32(rng.below(1000) as f32 / 8.0 - 60.0),
        Type::F64 => Value::F64(f64::from_bits(rng.next() >> 2)),
        Type::Char => Value::Char(
            *["a", "é", "€", "😀", "\n"][rng.below(5) as usize]
                .chars()
                .next()
                .get_or_insert('a'),
        ),
        Type::String => {
            Value::String(["", "key", "héllo wörld", "a\"b\\c"][rng.below(4) as usize].into())
        }
        Type::List(elem) if **elem == Type::U8 => {
            let n = rng.below(6) as usize;
            Value::Bytes(rng.bytes(n))
        }
        Type::List(elem) => {
            let n = rng.below(4);
            items(rng, elem, n)
        }
        Type::FixedList(elem, n) if **elem == Type::U8 => Value::Bytes(rng.bytes(*n as usize)),
        Type::FixedList(elem, n) => items(rng, elem, u64::from(*n)),
        Type::Tuple(tys) => Value::Items(tys.iter().map(|t| value(rng, t)).collect()),
        Type::Record(r) => Value::Items(r.fields.iter().map(|(_, t)| value(rng, t)).collect()),
        Type::Variant(v) if v.cases.is_empty() => Value::Case(0, None),
        Type::Variant(v) => {
            let i = rng.below(v.cases.len() as u64) as usize;
            let payload = v.cases[i].1.as_ref().map(|t| Box::new(value(rng, t)));
            Value::Case(i as u32, payload)
        }
        Type::Enum(e) => Value::Case(rng.below(e.cases.len() as u64) as u32, None),
        Type::Flags(f) => {
            let mut bits = rng.bytes(f.width());
            let spare = f.width() * 8 - f.flags.len();
            if let Some(last) = bits.last_mut() {
                *last &= u8::MAX >> spare;
            }
            Value::Flags(bits)
        }
        Type::Option(t) => match rng.below(2) {
            0 => Value::Case(0, None),
            _ => Value::Case(1, Some(Box::new(value(rng, t)))),
        },
        Type::Result { ok, err } => {
            let i = rng.below(2) as u32;
            let side = if i == 0 { ok } else { err };
            Value::Case(i, side.as_ref().map(|t| Box::new(value(rng, t))))
        }
        Type::Own(_) | Type::Borrow(_) => Value::Handle(rng.bytes(4)),
        _ => Value::Pending(Vec::new()),
    }
}

/// `v`, a value of `ty`, written as a WIT value (no futures, streams or handles).
fn wit_text(ty: &Type, v: &Value) -> String {
    let list =
        |open: &str, items: Vec<String>, close: &str| format!("{open}{}{close}", items.join(", "));
    let each = |tys: &mut dyn Iterator<Item = &Type>, items: &[Value]| -> Vec<String> {
        tys.zip(items).map(|(t, v)| wit_text(t, v)).collect()
    };
    let named = |name: &str, payload: Option<(&Type, &Value)>| match payload {
        Some((t, v)) => format!("{name}({})", wit_text(t, v)),
        None => name.to_string(),
    };
    match (ty, v) {
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::U8(n)) => n.to_string(),
        (_, Value::U16(n)) => n.to_string(),
        (_, Value::U32(n)) => n.to_string(),
        (_, Value::U64(n)) => n.to_string(),
        (_, Value::S8(n)) => n.to_string(),
        (_, Value::S16(n)) => n.to_string(),
        (_, Value::S32(n)) => n.to_string(),
        (_, Value::S64(n)) => n.to_string(),
        (_, Value::F32(x)) => format!("{x:?}"),
        (_, Value::F64(x)) => format!("{x:?}"),
        (_, Value::Char(c)) => format!("'{}'", c.escape_default()),
        (_, Value::String(t)) => format!("\"{}\"", t.escape_default()),
        (_, Value::Bytes(b)) => list("[", b.iter().map(u8::to_string).collect(), "]"),
        (Type::List(t) | Type::FixedList(t, _), Value::Items(items)) => {
            list("[", each(&mut std::iter::repeat(&**t), items), "]")
        }
        (Type::Tuple(tys), Value::Items(items)) => list("(", each(&mut tys.iter(), items), ")"),
        (Type::Record(r), Value::Items(items)) => {
            let fields = r.fields.iter().zip(items);
            list(
                "{",
                fields
                    .map(|((n, t), v)| format!("{n}: {}", wit_text(t, v)))
                    .collect(),
                "}",
            )
        }
        (Type::Variant(var), Value::Case(i, p)) => match var.cases.get(*i as usize) {
            Some((name, t)) => named(name, t.as_ref().zip(p.as_deref())),
            None => String::new(),
        },
        (Type::Enum(e), Value::Case(i, _)) => e.cases.get(*i as usize).cloned().unwrap_or_default(),
        (Type::Option(t), Value::Case(1, Some(p))) => named("some", Some((t, p))),
        (Type::Option(_), _) => "none".into(),
        (Type::Result { ok, err }, Value::Case(i, p)) => {
            let (name, t) = if *i == 0 { ("ok", ok) } else { ("err", err) };
            named(name, t.as_deref().zip(p.as_deref()))
        }
        (Type::Flags(f), Value::Flags(bits)) => {
            let set = f
                .flags
                .iter()
                .enumerate()
                .filter(|(i, _)| bits[i / 8] & (1 << (i % 8)) != 0);
            list("{", set.map(|(_, n)| n.clone()).collect(), "}")
        }
        _ => String::new(),
    }
}

/// A spec shaping a tuple of types, and a value of it encoded.
fn typed_seed(rng: &mut Rng, one: bool) -> Option<(Vec<u8>, Vec<Type>, Vec<u8>)> {
    let spec = rng.bytes(24);
    let mut u = Unstructured::new(&spec);
    let tys = if one {
        vec![ty(&mut u, 4).ok()?]
    } else {
        types(&mut u, 4).ok()?
    };
    let values: Vec<Value> = tys.iter().map(|t| value(rng, t)).collect();
    let refs: Vec<&Value> = values.iter().collect();
    let mut bytes = Vec::new();
    encode_tuple(&tys, &refs, &mut bytes).ok()?;
    (bytes.len() < 512).then_some((spec, tys, bytes))
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus directory");
    std::fs::write(dir.join(name), data).expect("seed written");
}

#[test]
#[ignore = "writes fuzz/corpus: run by hand"]
fn write_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..64 {
        if let Some((spec, _, bytes)) = typed_seed(&mut rng, false) {
            let input = join_input(&spec, &bytes);
            write(&corpus.join("scanner"), &format!("seed-{i}"), &input);
            write(&corpus.join("codec"), &format!("seed-{i}"), &input);
        }
        if let Some((spec, tys, bytes)) = typed_seed(&mut rng, true) {
            if first_unsupported(&tys[0]).is_none() {
                write(
                    &corpus.join("json_value"),
                    &format!("seed-{i}"),
                    &join_input(&spec, &bytes),
                );
                let limits = transport::Limits::DEFAULT.value();
                if let Ok(json) = decode_all(&tys, &bytes, &limits) {
                    let text = serde_json::to_string(&json[0]).unwrap_or_default();
                    write(
                        &corpus.join("wit_value"),
                        &format!("seed-{i}"),
                        &join_input(&spec, text.as_bytes()),
                    );
                }
                let wit = wit_text(&tys[0], &value(&mut rng, &tys[0]));
                write(
                    &corpus.join("wit_value"),
                    &format!("wit-{i}"),
                    &join_input(&spec, wit.as_bytes()),
                );
            }
        }
    }
    frames(&corpus.join("frame"));
    nats(&corpus.join("nats"));
    endpoints(&corpus.join("endpoint"));
    discovery(&corpus.join("discovery"));
    manifests(&corpus.join("manifest"));
}

/// Every dialect and role: a spec (role, default limits) and real frames.
fn frames(dir: &Path) {
    let mut server_pooled = BytesMut::new();
    frame::put_line_preface(&mut server_pooled);
    let headers = [
        ("wrpc-workload", "demo"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ];
    frame::put_call(
        &mut server_pooled,
        "wrpc:keyvalue/store@0.2.0-draft",
        "get",
        &headers,
    );
    frame::put_frame(
        &mut server_pooled,
        Dialect::Pooled,
        &[],
        b"\x06bucket\x03key",
    );
    frame::put_frame(&mut server_pooled, Dialect::Pooled, &[1, 0], b"xyz");
    frame::put_end(&mut server_pooled);
    frame::put_call(&mut server_pooled, "i", "f", &[]);
    frame::put_end(&mut server_pooled);

    let mut server_plain = BytesMut::new();
    frame::put_plain_header(&mut server_plain, "wrpc:keyvalue/store@0.2.0-draft", "set");
    frame::put_frame(&mut server_plain, Dialect::Plain, &[], b"\x01b\x01k\x02hi");
    frame::put_frame(&mut server_plain, Dialect::Plain, &[2], b"");

    let mut client_plain = BytesMut::new();
    frame::put_frame(&mut client_plain, Dialect::Plain, &[], b"\x00\x02ok");
    frame::put_frame(&mut client_plain, Dialect::Plain, &[0, 3], b"chunk");

    let mut client_pooled = BytesMut::new();
    frame::put_preface(&mut client_pooled);
    frame::put_frame(&mut client_pooled, Dialect::Pooled, &[], b"\x00");
    frame::put_end(&mut client_pooled);
    frame::put_error(&mut client_pooled, "no such function");
    frame::put_goaway(&mut client_pooled);

    for (name, role, wire) in [
        ("server-pooled", 0, server_pooled),
        ("server-plain", 0, server_plain),
        ("client-plain", 1, client_plain),
        ("client-pooled", 2, client_pooled),
    ] {
        write(dir, name, &join_input(&[role, 1], &wire));
        write(
            dir,
            &format!("{name}-cut"),
            &join_input(&[role, 1, 3, 1, 7, 2], &wire),
        );
    }
}

/// Header blocks as a caller of ours sends them, and credit payloads.
fn nats(dir: &Path) {
    let mut head = String::from("wrpc.0.0.1.wrpc:keyvalue/store@0.2.0-draft.get\r\n");
    for (k, v) in [
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("wrpc-credit", "4194304"),
        ("wrpc-lean", "1"),
        ("wrpc-workload", "demo"),
        ("Wrpc-Namespace", "default"),
        ("wrpc-component", "app"),
    ] {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    for (name, body) in [("call", "1.0 1048576"), ("credit", "3 0"), ("empty", "")] {
        let mut input = head.clone().into_bytes();
        input.push(0);
        input.extend_from_slice(body.as_bytes());
        write(dir, name, &input);
    }
    write(
        dir,
        "error",
        b"_INBOX.x.results\r\nwrpc-error: no such function\r\n",
    );
}

fn endpoints(dir: &Path) {
    let urls = [
        "nats://127.0.0.1:4222",
        "nats://user:s3cret@nats.example:4222/demo/app",
        "nats://tok3n@a:1,b,[::1]:3?queue_group=kv&tls_ca=/ca.pem",
        "nats://h?creds=/etc/x.creds",
        "nats://h?token=abc%21",
        "nats://h?nkey=/k.nk&tls=required",
        "tcp://127.0.0.1:7761",
        "tcp://[::1]:7761?pool=off",
        "unix:///run/kv.sock",
        "ws://127.0.0.1:8080",
        "wss://gw.example/wrpc/kv?tls_ca=/ca.pem&tls_cert=/c.pem&tls_key=/k.pem",
    ];
    for (i, url) in urls.iter().enumerate() {
        write(dir, &format!("url-{i}"), url.as_bytes());
    }
}

fn discovery(dir: &Path) {
    let doc = Document {
        name: "keyvalue-redis".into(),
        version: Some("0.1.0".into()),
        sdk_version: Some("0.1.0".into()),
        interfaces: vec![Interface::new(
            "test:codec/types@0.1.0",
            vec!["get".into(), "set".into()],
        )],
        listeners: vec!["nats://127.0.0.1:4222".into(), "tcp://0.0.0.0:7761".into()],
        wit: vec![vec![(
            "codec.wit".into(),
            include_str!("../../transport/src/schema/json/codec.wit").into(),
        )]],
    };
    write(dir, "describe", doc.to_json().as_bytes());
    write(dir, "minimal", br#"{"name":"x"}"#);
}

fn manifests(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for path in ["demo", "templates/guest"] {
        let Ok(entries) = std::fs::read_dir(root.join(path)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read(&path).expect("manifest read");
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                write(dir, &name, &text);
            }
        }
    }
}
