//! Clients that are not ours against keyvalue-redis: upstream wRPC 0.17's
//! TCP client (one connection per call, the framing `wrpc-wasmtime tcp run`
//! speaks) and its NATS client, through `wit-bindgen-wrpc` bindings.

use bytes::Bytes;
use harness::{Extension, Nats, Redis};

mod bindings {
    wit_bindgen_wrpc::generate!({ world: "imports", path: "../../wit/wrpc-keyvalue" });
}

use bindings::wrpc::keyvalue::{atomics, store};

/// set, get, increment and list-keys through `client`, checking each value.
async fn scenario<C>(client: &C, cx: impl Fn() -> C::Context) -> anyhow::Result<()>
where
    C: wrpc_transport::Invoke,
{
    store::set(client, cx(), "upstream", "k", &Bytes::from_static(b"v"))
        .await?
        .map_err(|e| anyhow::anyhow!("set: {e:?}"))?;
    let got = store::get(client, cx(), "upstream", "k")
        .await?
        .map_err(|e| anyhow::anyhow!("get: {e:?}"))?;
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    let n = atomics::increment(client, cx(), "upstream", "n", 41)
        .await?
        .map_err(|e| anyhow::anyhow!("increment: {e:?}"))?;
    let n = n + atomics::increment(client, cx(), "upstream", "n", 0)
        .await?
        .map_err(|e| anyhow::anyhow!("increment: {e:?}"))?;
    assert_eq!(n, 82);
    let page = store::list_keys(client, cx(), "upstream", None)
        .await?
        .map_err(|e| anyhow::anyhow!("list-keys: {e:?}"))?;
    let mut keys = page.keys;
    keys.sort();
    assert_eq!(keys, ["k", "n"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tcp_client() {
    let redis = Redis::start().unwrap();
    let ext = Extension::start(
        "keyvalue-redis",
        &["--redis-url".into(), redis.url()],
        &["tcp://127.0.0.1:0".into()],
    )
    .unwrap();
    let client = wrpc_transport::tcp::Client::from(ext.tcp_addr().unwrap().to_string());
    scenario(&client, || ()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_nats_client() {
    let redis = Redis::start().unwrap();
    let nats = Nats::start().unwrap();
    let _ext = Extension::start(
        "keyvalue-redis",
        &["--redis-url".into(), redis.url()],
        &[nats.url()],
    )
    .unwrap();
    let conn = async_nats::connect(nats.url()).await.unwrap();
    let client = wrpc_transport_nats::Client::new(conn, "", None)
        .await
        .unwrap();
    scenario(&client, || None).await.unwrap();
}
