//! [`Connector`]: endpoints to clients, one NATS connection per server set
//! and credentials.

use core::time::Duration;

use std::collections::HashMap;

use crate::endpoint::NatsEndpoint;
use crate::nats::NatsClient;
use crate::stream::StreamClient;
use crate::{Client, Endpoint, Limits, Target, TargetError};

use super::{CallOptions, NATS_CONNECT_TIMEOUT};

/// Turns endpoints into clients. Targets on the same NATS servers with the
/// same credentials and TLS share one connection, whatever their prefix
/// (each gets its own inbox and demultiplexer on it); TCP, Unix and
/// WebSocket clients connect per call or from their pool.
///
/// ```no_run
/// # async fn example() -> Result<(), transport::TargetError> {
/// use transport::client::Connector;
/// let connector = Connector::new("my-client");
/// let a = connector
///     .target(&"nats://127.0.0.1:4222/a".parse().unwrap(), Default::default())
///     .await?;
/// // The same connection, another prefix.
/// let b = connector
///     .target(&"nats://127.0.0.1:4222/b".parse().unwrap(), Default::default())
///     .await?;
/// # Ok(()) }
/// ```
pub struct Connector {
    client_name: String,
    limits: Limits,
    connect_headers: Vec<(String, String)>,
    connect_timeout: Duration,
    /// Keyed by the endpoint without prefix and queue group.
    nats: tokio::sync::Mutex<HashMap<NatsEndpoint, async_nats::Client>>,
}

impl Connector {
    /// A connector naming itself `client_name` to NATS servers, checking
    /// results against [`Limits::DEFAULT`], connecting to NATS within
    /// [`NATS_CONNECT_TIMEOUT`], sending no headers on WebSocket upgrades.
    pub fn new(client_name: impl Into<String>) -> Self {
        Self {
            client_name: client_name.into(),
            limits: Limits::DEFAULT,
            connect_headers: Vec::new(),
            connect_timeout: NATS_CONNECT_TIMEOUT,
            nats: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// What results may declare.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Headers sent when a connection opens (WebSocket upgrades).
    #[must_use]
    pub fn connect_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.connect_headers = headers;
        self
    }

    /// How long connecting to a NATS server may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A client of `endpoint`: over NATS on the connection to its servers,
    /// made on first use.
    ///
    /// # Errors
    ///
    /// [`TargetError`] when NATS cannot be reached or subscribed to, or the
    /// endpoint cannot be called.
    pub async fn client(&self, endpoint: &Endpoint) -> Result<Client, TargetError> {
        let fail = |reason: String| TargetError {
            endpoint: endpoint.to_string(),
            reason,
        };
        if !endpoint.access().is_empty() {
            return Err(fail(format!(
                "{} are listener options; a target cannot take them",
                endpoint.access().query().join(", ")
            )));
        }
        match endpoint {
            Endpoint::Nats(nats) => {
                let conn = self.nats(nats).await.map_err(fail)?;
                let client = NatsClient::new(conn, &nats.prefix, self.limits)
                    .await
                    .map_err(|err| fail(err.to_string()))?;
                Ok(Client::Nats(client))
            }
            other => StreamClient::for_endpoint(other, self.limits, self.connect_headers.clone())
                .map(Client::Stream)
                .ok_or_else(|| fail("not a client endpoint".into())),
        }
    }

    /// A [`Target`] of `endpoint` whose calls get `opts`' deadlines.
    ///
    /// # Errors
    ///
    /// As [`Connector::client`].
    pub async fn target(
        &self,
        endpoint: &Endpoint,
        opts: CallOptions,
    ) -> Result<Target, TargetError> {
        let client = self.client(endpoint).await?;
        Ok(Target::new(
            endpoint.clone(),
            client,
            opts.timeout,
            opts.idle_timeout,
        ))
    }

    /// The connection to `endpoint`'s servers, shared by every prefix.
    async fn nats(&self, endpoint: &NatsEndpoint) -> Result<async_nats::Client, String> {
        let key = NatsEndpoint {
            prefix: String::new(),
            queue_group: None,
            ..endpoint.clone()
        };
        // Held across the connect: two targets on one server set wait for
        // the same connection instead of making two.
        let mut shared = self.nats.lock().await;
        if let Some(conn) = shared.get(&key) {
            return Ok(conn.clone());
        }
        let conn = crate::nats::connect(endpoint, &self.client_name, self.connect_timeout)
            .await
            .map_err(|err| err.to_string())?;
        shared.insert(key, conn.clone());
        Ok(conn)
    }
}
