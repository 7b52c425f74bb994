//! WASI 0.3 components on the host: a guest running `wasi:cli/run@0.3.0`
//! calls `async func`s over `stream<u8>`, `stream<T>` and `future<T>`
//! (`example:streams/bytes`) through a routed import, against the sdk's
//! `bytes` example on every transport, and against another host serving a
//! WASI 0.3 component's export over TCP and NATS. Each run sends 1 MiB out
//! and back, streamed while it is written, a stream of strings back, a
//! stream of numbers out for a future back, and a future out.

use std::time::Duration;

use e2e::{assert_success, per_transport, serve, Transport, STREAMS_GUEST, STREAMS_SERVICE};
use harness::workload::{Component, Workload};
use harness::{example, HostProcess, HostRun, Nats};

const RUN_LIMIT: Duration = Duration::from_secs(120);

per_transport!(streams_to_an_sdk_extension);

fn manifest(target: &str, size: usize) -> Workload {
    Workload::new("streamer")
        .namespace("tests")
        .component(Component::new("client", STREAMS_GUEST).config("SIZE", size))
        .route("example:streams/bytes", target, "timeout: 10s")
}

/// The guest succeeded, was greeted by `by`, and printed the tally and the
/// echo of `size` bytes of its pattern.
#[track_caller]
fn assert_streamed(run: &HostRun, size: usize, by: &str) {
    assert_success(run, &format!("all {size} bytes went out and came back"));
    let sum = (0..size).fold(0u64, |s, i| {
        s.wrapping_add(u64::from((i.wrapping_mul(31).wrapping_add(7) % 251) as u8))
    });
    for line in [
        format!("greet: hello a WASI 0.3 guest, from {by}"),
        format!("tally: {size} bytes, sum {sum}"),
        format!("echo: {size} bytes back, sum {sum}"),
        "count: 250 strings, last Some(\"250\")".to_string(),
        "sum: 500500".to_string(),
        "shout: QUIET".to_string(),
    ] {
        assert!(run.stdout.contains(&line), "`{line}`: {run:#?}");
    }
}

/// The guest's three calls against the extension: a plain async function,
/// a stream in, a stream in and one back.
fn streams_to_an_sdk_extension(transport: Transport) {
    let served = serve(transport, &example("bytes").unwrap(), &[]);
    let size = 1 << 20;
    let run = manifest(&served.target, size).run(&[], RUN_LIMIT).unwrap();
    assert_streamed(&run, size, "the bytes extension (called by streamer)");
}

/// A host serving the WASI 0.3 component's `example:streams/bytes` at `serve`.
fn service_host(serve: &str) -> (HostProcess, String) {
    let host = Workload::new("service")
        .component(Component::new("bytes", STREAMS_SERVICE))
        .export_with("example:streams/bytes", serve, "timeout: 30s")
        .spawn(&[], &[])
        .unwrap();
    let served = host.await_exports(Duration::from_secs(30)).unwrap();
    let (_, address) = served
        .into_iter()
        .find(|(export, _)| export.starts_with("example:streams/bytes"))
        .expect("the export is served");
    (host, address)
}

/// One host runs the WASI 0.3 guest, another serves the WASI 0.3
/// component its calls go to: async functions, and streams both ways
/// between two stores on two hosts.
fn host_to_host(serve: &str, target: impl FnOnce(&str) -> String) {
    let (_service, address) = service_host(serve);
    let size = 1 << 20;
    let run = manifest(&target(&address), size)
        .run(&[], RUN_LIMIT)
        .unwrap();
    assert_streamed(&run, size, "a WASI 0.3 component");
}

#[test]
fn a_wasi_p3_export_served_over_tcp() {
    host_to_host("tcp://127.0.0.1:0", |address| address.to_string());
}

#[test]
fn a_wasi_p3_export_served_over_nats() {
    let nats = Nats::start().unwrap();
    let url = format!("{}/p3", nats.url());
    host_to_host(&url, |_| url.clone());
}

/// Empty streams: each ends at once, both ways, and the calls still return.
#[test]
fn an_empty_stream_goes_out_and_back() {
    let served = serve(Transport::Tcp, &example("bytes").unwrap(), &[]);
    let run = manifest(&served.target, 0).run(&[], RUN_LIMIT).unwrap();
    assert_success(&run, "all 0 bytes went out and came back");
    assert!(run.stdout.contains("tally: 0 bytes, sum 0"), "{run:#?}");
}
