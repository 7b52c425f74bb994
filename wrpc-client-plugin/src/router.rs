//! One [`Invoke`] for a workload: picks each call's target by interface and
//! bounds it with the route's deadline.

use core::time::Duration;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use anyhow::anyhow;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, info};
use wrpc_transport::Invoke;

use crate::transport::{CallFailure, Deadline, Incoming, Outgoing};
use crate::{CallError, Caller, InterfaceName, SetupError, Target};

/// Guest-facing packages the plugin adapts itself, with the flat wire package
/// their calls travel as. Declaring the first routes the second.
pub(crate) const ADAPTED: &[(&str, &str)] = &[("wasi:keyvalue", "wrpc:keyvalue")];

/// One `wrpc:` entry of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration {
    /// The interface or package routed.
    pub interface: InterfaceName,
    /// Where to; `None` for the host's default.
    pub target: Option<Target>,
    /// Deadline per call; `None` for the host's default.
    pub timeout: Option<Duration>,
}

/// Host-wide defaults for declarations that leave things out.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// Target for short-form declarations.
    pub target: Option<Target>,
    /// Deadline per call.
    pub timeout: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            target: None,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
enum Client {
    Nats(wrpc_transport_nats::Client),
    Tcp(wrpc_transport::tcp::Client<String>),
}

struct Route {
    declared: InterfaceName,
    /// The wire package's name, for adapted packages.
    wire: Option<InterfaceName>,
    target: Target,
    timeout: Duration,
    client: Client,
}

/// Routes a workload's declared interfaces to their extensions.
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds the routes, connecting once to each NATS server named.
    ///
    /// # Errors
    ///
    /// [`SetupError::NoTarget`] for a declaration without a target when there
    /// is no default, [`SetupError::Duplicate`] for an interface declared twice,
    /// [`SetupError::Nats`] when a NATS server cannot be reached.
    pub async fn connect(
        declarations: &[Declaration],
        defaults: &Defaults,
    ) -> Result<Self, SetupError> {
        let mut nats: HashMap<String, async_nats::Client> = HashMap::new();
        let mut routes: Vec<Route> = Vec::with_capacity(declarations.len());
        for decl in declarations {
            if routes.iter().any(|r| r.declared == decl.interface) {
                return Err(SetupError::Duplicate(decl.interface.clone()));
            }
            let target = decl
                .target
                .clone()
                .or_else(|| defaults.target.clone())
                .ok_or_else(|| SetupError::NoTarget(decl.interface.clone()))?;
            let client = match &target {
                Target::Tcp { addr } => {
                    Client::Tcp(wrpc_transport::tcp::Client::from(addr.clone()))
                }
                Target::Nats { url, prefix } => {
                    let conn = match nats.get(url) {
                        Some(conn) => conn.clone(),
                        None => {
                            let conn =
                                connect_nats(url).await.map_err(|reason| SetupError::Nats {
                                    url: url.clone(),
                                    interface: decl.interface.clone(),
                                    reason,
                                })?;
                            nats.insert(url.clone(), conn.clone());
                            conn
                        }
                    };
                    let client = wrpc_transport_nats::Client::new(conn, prefix.as_str(), None)
                        .await
                        .map_err(|err| SetupError::Nats {
                            url: url.clone(),
                            interface: decl.interface.clone(),
                            reason: format!("{err:#}"),
                        })?;
                    Client::Nats(client)
                }
            };
            let wire = ADAPTED
                .iter()
                .find(|(guest, _)| *guest == decl.interface.package)
                .map(|(_, wire)| decl.interface.with_package(wire));
            let timeout = decl.timeout.unwrap_or(defaults.timeout);
            info!(interface = %decl.interface, %target, ?timeout, "routing over wRPC");
            routes.push(Route {
                declared: decl.interface.clone(),
                wire,
                target,
                timeout,
                client,
            });
        }
        Ok(Self { routes })
    }

    fn route(&self, instance: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            r.declared.matches(instance) || r.wire.as_ref().is_some_and(|w| w.matches(instance))
        })
    }

    /// Whether calls to the import `instance` are routed.
    pub fn routes(&self, instance: &str) -> bool {
        self.route(instance).is_some()
    }

    /// Where calls to `instance` go, if anywhere.
    pub fn target(&self, instance: &str) -> Option<&Target> {
        self.route(instance).map(|r| &r.target)
    }

    /// Turns a failed call's error into a [`CallError`] naming `interface`
    /// (as the guest knows it), `func` and the target `instance` was routed to.
    pub fn call_error(
        &self,
        instance: &str,
        interface: &str,
        func: &str,
        err: &anyhow::Error,
    ) -> CallError {
        let (interface, func) = (interface.to_string(), func.to_string());
        let Some(route) = self.route(instance) else {
            return CallError::NotRouted { interface, func };
        };
        let target = route.target.clone();
        // The message already names the call: keep only what went wrong.
        let reason = err
            .chain()
            .find_map(|cause| {
                cause
                    .downcast_ref::<io::Error>()?
                    .get_ref()?
                    .downcast_ref::<CallFailure>()
            })
            .map_or_else(|| format!("{err:#}"), CallFailure::reason);
        match classify(err) {
            Some(io::ErrorKind::TimedOut) => CallError::Timeout {
                interface,
                func,
                target,
                timeout: route.timeout,
            },
            Some(_) => CallError::Unreachable {
                interface,
                func,
                target,
                reason,
            },
            None => CallError::Transport {
                interface,
                func,
                target,
                reason,
            },
        }
    }
}

/// The I/O error kind that explains `err`: `TimedOut` for a passed deadline,
/// another kind when nothing answered at the target; `None` otherwise.
fn classify(err: &anyhow::Error) -> Option<io::ErrorKind> {
    err.chain().find_map(|cause| {
        let kind = cause.downcast_ref::<io::Error>()?.kind();
        match kind {
            io::ErrorKind::TimedOut
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::NotConnected
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => Some(kind),
            _ => None,
        }
    })
}

async fn connect_nats(url: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .name("wrpc-client-plugin")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|err| err.to_string())
}

/// The outcome of starting a call, its errors naming the call (e.g. TCP
/// connection refused) until the streams exist to do so.
fn named<T>(
    deadline: &Deadline,
    res: Result<anyhow::Result<T>, tokio::time::error::Elapsed>,
) -> anyhow::Result<T> {
    match res {
        Err(_) => Err(deadline.expired().into()),
        Ok(Ok(started)) => Ok(started),
        Ok(Err(err)) => Err(match err.downcast::<io::Error>() {
            Ok(err) => deadline.annotate(err).into(),
            Err(err) => err,
        }),
    }
}

impl Invoke for Router {
    type Context = Arc<Caller>;
    type Outgoing = Outgoing;
    type Incoming = Incoming;

    async fn invoke<P>(
        &self,
        cx: Self::Context,
        instance: &str,
        func: &str,
        params: Bytes,
        paths: impl AsRef<[P]> + Send,
    ) -> anyhow::Result<(Self::Outgoing, Self::Incoming)>
    where
        P: AsRef<[Option<usize>]> + Send + Sync,
    {
        let route = self
            .route(instance)
            .ok_or_else(|| anyhow!("`{instance}` is not routed"))?;
        let deadline = Deadline::new(
            Instant::now() + route.timeout,
            format!("`{instance}.{func}` via {}", route.target).into(),
        );
        debug!(instance, func, target = %route.target, "invoking");
        match &route.client {
            Client::Nats(client) => {
                let call = client.invoke(Some(cx.headers()), instance, func, params, paths);
                let (tx, rx) = named(
                    &deadline,
                    tokio::time::timeout_at(deadline.at(), call).await,
                )?;
                Ok((
                    Outgoing::nats(tx, deadline.clone()),
                    Incoming::nats(rx, deadline),
                ))
            }
            Client::Tcp(client) => {
                let call = client.invoke((), instance, func, params, paths);
                let (tx, rx) = named(
                    &deadline,
                    tokio::time::timeout_at(deadline.at(), call).await,
                )?;
                Ok((
                    Outgoing::tcp(tx, deadline.clone()),
                    Incoming::tcp(rx, deadline),
                ))
            }
        }
    }
}
