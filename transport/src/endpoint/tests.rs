//! The URL grammar: what parses, what prints, what is refused and why.
use super::*;

fn parse(s: &str) -> Endpoint {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn nats_keeps_credentials_and_redacts_them() {
    let e = parse("nats://user:s3cret@nats.example:4222/demo/app");
    let Endpoint::Nats(n) = &e else { panic!() };
    assert_eq!(n.servers, ["nats.example:4222"]);
    assert_eq!(n.prefix, "demo.app");
    assert_eq!(
        n.auth,
        NatsAuth::UserPassword {
            user: "user".into(),
            password: Secret::inline("s3cret".into())
        }
    );
    let NatsAuth::UserPassword { password, .. } = &n.auth else {
        panic!()
    };
    assert_eq!(password.expose(), "s3cret");
    for shown in [e.to_string(), format!("{e:?}"), format!("{n:?}")] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    assert_eq!(e.to_string(), "nats://user:***@nats.example:4222/demo.app");
}

#[test]
fn nats_token_cluster_and_options() {
    let e = parse("nats://tok3n@a:1,b,[::1]:3?queue_group=kv&tls_ca=/ca.pem");
    let Endpoint::Nats(n) = &e else { panic!() };
    assert_eq!(n.servers, ["a:1", "b:4222", "[::1]:3"]);
    assert_eq!(n.auth, NatsAuth::Token(Secret::inline("tok3n".into())));
    assert!(n.tls_required);
    assert_eq!(n.queue_group.as_deref(), Some("kv"));
    assert_eq!(n.server_urls()[0], "tls://a:1");
    assert!(!e.to_string().contains("tok3n"), "{e}");
    let e = parse("nats://h?creds=/etc/x.creds");
    assert!(
        matches!(&e, Endpoint::Nats(n) if n.auth == NatsAuth::CredsFile("/etc/x.creds".into()))
    );
    assert_eq!(e.to_string(), "nats://h:4222?creds=/etc/x.creds");
    let e = parse("nats://h?token=abc%21");
    assert!(
        matches!(&e, Endpoint::Nats(NatsEndpoint { auth: NatsAuth::Token(t), .. }) if t.expose() == "abc!")
    );
    assert!(!e.to_string().contains("abc"));
}

#[test]
fn nats_env_secrets() {
    std::env::set_var("TRANSPORT_TEST_TOKEN", "from-env");
    let e = parse("nats://h?token_env=TRANSPORT_TEST_TOKEN");
    assert!(
        matches!(&e, Endpoint::Nats(NatsEndpoint { auth: NatsAuth::Token(t), .. }) if t.expose() == "from-env")
    );
    assert_eq!(
        e.to_string(),
        "nats://h:4222?token_env=TRANSPORT_TEST_TOKEN"
    );
    let err = "nats://h?token_env=TRANSPORT_TEST_UNSET"
        .parse::<Endpoint>()
        .unwrap_err();
    assert!(err.to_string().contains("is not set"), "{err}");
}

#[test]
fn errors_redact_secrets() {
    for bad in [
        "nats://u:hunter2@h:notaport",
        "nats://u:hunter2@h?bogus=1",
        "nats://h?token=hunter2&creds=/x",
    ] {
        let err = bad.parse::<Endpoint>().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("***"), "{err}");
    }
}

#[test]
fn stream_endpoints() {
    assert_eq!(
        parse("tcp://127.0.0.1:7761"),
        Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 7761,
            pool: true,
            tls: None,
            access: Access::default(),
        }
    );
    assert_eq!(
        parse("tcp://x:1?pool=off").to_string(),
        "tcp://x:1?pool=off"
    );
    assert_eq!(
        parse("unix:///run/kv.sock"),
        Endpoint::Unix {
            path: "/run/kv.sock".into(),
            pool: true,
            access: Access::default(),
        }
    );
    let Endpoint::Ws(ws) = parse("wss://gw.example/wrpc/kv?tls_ca=/ca.pem") else {
        panic!()
    };
    assert_eq!(
        (ws.port, ws.path.as_str(), ws.secure),
        (443, "/wrpc/kv", true)
    );
    assert_eq!(ws.url(), "wss://gw.example:443/wrpc/kv");
    let Endpoint::Ws(ws) = parse("ws://127.0.0.1:8080") else {
        panic!()
    };
    assert_eq!((ws.port, ws.path.as_str()), (8080, "/"));
}

#[test]
fn tls_and_listener_options_round_trip() {
    for url in [
        "tcp://h:1?tls=required",
        "tcp://h:1?tls_ca=/ca.pem&tls_cert=/c.pem&tls_key=/k.pem&allow=host-a,spiffe://d/ns/a&namespace_from=cert",
        "tcp://h:1?namespace=blue",
        "unix:///run/kv.sock?allow_uid=0,1000&uid_namespace=1000:a,1001:b",
        "nats://h:4222?namespace_from=headers",
        "wss://h:443/wrpc?tls_ca=/ca.pem&tls_cert=/c.pem&tls_key=/k.pem&namespace_from=cert",
    ] {
        let parsed = parse(url);
        assert_eq!(parsed.to_string(), url);
        assert_eq!(parse(&parsed.to_string()), parsed);
    }
    let Endpoint::Tcp { tls, access, .. } = parse("tcp://h:1?tls_ca=/ca&allow=a,b") else {
        panic!()
    };
    assert_eq!(tls.unwrap().ca_file, Some("/ca".into()));
    assert_eq!(access.allow_names, ["a", "b"]);
    assert!(parse("tcp://h:1").access().is_empty());
}

#[test]
fn rejects_what_it_cannot_use() {
    for (bad, why) in [
        ("garbage", "not an endpoint URL"),
        ("http://x:1", "unsupported scheme `http`"),
        ("tcp://x", "needs a host and a port"),
        ("tcp://x:99999", "port `99999`"),
        ("tcp://x:1/path", "no path"),
        ("unix://relative.sock", "absolute path"),
        ("ws://h?tls_ca=/x", "need wss://"),
        ("nats://h?creds=/a&nkey=/b", "one way to authenticate"),
        ("nats://h/a b", "subject prefix"),
        ("nats://h?pool=off", "unknown option `pool`"),
        ("tcp://h:1?pool=maybe", "on or off"),
        ("nats://h?queue_group=a&queue_group=b", "given twice"),
        ("tcp://h:1?tls=maybe", "must be `required`"),
        ("tcp://h:1?allow=a", "needs tls_ca=FILE"),
        (
            "tcp://h:1?tls_cert=/c&tls_key=/k&allow=a",
            "needs tls_ca=FILE",
        ),
        ("tcp://h:1?tls_ca=/ca&allow=a,,b", "without empty items"),
        ("unix:///s?allow=a", "takes allow_uid"),
        ("nats://h?allow=a", "NATS permissions"),
        ("tcp://h:1?allow_uid=1", "unix:// listeners only"),
        ("unix:///s?allow_uid=root", "not a numeric uid"),
        (
            "tcp://h:1?namespace_from=cert",
            "needs verified client certificates",
        ),
        (
            "ws://h?namespace_from=cert",
            "needs verified client certificates",
        ),
        (
            "tcp://h:1?namespace_from=sky",
            "must be `cert` or `headers`",
        ),
        (
            "tcp://h:1?namespace=a&namespace_from=headers",
            "give one of",
        ),
        ("tcp://h:1?namespace=a%0Ab", "contains a newline"),
        ("unix:///s?uid_namespace=1", "is not UID:NAMESPACE"),
        ("tcp://h:1?uid_namespace=1:a", "unix:// listeners only"),
    ] {
        let err = bad.parse::<Endpoint>().unwrap_err().to_string();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn credentials_on_a_command_line_are_found_and_shown_redacted() {
    let found = |args: &[&str]| secret_on_command_line(args.iter().map(|a| (*a).to_string()));
    assert_eq!(
        found(&["ext", "--nats-url", "nats://tok3n@h:4222"]).as_deref(),
        Some("nats://***@h:4222")
    );
    assert_eq!(
        found(&["ext", "--redis-url=redis://:hunter2@r:6379/0"]).as_deref(),
        Some("redis://:***@r:6379/0")
    );
    assert!(found(&["ext", "--listen", "nats://u:p@h?queue_group=g"]).is_some());
    assert!(found(&["ext", "nats://h?token=abc"]).is_some());
    for fine in [
        "nats://u@h?password_env=P",
        "nats://h?token_env=T",
        "nats://h?creds=/c",
        "redis://r:6379",
        "redis://user@r:6379",
        "tcp://h:1?tls_ca=/ca",
        "--listen",
    ] {
        assert_eq!(found(&["ext", fine]), None, "{fine}");
    }
}
