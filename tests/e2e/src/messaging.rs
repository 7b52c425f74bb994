//! The messaging stack the messaging and fault tests share: nats-server
//! with JetStream, Redis and keyvalue-redis, hosts serving the handler
//! component (`MSG_HANDLER`), messaging-nats, and what the handler counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use harness::workload::{Component, Workload};
use harness::{Extension, HostProcess, Nats, Redis};

use crate::{MSG_GUEST, MSG_HANDLER};

/// The handler interface the handler component exports.
pub const HANDLER: &str = "wasmcloud:messaging/handler@0.2.0";
/// How long a test waits for messages to be handled.
pub const WAIT: Duration = Duration::from_secs(90);

/// How the extension reaches the handler the host serves.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// Over NATS.
    Nats,
    /// Over TCP.
    Tcp,
}

/// NATS (with JetStream), Redis and keyvalue-redis, shared by a test's hosts.
pub struct Stack {
    /// nats-server, with JetStream.
    pub nats: Nats,
    /// Redis, behind keyvalue-redis.
    pub redis: Redis,
    /// keyvalue-redis, on TCP.
    pub kv: Extension,
    _js_dir: crate::TempDir,
}

impl Stack {
    pub fn start() -> Self {
        let js_dir = crate::TempDir::new("jetstream").unwrap();
        let store = js_dir.path().display().to_string();
        let nats = Nats::start_with(&["-js", "-sd", &store]).unwrap();
        let redis = Redis::start().unwrap();
        let kv = Extension::start(
            "keyvalue-redis",
            &["--redis-url".into(), redis.url()],
            &["tcp://127.0.0.1:0".into()],
        )
        .unwrap();
        Self {
            nats,
            redis,
            kv,
            _js_dir: js_dir,
        }
    }

    /// Where messaging-nats serves `consumer` for components.
    pub fn consumer_target(&self) -> String {
        format!("{}/ext", self.nats.url())
    }

    /// A host serving the handler component's export; returns it and the
    /// target the extension calls.
    pub fn handler_host(
        &self,
        path: Via,
        config: &[(&str, &str)],
        max_concurrency: usize,
    ) -> (HostProcess, String) {
        self.handler_host_within(path, config, max_concurrency, "10s")
    }

    /// Like [`Stack::handler_host`], each call of the export within `timeout`.
    pub fn handler_host_within(
        &self,
        path: Via,
        config: &[(&str, &str)],
        max_concurrency: usize,
        timeout: &str,
    ) -> (HostProcess, String) {
        let serve = match path {
            Via::Nats => format!("{}/handlers", self.nats.url()),
            Via::Tcp => "tcp://127.0.0.1:0".to_string(),
        };
        let host = Workload::new("handlers")
            .component(with_config(Component::new("handler", MSG_HANDLER), config))
            .route(
                "wasi:keyvalue",
                &format!("tcp://{}", self.kv.tcp_addr().unwrap()),
                "",
            )
            .route("wasmcloud:messaging", &self.consumer_target(), "")
            .export_with(
                HANDLER,
                &serve,
                &format!("max_concurrency: {max_concurrency}\ntimeout: {timeout}"),
            )
            .spawn(&[], &[])
            .unwrap();
        let served = host.await_exports(Duration::from_secs(30)).unwrap();
        let (interface, addr) = served
            .first()
            .cloned()
            .expect("the host announced no export");
        assert_eq!(interface, HANDLER);
        (host, addr)
    }

    /// messaging-nats serving `consumer` on NATS, with `subscriptions`.
    pub fn extension(&self, subscriptions: &[String]) -> Extension {
        self.extension_with_grace(subscriptions, "5s")
    }

    /// Like [`Stack::extension`], draining for at most `grace` on SIGTERM.
    pub fn extension_with_grace(&self, subscriptions: &[String], grace: &str) -> Extension {
        self.extension_with_args(subscriptions, &["--shutdown-grace", grace])
    }

    /// Like [`Stack::extension`], with extra flags.
    pub fn extension_with_args(&self, subscriptions: &[String], flags: &[&str]) -> Extension {
        let mut args = vec!["--nats-url".to_string(), self.consumer_target()];
        args.extend(flags.iter().map(|f| f.to_string()));
        for s in subscriptions {
            args.push("--subscribe".into());
            args.push(s.clone());
        }
        Extension::start("messaging-nats", &args, &[]).unwrap()
    }

    /// A publisher or requester component run to the end.
    pub fn run_guest(&self, config: &[(&str, &str)]) -> harness::HostRun {
        Workload::new("publisher")
            .component(with_config(Component::new("publisher", MSG_GUEST), config))
            .route("wasmcloud:messaging", &self.consumer_target(), "")
            .run(&[], Duration::from_secs(60))
            .unwrap()
    }

    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The handler's counters in bucket `msgs` whose key starts with `prefix`
    /// (`seen:`, `by:`), by the rest of the key.
    pub fn counts(&self, prefix: &str) -> HashMap<String, u64> {
        let mut conn = self.redis();
        let pattern = format!("kv:4:msgs:{prefix}*");
        let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
        let mut out = HashMap::new();
        // One MGET per 1,000 keys: the fault suite counts 10,000 ids.
        for chunk in keys.chunks(1000) {
            let values: Vec<Option<String>> =
                redis::cmd("MGET").arg(chunk).query(&mut conn).unwrap();
            for (key, value) in chunk.iter().zip(values) {
                let Some(value) = value else { continue };
                let name = key.trim_start_matches(&format!("kv:4:msgs:{prefix}"));
                out.insert(name.to_string(), value.parse().unwrap());
            }
        }
        out
    }

    /// The handler's recorded intervals (start, end) in nanoseconds.
    pub fn intervals(&self) -> Vec<(u128, u128)> {
        let mut conn = self.redis();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("kv:4:msgs:iv:*")
            .query(&mut conn)
            .unwrap();
        keys.iter()
            .map(|key| {
                let v: String = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
                let (a, b) = v.split_once(',').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect()
    }

    /// Waits until `done(seen counts)` holds, or fails after `limit` with what was seen.
    pub fn await_seen(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&HashMap<String, u64>) -> bool,
    ) -> HashMap<String, u64> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.counts("seen:");
            if done(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; {} ids seen",
                seen.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Runtime::new().unwrap()
    }

    /// Publishes `ids` on `subject` with a plain async-nats client (through
    /// JetStream, each acknowledged, when `jetstream`).
    pub fn publish(&self, subject: &str, ids: &[String], jetstream: bool) {
        let url = self.nats.url();
        Self::rt().block_on(async {
            let client = async_nats::connect(&url).await.unwrap();
            if jetstream {
                let js = jetstream::new(client.clone());
                for id in ids {
                    js.publish(subject.to_string(), id.clone().into())
                        .await
                        .unwrap()
                        .await
                        .unwrap();
                }
            } else {
                for id in ids {
                    client
                        .publish(subject.to_string(), id.clone().into())
                        .await
                        .unwrap();
                }
                client.flush().await.unwrap();
            }
        });
    }

    /// Creates JetStream stream `name` storing `subjects`.
    pub fn create_stream(&self, name: &str, subjects: &[&str]) {
        let url = self.nats.url();
        Self::rt().block_on(async {
            let client = async_nats::connect(&url).await.unwrap();
            jetstream::new(client)
                .create_stream(jetstream::stream::Config {
                    name: name.to_string(),
                    subjects: subjects.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                })
                .await
                .unwrap();
        });
    }

    /// (pending, waiting for acknowledgement) of durable `durable` on `stream`.
    pub fn consumer_state(&self, stream: &str, durable: &str) -> (u64, usize) {
        let info = self.consumer_info(stream, durable);
        (info.num_pending, info.num_ack_pending)
    }

    /// What NATS says of durable `durable` on `stream`.
    pub fn consumer_info(&self, stream: &str, durable: &str) -> jetstream::consumer::Info {
        let url = self.nats.url();
        Self::rt().block_on(async {
            let client = async_nats::connect(&url).await.unwrap();
            let js = jetstream::new(client);
            let mut consumer: jetstream::consumer::PullConsumer = js
                .get_stream(stream)
                .await
                .unwrap()
                .get_consumer(durable)
                .await
                .unwrap();
            consumer.info().await.unwrap().clone()
        })
    }
}

/// `component` with each of `config`.
pub fn with_config(component: Component, config: &[(&str, &str)]) -> Component {
    config.iter().fold(component, |c, (k, v)| c.config(k, v))
}

/// `PREFIX0`, `PREFIX1`, … (`n` of them).
pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}
