use super::super::{type_at_path, WireType as W};
use super::*;

fn list(ty: W) -> W {
    W::List(Box::new(ty))
}
fn option(ty: W) -> W {
    W::Option(Box::new(ty))
}
fn result(ok: Option<W>, err: Option<W>) -> W {
    W::Result {
        ok: ok.map(Box::new),
        err: err.map(Box::new),
    }
}

fn sig(params: Vec<W>, results: Vec<W>) -> Signature {
    Signature { params, results }
}

const KV: &str = "wrpc:keyvalue/store@0.2.0-draft";

#[test]
fn keyvalue() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/wrpc-keyvalue");
    let files: Vec<(String, String)> = ["store", "atomics", "batch", "world"]
        .iter()
        .map(|name| {
            let path = format!("{dir}/{name}.wit");
            let contents = std::fs::read_to_string(&path).expect("read WIT");
            (path, contents)
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let sigs = Signatures::from_wit(&[&files]).expect("parse keyvalue");

    let error = W::Variant(vec![None, None, Some(W::String)]);
    assert_eq!(
        sigs.get(KV, "get"),
        Some(&sig(
            vec![W::String, W::String],
            vec![result(Some(option(list(W::U8))), Some(error.clone()))],
        ))
    );
    let key_response = W::Record(vec![list(W::String), option(W::U64)]);
    assert_eq!(
        sigs.get(KV, "list-keys"),
        Some(&sig(
            vec![W::String, option(W::U64)],
            vec![result(Some(key_response), Some(error.clone()))],
        ))
    );
    assert_eq!(
        sigs.get(KV, "set").map(|s| &s.results),
        Some(&vec![result(None, Some(error.clone()))])
    );
    assert_eq!(
        sigs.get("wrpc:keyvalue/batch@0.2.0-draft", "get-many"),
        Some(&sig(
            vec![W::String, list(W::String)],
            vec![result(
                Some(list(option(W::Tuple(vec![W::String, list(W::U8)])))),
                Some(error.clone()),
            )],
        ))
    );
    assert_eq!(
        sigs.get("wrpc:keyvalue/atomics@0.2.0-draft", "increment"),
        Some(&sig(
            vec![W::String, W::String, W::U64],
            vec![result(Some(W::U64), Some(error))],
        ))
    );
    let names: Vec<(&str, &str)> = sigs.iter().map(|(i, f, _)| (i, f)).collect();
    assert_eq!(names.len(), 9);
    assert_eq!(
        names.first(),
        Some(&("wrpc:keyvalue/atomics@0.2.0-draft", "increment"))
    );
    let store: Vec<&str> = sigs.functions(KV).map(|(f, _)| f).collect();
    assert_eq!(store, ["delete", "exists", "get", "list-keys", "set"]);
    assert_eq!(sigs.functions("wrpc:keyvalue/nope@0.2.0-draft").count(), 0);
    assert!(sigs.iter().all(|(_, _, s)| s.param_paths().is_empty()));
}

const TYPES: &str = r#"
    package test:types@1.0.0;

    interface types {
        type bytes = list<u8>;
        type blob = bytes;
        flags perms { read, write, exec }
        enum color { red, green, blue }
        resource bucket {
            constructor(name: string);
            get: func(key: string) -> option<blob>;
            open: static func(name: string) -> result<bucket, string>;
        }
        record rec { a: u8, b: tuple<s16, char>, fut: future<u32> }
        variant v { none, some(perms), other(color) }
    }
"#;

const API: &str = r#"
    package test:types@1.0.0;

    interface api {
        use types.{bucket, blob, perms, color, rec, v};
        upload: func(name: string, data: stream<u8>) -> future<result<_, string>>;
        watch: func(b: borrow<bucket>) -> stream<rec>;
        ping: func() -> stream;
        done: func() -> future;
        all: func(p: perms, c: color, r: rec, v: v, f: f32, g: f64, x: s64, y: s8, z: u16, w: s32, q: u32, b: bool) -> tuple<blob, blob>;
        own-it: func(b: own<bucket>) -> list<bucket>;
        many: async func(s: stream<list<string>>) -> tuple<string, list<u8, 4>>;
    }
"#;

#[test]
fn inline_package() {
    let sigs = Signatures::from_wit(&[&[("types.wit", TYPES), ("api.wit", API)]])
        .expect("parse inline package");
    let types = "test:types/types@1.0.0";
    assert_eq!(
        sigs.get(types, "bucket"),
        Some(&sig(vec![W::String], vec![W::Resource]))
    );
    assert_eq!(
        sigs.get(types, "bucket.get"),
        Some(&sig(
            vec![W::Resource, W::String],
            vec![option(list(W::U8))]
        ))
    );
    assert_eq!(
        sigs.get(types, "bucket.open"),
        Some(&sig(
            vec![W::String],
            vec![result(Some(W::Resource), Some(W::String))]
        ))
    );
    assert_eq!(sigs.get(types, "[method]bucket.get"), None);

    let api = "test:types/api@1.0.0";
    let upload = sigs.get(api, "upload").expect("upload");
    let bytes = W::Stream(Some(Box::new(W::U8)));
    assert_eq!(upload.params, [W::String, bytes.clone()]);
    assert_eq!(
        upload.results,
        [W::Future(Some(Box::new(result(None, Some(W::String)))))]
    );
    assert_eq!(upload.param_paths(), [Box::from([Some(1)])]);
    assert_eq!(upload.result_paths(), [Box::from([Some(0)])]);
    assert_eq!(type_at_path(&upload.params, &[1]), Some(&bytes));

    let rec = W::Record(vec![
        W::U8,
        W::Tuple(vec![W::S16, W::Char]),
        W::Future(Some(Box::new(W::U32))),
    ]);
    let watch = sigs.get(api, "watch").expect("watch");
    assert_eq!(watch.params, [W::Resource]);
    assert_eq!(watch.results, [W::Stream(Some(Box::new(rec.clone())))]);
    assert_eq!(
        watch.result_paths(),
        [Box::from([Some(0), None, Some(2)]), Box::from([Some(0)])]
    );
    assert_eq!(
        sigs.get(api, "ping"),
        Some(&sig(vec![], vec![W::Stream(None)]))
    );
    assert_eq!(
        sigs.get(api, "done"),
        Some(&sig(vec![], vec![W::Future(None)]))
    );
    assert_eq!(
        sigs.get(api, "all"),
        Some(&sig(
            vec![
                W::Flags(3),
                W::Enum(3),
                rec,
                W::Variant(vec![None, Some(W::Flags(3)), Some(W::Enum(3))]),
                W::F32,
                W::F64,
                W::S64,
                W::S8,
                W::U16,
                W::S32,
                W::U32,
                W::Bool,
            ],
            vec![W::Tuple(vec![list(W::U8), list(W::U8)])],
        ))
    );
    assert_eq!(
        sigs.get(api, "own-it"),
        Some(&sig(vec![W::Resource], vec![list(W::Resource)]))
    );
    let many = sigs.function(api, "many").expect("many");
    assert!(many.is_async);
    assert_eq!(many.params[0].0, "s");
    assert_eq!(
        many.signature(),
        &sig(
            vec![W::Stream(Some(Box::new(list(W::String))))],
            vec![W::Tuple(vec![W::String, W::FixedList(Box::new(W::U8), 4)])]
        )
    );
    assert_eq!(many.results[0].to_string(), "tuple<string, list<u8, 4>>");
    assert!(!sigs.function(api, "upload").expect("upload").is_async);
}

#[test]
fn dependency_package() {
    let dep = r#"
        package dep:lib@0.1.0;
        interface types {
            record point { x: s32, y: s32 }
            type points = list<point>;
        }
    "#;
    let app = r#"
        package app:main;
        interface api {
            use dep:lib/types@0.1.0.{point, points};
            nearest: func(p: point, all: points) -> option<point>;
        }
    "#;
    let sigs = Signatures::from_wit(&[&[("dep.wit", dep)], &[("app.wit", app)]])
        .expect("parse with dependency");
    let point = W::Record(vec![W::S32, W::S32]);
    assert_eq!(
        sigs.get("app:main/api", "nearest"),
        Some(&sig(
            vec![point.clone(), list(point.clone())],
            vec![option(point)]
        ))
    );
    // The other order cannot resolve.
    assert!(matches!(
        Signatures::from_wit(&[&[("app.wit", app)], &[("dep.wit", dep)]]),
        Err(WitError::Parse(_))
    ));
}

#[test]
fn errors_and_merging() {
    let bad = "package a:b; interface i { f: func(x: map<string, u8>); }";
    match Signatures::from_wit(&[&[("bad.wit", bad)]]) {
        Err(WitError::Unsupported { item, what }) => {
            assert_eq!(item, "a:b/i#f");
            assert_eq!(what, "a map");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        Signatures::from_wit(&[&[("x.wit", "package a:b; interface i { f: func(x: nope); }")]]),
        Err(WitError::Parse(_))
    ));

    let f = |params: Vec<Type>, results: Vec<Type>| {
        Function::new(
            params.into_iter().map(|t| ("p".to_string(), t)).collect(),
            results,
            false,
        )
    };
    let mut a = Signatures::default();
    a.insert("x:y/z", "f", f(vec![Type::U8], vec![]));
    a.insert("x:y/z", "g", f(vec![], vec![]));
    let mut b = Signatures::default();
    b.insert("x:y/z", "f", f(vec![Type::String], vec![]));
    b.insert("x:y/w", "h", f(vec![], vec![Type::Bool]));
    a.extend(b);
    assert_eq!(a.get("x:y/z", "f"), Some(&sig(vec![W::String], vec![])));
    let all: Vec<(&str, &str)> = a.iter().map(|(i, f, _)| (i, f)).collect();
    assert_eq!(all, [("x:y/w", "h"), ("x:y/z", "f"), ("x:y/z", "g")]);
}

#[test]
fn wit_the_parser_panics_on_is_an_error() {
    // Found by the `discovery` fuzz target: wit-parser 0.254 panics on the
    // empty doc comment `/**/`, and `wrpc-ext` reads WIT an extension sent.
    let wit = "package a:b;\n/**/\ninterface i {\n  f: func();\n}\n";
    let err = Signatures::from_wit(&[&[("a.wit", wit)]]).expect_err("must not parse");
    assert!(matches!(err, WitError::Parse(_)), "{err}");
}
