//! The Redis-backed handler for the three key-value interfaces.

use core::fmt;
use core::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult};
use sdk::keyvalue::{atomics, batch, store};
use sdk::CallerContext;
use tracing::debug;

use crate::error;
use crate::keys::KeyScheme;

type Outcome<T> = anyhow::Result<Result<T, store::Error>>;

/// Redis connection and key layout flags.
#[derive(Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis to store keys in; rediss:// for TLS.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,

    /// PEM file of the CA that signed Redis's certificate (rediss:// with a private CA).
    #[arg(long, env = "REDIS_CA_FILE")]
    redis_ca_file: Option<std::path::PathBuf>,

    /// Deadline for each Redis command (and for connecting).
    #[arg(long, env = "REDIS_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    redis_timeout: Duration,

    /// First segment of every Redis key this extension writes.
    #[arg(long, env = "KV_KEY_PREFIX", default_value = "kv")]
    key_prefix: String,

    /// Keep workloads of different namespaces apart; every listener must name where a call's namespace comes from (namespace=, namespace_from=, uid_namespace=).
    #[arg(long, env = "KV_ISOLATE_NAMESPACES")]
    pub isolate_namespaces: bool,

    /// Keys Redis examines per list-keys page (SCAN COUNT).
    #[arg(long, env = "KV_SCAN_COUNT", default_value_t = 500)]
    scan_count: usize,
}

impl fmt::Debug for RedisArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisArgs")
            .field("redis_url", &"<redacted>")
            .field("redis_ca_file", &self.redis_ca_file)
            .field("redis_timeout", &self.redis_timeout)
            .field("key_prefix", &self.key_prefix)
            .field("isolate_namespaces", &self.isolate_namespaces)
            .field("scan_count", &self.scan_count)
            .finish()
    }
}

/// Serves keyvalue calls from one multiplexed, self-reconnecting Redis connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    keys: KeyScheme,
    scan_count: usize,
}

impl RedisStore {
    /// Prepares the connection; it is made on the first command, so the
    /// extension starts (not ready) while Redis is down.
    pub fn connect(args: &RedisArgs) -> anyhow::Result<Self> {
        let client = match &args.redis_ca_file {
            None => redis::Client::open(args.redis_url.as_str()),
            Some(path) => {
                let root_cert = std::fs::read(path).map_err(|err| {
                    anyhow::anyhow!("cannot read --redis-ca-file {}: {err}", path.display())
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(args.redis_url.as_str(), certs)
            }
        }
        .map_err(|err| anyhow::anyhow!("invalid --redis-url or --redis-ca-file: {err}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(args.redis_timeout))
            .set_response_timeout(Some(args.redis_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            keys: KeyScheme::new(args.key_prefix.clone(), args.isolate_namespaces),
            scan_count: args.scan_count.max(1),
        })
    }

    /// `Ok` when Redis answers PING.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|err| err.to_string())
    }

    fn prefix(&self, cx: &CallerContext, bucket: &str) -> String {
        self.keys.bucket_prefix(cx.namespace(), bucket)
    }

    /// Runs `cmd`. A command that failed because no connection could be made
    /// was never sent, so it runs once more: by then the manager has started
    /// a fresh connection. Without this the first call after Redis comes back
    /// would get the failure of the last reconnect attempt made while it was
    /// down, or not, depending on timing.
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        match cmd.query_async(&mut self.conn.clone()).await {
            Err(err) if err.is_connection_refusal() => {
                cmd.query_async(&mut self.conn.clone()).await
            }
            other => other,
        }
    }

    /// Like [`RedisStore::query`], for a pipeline.
    async fn query_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        match pipe.query_async(&mut self.conn.clone()).await {
            Err(err) if err.is_connection_refusal() => {
                pipe.query_async(&mut self.conn.clone()).await
            }
            other => other,
        }
    }
}

fn map<T>(res: redis::RedisResult<T>) -> Outcome<T> {
    Ok(res.map_err(|err| error::redis(&err)))
}

impl store::Handler<CallerContext> for RedisStore {
    async fn get(&self, cx: CallerContext, bucket: String, key: String) -> Outcome<Option<Bytes>> {
        let key = self.prefix(&cx, &bucket) + &key;
        map(self
            .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(key))
            .await
            .map(|v| v.map(Bytes::from)))
    }

    async fn set(
        &self,
        cx: CallerContext,
        bucket: String,
        key: String,
        value: Bytes,
    ) -> Outcome<()> {
        let key = self.prefix(&cx, &bucket) + &key;
        map(self
            .query::<()>(redis::cmd("SET").arg(key).arg(value.as_ref()))
            .await)
    }

    async fn delete(&self, cx: CallerContext, bucket: String, key: String) -> Outcome<()> {
        let key = self.prefix(&cx, &bucket) + &key;
        map(self.query::<()>(redis::cmd("DEL").arg(key)).await)
    }

    async fn exists(&self, cx: CallerContext, bucket: String, key: String) -> Outcome<bool> {
        let key = self.prefix(&cx, &bucket) + &key;
        map(self.query::<bool>(redis::cmd("EXISTS").arg(key)).await)
    }

    async fn list_keys(
        &self,
        cx: CallerContext,
        bucket: String,
        cursor: Option<u64>,
    ) -> Outcome<store::KeyResponse> {
        let prefix = self.prefix(&cx, &bucket);
        let scan = redis::cmd("SCAN")
            .arg(cursor.unwrap_or(0))
            .arg("MATCH")
            .arg(KeyScheme::match_pattern(&prefix))
            .arg("COUNT")
            .arg(self.scan_count)
            .clone();
        let (next, raw): (u64, Vec<Vec<u8>>) = match self.query(&scan).await {
            Ok(page) => page,
            Err(err) => return Ok(Err(error::redis(&err))),
        };
        let keys = raw
            .iter()
            .filter_map(|k| k.strip_prefix(prefix.as_bytes()))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>();
        debug!(bucket, cursor, next, keys = keys.len(), "list-keys page");
        Ok(Ok(store::KeyResponse {
            keys,
            cursor: (next != 0).then_some(next),
        }))
    }
}

impl atomics::Handler<CallerContext> for RedisStore {
    async fn increment(
        &self,
        cx: CallerContext,
        bucket: String,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        let Ok(delta) = i64::try_from(delta) else {
            return Ok(Err(error::invalid(format!(
                "increment delta {delta} is larger than Redis can add ({})",
                i64::MAX
            ))));
        };
        let key = self.prefix(&cx, &bucket) + &key;
        match self
            .query::<i64>(redis::cmd("INCRBY").arg(key).arg(delta))
            .await
        {
            Ok(value) => Ok(u64::try_from(value)
                .map_err(|_| error::invalid(format!("counter holds {value}, which is not a u64")))),
            Err(err) => Ok(Err(error::redis(&err))),
        }
    }
}

impl batch::Handler<CallerContext> for RedisStore {
    async fn get_many(
        &self,
        cx: CallerContext,
        bucket: String,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Bytes)>>> {
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let prefix = self.prefix(&cx, &bucket);
        let full: Vec<String> = keys.iter().map(|k| prefix.clone() + k).collect();
        let values = match self
            .query::<Vec<Option<Vec<u8>>>>(redis::cmd("MGET").arg(full))
            .await
        {
            Ok(values) => values,
            Err(err) => return Ok(Err(error::redis(&err))),
        };
        Ok(Ok(keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| v.map(|v| (k, Bytes::from(v))))
            .collect()))
    }

    async fn set_many(
        &self,
        cx: CallerContext,
        bucket: String,
        key_values: Vec<(String, Bytes)>,
    ) -> Outcome<()> {
        if key_values.is_empty() {
            return Ok(Ok(()));
        }
        let prefix = self.prefix(&cx, &bucket);
        let mut pipe = redis::pipe();
        for (k, v) in &key_values {
            pipe.set(prefix.clone() + k, v.as_ref()).ignore();
        }
        map(self.query_pipe::<()>(&pipe).await)
    }

    async fn delete_many(
        &self,
        cx: CallerContext,
        bucket: String,
        keys: Vec<String>,
    ) -> Outcome<()> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        let prefix = self.prefix(&cx, &bucket);
        let full: Vec<String> = keys.iter().map(|k| prefix.clone() + k).collect();
        map(self.query::<()>(redis::cmd("DEL").arg(full)).await)
    }
}
