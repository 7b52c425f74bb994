//! A user-defined, resource-free interface (`example:echo/echo`) forwarded
//! generically by the plugin to the sdk's echo example extension.

use std::time::Duration;

use e2e::{assert_success, per_transport, serve, unserved_target, Transport, ECHO_GUEST};
use harness::workload::{Component, Workload};
use harness::{example, Nats};

const RUN_LIMIT: Duration = Duration::from_secs(120);

per_transport!(
    echo_roundtrip,
    echo_extension_not_running,
    echo_extension_silent
);

/// The echo guest (`COUNT` calls) routed to `target` with `route`'s extra lines.
fn workload(count: u32, target: &str, route: &str) -> Workload {
    Workload::new("echoer")
        .namespace("tests")
        .component(
            Component::new("api", ECHO_GUEST)
                .config("MESSAGE", "hi")
                .config("COUNT", count),
        )
        .route("example:echo/echo", target, route)
}

fn manifest(target: &str) -> Workload {
    workload(3, target, "timeout: 5s")
}

/// Three calls through the generic path; the extension sees the calling
/// workload's name on every transport (NATS headers, the pooled call header,
/// the WebSocket upgrade request).
fn echo_roundtrip(transport: Transport) {
    let served = serve(transport, &example("echo").unwrap(), &[]);
    let run = manifest(&served.target).run(&[], RUN_LIMIT).unwrap();
    assert_success(&run, "echo to echoer: hi #0");
    assert!(run.stdout.contains("echo to echoer: hi #2"), "{run:#?}");
}

/// With nothing serving the interface, the guest's call fails within the
/// deadline and the host exits non-zero in one line naming the function, the
/// target and the reason: generic imports have no error value to return, so
/// the guest traps (adapted interfaces such as wasi:keyvalue return an error
/// value instead). Nothing about decoding: the call never got that far.
fn echo_extension_not_running(transport: Transport) {
    let nats = Nats::start().unwrap();
    let target = unserved_target(transport, &nats);
    let run = manifest(&target).run(&[], RUN_LIMIT).unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    let reason = match transport {
        Transport::Nats => "nothing is serving it (no NATS responders)".to_string(),
        Transport::Unix => format!("nothing listens at {target} (no such socket)"),
        _ => format!("nothing listens at {target} (connection refused)"),
    };
    assert!(
        run.stderr.starts_with(&format!(
            "component `api` trapped: example:echo/echo@0.1.0.echo: extension unreachable at {target}: {reason}"
        )) && !run.stderr.contains("decode")
            && run.stderr.lines().count() == 1,
        "{run:#?}"
    );
}

/// A target that takes the call and never answers: the guest traps when
/// the route's 1 s deadline passes, and the line names the function, the
/// target and the deadline.
fn echo_extension_silent(transport: Transport) {
    let nats = Nats::start().unwrap();
    let dir = e2e::TempDir::new("silent").unwrap();
    let (target, _silent) = e2e::silent_target(transport, &nats, &dir);
    let run = workload(1, &target, "timeout: 1s\ncheck: false")
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "component `api` trapped: example:echo/echo@0.1.0.echo: no answer from {target} within 1s"
        ),
        "{run:#?}"
    );
}
