//! Every WIT-style form encodes to the bytes its JSON equivalent does;
//! errors are one line with the place in the value.

use super::super::encode;
use super::parse;
use crate::schema::Type;

use super::super::tests::{enc as arg, enc_err as arg_err, param};

/// `wit` reads as a WIT-style value that encodes to the bytes `json` does,
/// and as an argument encodes to them too.
#[track_caller]
fn same(ty: &Type, wit: &str, json: &str) {
    let value = parse(ty, wit).unwrap_or_else(|e| panic!("{wit}: {}", e.into_encode_error(wit)));
    let mut direct = Vec::new();
    encode(ty, &value, &mut direct).unwrap_or_else(|e| panic!("{wit}: {e}"));
    let expected = arg(ty, json);
    assert_eq!(direct, expected, "{ty}: {wit} vs {json}");
    assert_eq!(arg(ty, wit), expected, "{ty}: {wit} vs {json}");
}

#[test]
fn scalars() {
    same(&Type::U8, "255 ", "255");
    same(&Type::S8, " -128", "-128");
    same(
        &Type::U64,
        "\t18446744073709551615\n",
        "18446744073709551615",
    );
    same(&Type::S64, " -9223372036854775808", "-9223372036854775808");
    for (wit, json) in [
        ("nan", r#""NaN""#),
        ("inf", r#""Infinity""#),
        ("-inf", r#""-Infinity""#),
        (" 1.5", "1.5"),
        (" -2.5e3", "-2500"),
        (" 1E-3", "0.001"),
        (" 7", "7"),
    ] {
        same(&Type::F32, wit, json);
        same(&Type::F64, wit, json);
    }
    same(&Type::F64, " -2.5e300", "-2.5e300");
    same(&Type::Bool, " true", "true");
    same(&Type::Bool, "false ", "false");
    for (wit, json) in [
        ("'a'", r#""a""#),
        ("'€'", r#""€""#),
        (r"'\n'", r#""\n""#),
        (r"'\t'", r#""\t""#),
        (r"'\\'", r#""\\""#),
        (r"'\''", r#""'""#),
        (r#"'\"'"#, r#""\"""#),
        (r"'\u{1F600}'", r#""😀""#),
        ("'\"'", r#""\"""#),
    ] {
        same(&Type::Char, wit, json);
    }
    let list = Type::List(Box::new(Type::String));
    same(
        &list,
        r#"["tab\there", "it\'s", "a\\b", "\u{1F600}\u{e9}", "q\"", "nl\n"]"#,
        r#"["tab\there", "it's", "a\\b", "😀é", "q\"", "nl\n"]"#,
    );
    // A string parameter: a WIT string literal (JSON has no `\u{…}`).
    same(&Type::String, r#""\u{1F600} \'x\'""#, r#""😀 'x'""#);
}

#[test]
fn lists_tuples_and_bytes() {
    let list = Type::List(Box::new(Type::U32));
    same(&list, "[1, 2, 3,]", "[1,2,3]");
    same(&list, "[ ]", "[]");
    let bytes = param("compound", "b");
    // As text, its UTF-8; a WIT string literal, not a bare word.
    same(&bytes, r#""h\u{e9}""#, r#""hé""#);
    same(&bytes, "[104, 105,]", "[104,105]");
    let t = param("compound", "t");
    same(&t, r#"(7, "x")"#, r#"[7,"x"]"#);
    same(&t, "( 7 ,\n \"x\" , )", r#"[7,"x"]"#);
    let nested = Type::List(Box::new(Type::Tuple(vec![
        Type::String,
        Type::List(Box::new(Type::U8)),
    ])));
    same(
        &nested,
        r#"[("a", "x"), ("b", [0, 255])]"#,
        r#"[["a","x"],["b",{"base64":"AP8="}]]"#,
    );
}

#[test]
fn records() {
    let items = param("compound", "items");
    same(
        &items,
        r#"[{name: "bolt", qty: 300, tags: ["a", "€"], data: "hi", note: some(-2)}]"#,
        r#"[{"name":"bolt","qty":300,"tags":["a","€"],"data":"hi","note":-2}]"#,
    );
    // Fields in any order; an option field left out is none; a trailing comma.
    same(
        &items,
        "[\n  {data: [0, 255], tags: [], qty: 1, name: \"n\",},\n]",
        r#"[{"name":"n","qty":1,"tags":[],"data":{"base64":"AP8="},"note":null}]"#,
    );
    same(
        &items,
        r#"[{name: "n", qty: 1, tags: [], data: "", note: none}]"#,
        r#"[{"name":"n","qty":1,"tags":[],"data":"","note":null}]"#,
    );
    // WIT's `%` prefix on a name.
    same(
        &items,
        r#"[{%name: "n", qty: 1, tags: [], data: ""}]"#,
        r#"[{"name":"n","qty":1,"tags":[],"data":"","note":null}]"#,
    );
}

#[test]
fn variants_enums_and_flags() {
    let shape = param("compound", "s");
    same(&shape, "none", r#""none""#);
    same(&shape, "circle(1.5)", r#"{"circle":1.5}"#);
    same(&shape, "circle( -inf )", r#"{"circle":"-Infinity"}"#);
    same(
        &shape,
        "poly([(1, -2), (2147483647, -2147483648)])",
        r#"{"poly":[[1,-2],[2147483647,-2147483648]]}"#,
    );
    let color = param("compound", "c");
    same(&color, "red", r#""red""#);
    same(&color, " blue ", r#""blue""#);
    same(&color, "%green", r#""green""#);
    let perms = param("compound", "p");
    same(&perms, "{}", "[]");
    same(&perms, "{ read, exec, }", r#"["read","exec"]"#);
    let many = param("compound", "m");
    same(&many, "{f9, f0, f0}", r#"["f0","f9"]"#);
    same(&many, "{f7,f8}", r#"["f7","f8"]"#);
}

#[test]
fn options_and_results() {
    let o = param("compound", "o");
    same(&o, "none", "null");
    same(&o, r#"some("x")"#, r#""x""#);
    same(&o, r#"some ( "x" )"#, r#""x""#);
    let oo = param("compound", "oo");
    same(&oo, "none", "null");
    same(&oo, "some(none)", r#"{"some":null}"#);
    same(&oo, "some(some(3))", r#"{"some":3}"#);
    let r = param("compound", "r");
    same(
        &r,
        "ok(18446744073709551615)",
        r#"{"ok":18446744073709551615}"#,
    );
    same(&r, r#"err("bad")"#, r#"{"err":"bad"}"#);
    let u = param("compound", "u");
    same(&u, "ok", r#"{"ok":null}"#);
    same(&u, "err", r#"{"err":null}"#);
}

#[test]
fn json_comes_first_and_bare_words_stay() {
    // JSON in the form the type takes is read as JSON.
    assert_eq!(arg(&Type::String, r#""a\u0062""#), arg(&Type::String, "ab"));
    // A bare word stays the text itself, even when it looks like WIT.
    let mut word = vec![7];
    word.extend_from_slice(b"some(1)");
    assert_eq!(arg(&Type::String, "some(1)"), word);
    let mut quoted = vec![4];
    quoted.extend_from_slice(br#""abc"#);
    assert_eq!(arg(&Type::String, r#""abc"#), quoted);
    assert_eq!(arg(&param("compound", "b"), "[1,"), b"\x03[1,");
    // Valid JSON of another form gets its JSON error.
    assert_eq!(
        arg_err(&param("compound", "o"), "[1]"),
        "expected string, got [1]"
    );
}

#[test]
fn errors_are_one_line_with_the_place() {
    let items = param("compound", "items");
    assert_eq!(
        arg_err(
            &items,
            r#"[{name: "a", qty: 1, tags: [], data: ""}, {name: "b", qty: "x", tags: [], data: ""}]"#
        ),
        r#"[1].qty: expected u32, got "x""#
    );
    assert_eq!(
        arg_err(&items, r#"[{name: "a"}]"#),
        "[0]: missing field `qty` of record item"
    );
    assert_eq!(
        arg_err(
            &items,
            r#"[{name: "a", qty: 1, tags: [], data: "", colour: red}]"#
        ),
        "[0]: unknown field `colour` of record item (fields: name, qty, tags, data, note)"
    );
    assert_eq!(
        arg_err(&items, r#"[{name: "a", name: "b"}]"#),
        "[0]: field `name` given twice"
    );
    assert_eq!(
        arg_err(&items, r#"[{name, qty: 1}]"#),
        "[0]: field `name` of record item has no value (write `name: …`)"
    );
    assert_eq!(
        arg_err(&items, r#"[{name: "a", qty: 1, tags: [x], data: ""}]"#),
        "[0].tags[0]: expected string (a string in double quotes), got x"
    );
    assert_eq!(
        arg_err(
            &items,
            r#"[{name: "a", qty: 1, tags: [], data: "", note: 3}]"#
        ),
        "[0].note: expected option<s16> (some(…) or none), got 3"
    );
    assert_eq!(
        arg_err(
            &items,
            r#"[{name: "a", qty: 1, tags: [], data: "", note: some(x)}]"#
        ),
        "[0].note.some: expected s16, got x"
    );
    let shape = param("compound", "s");
    assert_eq!(
        arg_err(&shape, "square"),
        "unknown case `square` of variant shape (cases: none, circle(…), poly(…))"
    );
    assert_eq!(
        arg_err(&shape, "square(1)"),
        "unknown case `square` of variant shape (cases: none, circle(…), poly(…))"
    );
    assert_eq!(
        arg_err(&shape, "circle"),
        "circle: expected a payload of type f64, as in `circle(…)`"
    );
    assert_eq!(
        arg_err(&shape, "none(1)"),
        "none: this case has no payload (write `none`), got none(1)"
    );
    assert_eq!(
        arg_err(&shape, "poly([(1, 2, 3)])"),
        "poly[0]: expected tuple<s32, s32> (a tuple of 2: (…, …)), got (1, 2, 3)"
    );
    assert_eq!(
        arg_err(&param("compound", "c"), "pink"),
        "unknown case `pink` of enum color (one of: red, green, blue)"
    );
    assert_eq!(
        arg_err(&param("compound", "p"), "{read, all}"),
        "unknown flag `all` of flags perms (flags: read, write, exec)"
    );
    assert_eq!(
        arg_err(&param("compound", "p"), "{read: true}"),
        "expected flags perms ({flag, …}; flags: read, write, exec), got {read: true}"
    );
    assert_eq!(
        arg_err(&param("compound", "u"), "ok(1)"),
        "ok: this case has no payload (write `ok`), got ok(1)"
    );
    assert_eq!(
        arg_err(&param("compound", "r"), "ok"),
        "ok: expected a payload of type u64, as in `ok(…)`"
    );
    assert_eq!(
        arg_err(&param("compound", "r"), "fine(1)"),
        "expected result<u64, string> (ok(…) or err(…)), got fine(1)"
    );
    assert_eq!(arg_err(&Type::U8, "256"), "expected u8, got 256");
    assert_eq!(arg_err(&Type::U32, "nope"), "expected u32, got nope");
    assert_eq!(arg_err(&Type::U32, "some(1)"), "expected u32, got some(1)");
    assert_eq!(
        arg_err(&Type::U32, "[1.5e3, x]"),
        "expected u32, got [1.5e3, x]"
    );
    assert_eq!(
        arg_err(&Type::Option(Box::new(Type::F32)), "some(1e39)"),
        "some: expected f32, got 1e39 (out of range)"
    );
    assert_eq!(
        arg_err(&Type::F64, "1e999"),
        "expected f64, got 1e999 (out of range)"
    );
    assert_eq!(
        arg_err(&Type::Bool, "yes"),
        "expected bool (true or false), got yes"
    );
    let long = format!("some({})", "1".repeat(50));
    assert_eq!(
        arg_err(&param("compound", "o"), &long),
        format!(
            "some: expected string (a string in double quotes), got {}…",
            "1".repeat(40)
        )
    );
}

#[test]
fn syntax_errors_give_the_column() {
    let strings = Type::List(Box::new(Type::String));
    assert_eq!(
        arg_err(&strings, r#"["a", "b\q"]"#),
        r#"at column 9: unknown escape `\q` (escapes: \n \t \r \\ \' \" \u{…})"#
    );
    assert_eq!(
        arg_err(&strings, r#"["\u{110000}"]"#),
        r"at column 3: `\u{110000}` is not a Unicode scalar value"
    );
    assert_eq!(
        arg_err(&strings, r#"["\u12"]"#),
        r"at column 3: expected `\u{…}` with 1 to 6 hex digits, as in `\u{1F600}`"
    );
    for bad in [r#"["\u{zz}"]"#, r#"["\u{+41}"]"#, r#"["\u{1234567}"]"#] {
        assert_eq!(
            arg_err(&strings, bad),
            r"at column 3: expected `\u{…}` with 1 to 6 hex digits, as in `\u{1F600}`",
            "{bad}"
        );
    }
    assert_eq!(
        arg_err(&strings, r#"["a", "b]"#),
        "at column 7: the string is not closed"
    );
    assert_eq!(
        arg_err(&Type::Char, r"'\q'"),
        r#"at column 2: unknown escape `\q` (escapes: \n \t \r \\ \' \" \u{…})"#
    );
    assert_eq!(
        arg_err(&Type::Char, "'ab'"),
        "at column 1: a character literal holds one character (strings take double quotes)"
    );
    assert_eq!(
        arg_err(&Type::Char, "''"),
        "at column 1: an empty character literal"
    );
    // Trailing garbage.
    assert_eq!(
        arg_err(&Type::U32, "5 x"),
        "at column 3: unexpected `x` after the value"
    );
    assert_eq!(
        arg_err(&param("compound", "o"), r#"some("x"))"#),
        "at column 10: unexpected `)` after the value"
    );
    assert_eq!(
        arg_err(&param("compound", "t"), r#"(1 "x")"#),
        "at column 4: expected `,` or `)`, got `\"`"
    );
    assert_eq!(
        arg_err(&param("compound", "t"), "(1,"),
        "at column 4: expected a value, got the end"
    );
    assert_eq!(
        arg_err(&param("compound", "o"), r#"some("x""#),
        "at column 9: expected `)` closing `some(`, got the end"
    );
    assert_eq!(
        arg_err(&param("compound", "p"), "{read write}"),
        "at column 7: expected `,` or `}`, got `w`"
    );
    assert_eq!(
        arg_err(&Type::S32, "-x"),
        "at column 2: expected a number after `-`, got `x`"
    );
    // Where a bare word is taken, it is one.
    assert_eq!(arg(&Type::List(Box::new(Type::U8)), "[1]]"), b"\x04[1]]");
    assert_eq!(
        arg_err(&Type::List(Box::new(Type::U32)), "[1, 2]\n]"),
        "at line 2, column 1: unexpected `]` after the value"
    );
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(arg_err(&Type::List(Box::new(Type::U32)), &deep).contains("nested"));
}

#[test]
fn json_with_a_mistake_gives_the_json_error() {
    let items = param("compound", "items");
    // A JSON object with a trailing comma: neither JSON nor WIT (quoted names).
    let err = arg_err(
        &items,
        r#"[{"name":"a","qty":1,"tags":[],"data":"","note":null,}]"#,
    );
    assert!(
        err.starts_with(
            "not valid JSON (trailing comma at line 1 column 54); expected list<record item>"
        ),
        "{err}"
    );
    let err = arg_err(&param("compound", "r"), r#"{"ok": 1"#);
    assert!(
        err.starts_with("not valid JSON (EOF while parsing"),
        "{err}"
    );
}

#[test]
fn unsupported_types_are_refused() {
    let ty = Type::Option(Box::new(Type::Stream(Some(Box::new(Type::U8)))));
    assert_eq!(
        arg_err(&ty, "some([1])"),
        "some: stream<u8> is not supported by `call` yet (no streams, futures or resources)"
    );
}
