//! Messages: publish → handler through messaging-nats and the host serving
//! a component's `wasmcloud:messaging/handler` export, next to a raw
//! async-nats subscriber doing the same work in the same run, for core NATS
//! and JetStream.
//!
//! The work per message, on both sides: `INCR seen:<id>`, `INCR by:<who>`
//! and `SET iv:<id>:1 <start>,<end>` in Redis (the component does it through
//! `wasi:keyvalue` and keyvalue-redis; the raw subscriber with redis-rs).
//! Each message's body carries its publish time, so the latency is the
//! handler's start minus the publish. Throughput: `count` messages published
//! as fast as possible (core NATS) or stored beforehand (JetStream), from the
//! first publish to the last handler's end, 64 in flight. Latency: `paced`
//! messages published 5 ms apart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use async_nats::jetstream;
use futures::StreamExt as _;
use harness::{spawn_host_at, Extension, HostProcess, Nats, Redis};

/// Messages being handled at once, on both sides (and the `pool_size` of
/// the pooled rows: as many instances made ahead).
const IN_FLIGHT: usize = 64;
/// Pause between paced publishes.
const PACE: Duration = Duration::from_millis(5);
/// A hang guard for one measurement.
const LIMIT: Duration = Duration::from_secs(300);
/// How long the count of handled messages may stand still before the
/// rest count as lost (core NATS drops what a subscriber does not take).
const STALL: Duration = Duration::from_secs(20);

/// One row: who handled the messages, in which mode, how fast.
#[derive(Debug, Clone)]
pub struct MessagingRow {
    /// `raw async-nats` or `extension + host`.
    pub who: &'static str,
    /// `core NATS` or `JetStream`.
    pub mode: &'static str,
    /// Messages per second under load.
    pub per_sec: f64,
    /// Publish → handler start, paced: p50 and p99 in microseconds.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// CPU time the host spent per message under load (user + system,
    /// from the first publish to the last message handled), in
    /// microseconds; `None` for the raw subscriber.
    pub host_cpu_us: Option<f64>,
}

/// User + system CPU time of process `pid` so far, in seconds
/// (`/proc/PID/stat`, clock ticks of 10 ms).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's closing parenthesis: state is the
    // first, utime the 12th and stime the 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The servers of the messaging benchmark.
pub struct MessagingStack {
    nats: Nats,
    redis: Redis,
    kv: Extension,
    _dir: harness::TempDir,
}

impl MessagingStack {
    /// Starts nats-server (JetStream), redis-server and keyvalue-redis.
    pub fn start() -> anyhow::Result<Self> {
        let dir = harness::TempDir::new("bench-js")?;
        let store = dir.display().to_string();
        let nats = Nats::start_with(&["-js", "-sd", &store])?;
        let redis = Redis::start()?;
        let kv = Extension::start(
            "keyvalue-redis",
            &["--redis-url".into(), redis.url()],
            &["tcp://127.0.0.1:0".into()],
        )?;
        Ok(Self {
            nats,
            redis,
            kv,
            _dir: dir,
        })
    }

    /// Every row: for each mode, the raw subscriber, then extension + host.
    pub fn measure(
        &self,
        count: usize,
        paced: usize,
        progress: impl Fn(&str),
    ) -> anyhow::Result<Vec<MessagingRow>> {
        let host = harness::bin("host")?;
        let mut rows = Vec::new();
        for jetstream in [false, true] {
            progress(&format!(
                "messaging: raw async-nats subscriber, {}",
                mode(jetstream)
            ));
            rows.push(self.raw(jetstream, count, paced)?);
            progress(&format!("messaging: extension + host, {}", mode(jetstream)));
            rows.push(self.ours(&host, jetstream, count, paced)?);
            progress(&format!(
                "messaging: extension + host with pool_size {IN_FLIGHT}, {}",
                mode(jetstream)
            ));
            rows.push(self.ours_with(&host, jetstream, count, paced, IN_FLIGHT)?);
        }
        Ok(rows)
    }

    fn rt() -> anyhow::Result<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Runtime::new()?)
    }

    fn redis_conn(&self) -> anyhow::Result<redis::Connection> {
        Ok(redis::Client::open(self.redis.url())?.get_connection()?)
    }

    fn flush_redis(&self) -> anyhow::Result<()> {
        let mut conn = self.redis_conn()?;
        redis::cmd("FLUSHALL").query::<()>(&mut conn)?;
        Ok(())
    }

    /// Waits until `n` messages were handled (`by:*` counters), then returns
    /// (start, end) of each handler run and the publish time from its id.
    fn collect(&self, n: usize) -> anyhow::Result<Vec<(u128, u128, u128)>> {
        let mut conn = self.redis_conn()?;
        let deadline = Instant::now() + LIMIT;
        let (mut last, mut moved) = (0, Instant::now());
        loop {
            let keys: Vec<String> = redis::cmd("KEYS").arg("kv:4:msgs:by:*").query(&mut conn)?;
            let mut done = 0;
            for key in keys {
                let v: u64 = redis::cmd("GET").arg(&key).query(&mut conn)?;
                done += v;
            }
            if done >= n as u64 {
                break;
            }
            if done != last {
                (last, moved) = (done, Instant::now());
            }
            if Instant::now() > deadline {
                bail!("only {done} of {n} messages handled within {LIMIT:?}");
            }
            if moved.elapsed() > STALL {
                bail!("only {done} of {n} messages handled, none more in {STALL:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let keys: Vec<String> = redis::cmd("KEYS").arg("kv:4:msgs:iv:*").query(&mut conn)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let v: String = redis::cmd("GET").arg(&key).query(&mut conn)?;
            let (a, b) = v.split_once(',').context("interval")?;
            // kv:4:msgs:iv:<seq>-<publish_ns>:1
            let id = key.trim_start_matches("kv:4:msgs:iv:");
            let published = id
                .split(':')
                .next()
                .and_then(|id| id.split('-').nth(1))
                .context("publish time in id")?;
            out.push((published.parse()?, a.parse()?, b.parse()?));
        }
        Ok(out)
    }

    /// Publishes `n` messages on `subject` (through JetStream when
    /// `jetstream`), `pace` apart; each id carries its publish time.
    fn publish(
        &self,
        subject: &str,
        n: usize,
        pace: Option<Duration>,
        jetstream: bool,
    ) -> anyhow::Result<()> {
        let url = self.nats.url();
        Self::rt()?.block_on(async {
            let client = async_nats::connect(&url).await?;
            let js = jetstream::new(client.clone());
            let mut acks = Vec::new();
            for i in 0..n {
                let body = format!("{i}-{}", now_ns());
                if jetstream {
                    acks.push(js.publish(subject.to_string(), body.into()).await?);
                    // async-nats bounds unacknowledged publishes: await them
                    // in batches.
                    if acks.len() == 1000 {
                        for ack in acks.drain(..) {
                            ack.await?;
                        }
                    }
                } else {
                    client.publish(subject.to_string(), body.into()).await?;
                }
                if let Some(pace) = pace {
                    client.flush().await?;
                    tokio::time::sleep(pace).await;
                }
            }
            client.flush().await?;
            for ack in acks {
                ack.await?;
            }
            anyhow::Ok(())
        })
    }

    fn create_stream(&self, name: &str, subject: &str) -> anyhow::Result<()> {
        let url = self.nats.url();
        Self::rt()?.block_on(async {
            let client = async_nats::connect(&url).await?;
            let js = jetstream::new(client);
            let _ = js.delete_stream(name).await;
            js.create_stream(jetstream::stream::Config {
                name: name.to_string(),
                subjects: vec![subject.to_string()],
                ..Default::default()
            })
            .await?;
            anyhow::Ok(())
        })
    }

    /// Throughput and paced latency of one side; `start` starts it
    /// subscribed to `subject` (stream `stream` in JetStream mode) and
    /// returns what keeps it running; `host` is the process whose CPU time
    /// per message is reported, if any.
    fn measure_one<T>(
        &self,
        who: &'static str,
        jetstream: bool,
        count: usize,
        paced: usize,
        start: impl Fn(&str, &str) -> anyhow::Result<T>,
        host: Option<u32>,
    ) -> anyhow::Result<MessagingRow> {
        // Throughput.
        self.flush_redis()?;
        let cpu_before = host.and_then(cpu_secs);
        let (stream, subject) = ("BENCH_LOAD", "bench.load");
        let running = if jetstream {
            self.create_stream(stream, subject)?;
            // Stored first: the consumer's rate alone is measured.
            self.publish(subject, count, None, true)?;
            start(stream, subject)?
        } else {
            let running = start(stream, subject)?;
            self.publish(subject, count, None, false)?;
            running
        };
        let runs = self.collect(count)?;
        let host_cpu_us = cpu_before
            .zip(host.and_then(cpu_secs))
            .map(|(before, after)| (after - before) * 1e6 / count as f64);
        drop(running);
        let first = runs.iter().map(|r| r.0.min(r.1)).min().unwrap_or(0);
        let last = runs.iter().map(|r| r.2).max().unwrap_or(0);
        let per_sec = count as f64 / ((last.saturating_sub(first)) as f64 / 1e9);
        // Latency, paced.
        self.flush_redis()?;
        let (stream, subject) = ("BENCH_PACED", "bench.paced");
        if jetstream {
            self.create_stream(stream, subject)?;
        }
        let running = start(stream, subject)?;
        self.publish(subject, paced, Some(PACE), jetstream)?;
        let runs = self.collect(paced)?;
        drop(running);
        let mut lat: Vec<f64> = runs
            .iter()
            .map(|(p, s, _)| s.saturating_sub(*p) as f64 / 1e3)
            .collect();
        lat.sort_by(f64::total_cmp);
        let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
        Ok(MessagingRow {
            who,
            mode: mode(jetstream),
            per_sec,
            p50_us: pick(0.5),
            p99_us: pick(0.99),
            host_cpu_us,
        })
    }

    /// The raw async-nats subscriber's row in one mode (JetStream or core).
    pub fn raw(&self, jetstream: bool, count: usize, paced: usize) -> anyhow::Result<MessagingRow> {
        let nats = self.nats.url();
        let redis = self.redis.url();
        self.measure_one(
            "raw async-nats",
            jetstream,
            count,
            paced,
            |stream, subject| RawSubscriber::start(&nats, &redis, jetstream, stream, subject),
            None,
        )
    }

    /// The row of messaging-nats delivering to the handler export served by
    /// the host binary `host`, in one mode (JetStream or core).
    pub fn ours(
        &self,
        host: &Path,
        jetstream: bool,
        count: usize,
        paced: usize,
    ) -> anyhow::Result<MessagingRow> {
        self.ours_with(host, jetstream, count, paced, 0)
    }

    /// As [`ours`](Self::ours), the handler component keeping `pool_size`
    /// instances made ahead.
    pub fn ours_with(
        &self,
        host: &Path,
        jetstream: bool,
        count: usize,
        paced: usize,
        pool_size: usize,
    ) -> anyhow::Result<MessagingRow> {
        // One host and one extension for both measurements of a mode.
        let handlers = format!("{}/bench-handlers", self.nats.url());
        let manifest = format!(
            r#"
name: bench-handlers
components:
  - name: handler
    file: ./guest.wasm
    pool_size: {pool_size}
    config: {{ REPLICA: "bench", SLEEP_MS: "0" }}
wrpc:
  - interface: wasi:keyvalue
    target: tcp://{kv}
  - interface: wasmcloud:messaging
    target: {nats}/bench-ext
exports:
  - interface: wasmcloud:messaging/handler@0.2.0
    serve: {handlers}
    max_concurrency: {IN_FLIGHT}
"#,
            kv = self.kv.tcp_addr().context("kv address")?,
            nats = self.nats.url(),
        );
        let host: HostProcess =
            spawn_host_at(host, &manifest, Path::new(guests::MSG_HANDLER), &[])?;
        host.await_exports(Duration::from_secs(30))?;
        let nats_url = self.nats.url();
        let who = if pool_size == 0 {
            "extension + host"
        } else {
            "extension + host, pooled"
        };
        let result = self.measure_one(
            who,
            jetstream,
            count,
            paced,
            |stream, subject| {
                let mut sub =
                    format!("subject={subject},handler={handlers},max-in-flight={IN_FLIGHT}");
                if jetstream {
                    sub.push_str(&format!(
                        ",jetstream={stream},durable=bench-{}",
                        stream.to_lowercase().replace('_', "-")
                    ));
                }
                Extension::start(
                    "messaging-nats",
                    &[
                        "--nats-url".into(),
                        format!("{nats_url}/bench-ext"),
                        "--subscribe".into(),
                        sub,
                    ],
                    &[],
                )
            },
            Some(host.pid()),
        );
        drop(host);
        result
    }
}

/// A mode's name in tables.
pub fn mode(jetstream: bool) -> &'static str {
    if jetstream {
        "JetStream"
    } else {
        "core NATS"
    }
}

/// The baseline: an async-nats subscriber doing the handler's work with
/// redis-rs, `IN_FLIGHT` messages at once, on its own runtime.
struct RawSubscriber {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawSubscriber {
    fn start(
        nats: &str,
        redis: &str,
        jetstream: bool,
        stream: &str,
        subject: &str,
    ) -> anyhow::Result<Self> {
        let (nats, redis, stream, subject) = (
            nats.to_string(),
            redis.to_string(),
            stream.to_string(),
            subject.to_string(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            // Without a runtime, `ready_tx` is dropped: `start` reports it.
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(err) => return eprintln!("raw subscriber: no runtime: {err}"),
            };
            rt.block_on(async move {
                let run = async {
                    let client = async_nats::connect(&nats).await?;
                    let redis = redis::Client::open(redis)?.get_multiplexed_async_connection().await?;
                    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
                    let work = move |id: String, redis: redis::aio::MultiplexedConnection| async move {
                        let mut redis = redis;
                        let start = now_ns();
                        let _: u64 = redis::cmd("INCR").arg(format!("kv:4:msgs:seen:{id}")).query_async(&mut redis).await?;
                        let _: u64 = redis::cmd("INCR").arg("kv:4:msgs:by:raw").query_async(&mut redis).await?;
                        let end = now_ns();
                        redis::cmd("SET").arg(format!("kv:4:msgs:iv:{id}:1")).arg(format!("{start},{end}")).query_async::<()>(&mut redis).await?;
                        anyhow::Ok(())
                    };
                    if jetstream {
                        let js = jetstream::new(client);
                        let consumer = js
                            .get_stream(&stream)
                            .await?
                            .create_consumer(jetstream::consumer::pull::Config {
                                durable_name: Some(format!("raw-{}", stream.to_lowercase().replace('_', "-"))),
                                ..Default::default()
                            })
                            .await?;
                        let mut messages = consumer.stream().max_messages_per_batch(IN_FLIGHT).messages().await?;
                        let _ = ready_tx.send(());
                        while let Some(msg) = messages.next().await {
                            let msg = msg?;
                            let permit = Arc::clone(&permits).acquire_owned().await?;
                            let redis = redis.clone();
                            tokio::spawn(async move {
                                let id = String::from_utf8_lossy(&msg.payload).into_owned();
                                if work(id, redis).await.is_ok() {
                                    let _ = msg.ack().await;
                                }
                                drop(permit);
                            });
                        }
                    } else {
                        let mut sub = client.subscribe(subject).await?;
                        client.flush().await?;
                        let _ = ready_tx.send(());
                        while let Some(msg) = sub.next().await {
                            let permit = Arc::clone(&permits).acquire_owned().await?;
                            let redis = redis.clone();
                            tokio::spawn(async move {
                                let id = String::from_utf8_lossy(&msg.payload).into_owned();
                                if let Err(err) = work(id, redis).await {
                                    eprintln!("raw subscriber: a message's work failed: {err:#}");
                                }
                                drop(permit);
                            });
                        }
                    }
                    anyhow::Ok(())
                };
                tokio::select! {
                    r = run => if let Err(err) = r { eprintln!("raw subscriber: {err:#}") },
                    _ = stopped => {}
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .context("the raw subscriber did not start")?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for RawSubscriber {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The rows as a markdown table, with the ratios to the raw subscriber.
pub fn table(rows: &[MessagingRow]) -> String {
    let mut out = String::from(
        "| mode | handled by | msgs/s | ÷ raw | p50 publish→handler | p99 |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let raw = rows
            .iter()
            .find(|r| r.mode == row.mode && r.who == "raw async-nats")
            .map_or(f64::NAN, |r| r.per_sec);
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.0} µs | {:.0} µs |\n",
            row.mode,
            row.who,
            row.per_sec,
            row.per_sec / raw,
            row.p50_us,
            row.p99_us
        ));
    }
    out
}
