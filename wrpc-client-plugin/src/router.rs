//! One [`Invoke`] for a workload: picks each call's target by interface and
//! bounds it with the route's deadlines.

use core::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::anyhow;
use bytes::Bytes;
use tracing::{debug, info};
use transport::client::{Call, CallOptions, Deadline, ResultPaths};
use transport::schema::{Signature, Signatures};
use transport::{
    headers, Caller, Connector, Endpoint, Incoming, Limits, Outgoing, Prepared, Target,
};
use wrpc_transport::Invoke;

use crate::{adapted, CallError, Declaration, InterfaceName, SetupError};

/// Host-wide defaults for declarations that leave things out, and the
/// limits results are checked against. The deadlines default to the
/// transport's ([`transport::client::defaults`]).
#[derive(Clone, Debug)]
pub struct Defaults {
    /// Target for short-form declarations.
    pub target: Option<Endpoint>,
    /// Deadline of each call's synchronous part.
    pub timeout: Duration,
    /// Longest pause of a streamed value.
    pub idle_timeout: Duration,
    /// What an extension's results may declare.
    pub limits: Limits,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            target: None,
            timeout: transport::client::CALL_TIMEOUT,
            idle_timeout: transport::client::IDLE_TIMEOUT,
            limits: Limits::DEFAULT,
        }
    }
}

/// Who runs the workload, sent when connections open (WebSocket upgrades).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadIdentity {
    /// The workload's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
}

struct Route {
    declared: InterfaceName,
    /// The wire package's name, for adapted packages.
    wire: Option<InterfaceName>,
    /// Where calls go, with their deadlines.
    target: Target,
    /// Whether the target is asked what it serves.
    check: bool,
}

impl Route {
    /// Whether calls to the import `instance` go by this route.
    fn serves(&self, instance: &str) -> bool {
        self.declared.matches(instance) || self.wire.as_ref().is_some_and(|w| w.matches(instance))
    }
}

/// What the router knows of one function: its types, and the route it goes by.
struct Learned {
    prepared: Prepared,
    /// The index of the route the function's instance goes by, if known.
    route: Option<usize>,
}

/// What the router knows of each function, by instance and name.
type Functions = HashMap<String, HashMap<String, Arc<Learned>>>;

/// Routes a workload's declared interfaces to their extensions.
pub struct Router {
    routes: Vec<Route>,
    /// What results may declare (and what a guest may read whole).
    limits: Limits,
    functions: RwLock<Functions>,
    /// Shared by every call whose results have no async values.
    no_paths: ResultPaths,
}

impl Router {
    /// Builds the routes, connecting once to each NATS server named.
    ///
    /// # Errors
    ///
    /// [`SetupError::NoTarget`] for a declaration without a target when there
    /// is no default, [`SetupError::Duplicate`] for an interface declared twice,
    /// [`SetupError::Nats`] when a NATS server cannot be reached,
    /// [`SetupError::Identity`] when the workload's name cannot travel.
    pub async fn connect(
        declarations: &[Declaration],
        defaults: &Defaults,
        workload: &WorkloadIdentity,
    ) -> Result<Self, SetupError> {
        transport::caller::validate_identity("workload name", &workload.name)?;
        transport::caller::validate_identity("namespace", &workload.namespace)?;
        let connect_headers = vec![
            (
                transport::headers::WORKLOAD.to_string(),
                workload.name.clone(),
            ),
            (
                transport::headers::NAMESPACE.to_string(),
                workload.namespace.clone(),
            ),
        ];
        // One NATS connection per server set and credentials, whatever the prefix.
        let connector = Connector::new("wrpc-client-plugin")
            .limits(defaults.limits)
            .connect_headers(connect_headers);
        let mut routes: Vec<Route> = Vec::with_capacity(declarations.len());
        let router = Self {
            routes: Vec::new(),
            limits: defaults.limits,
            functions: RwLock::new(HashMap::new()),
            no_paths: Arc::from([]),
        };
        for decl in declarations {
            if routes.iter().any(|r| r.declared == decl.interface) {
                return Err(SetupError::Duplicate(decl.interface.clone()));
            }
            let target = decl
                .target
                .clone()
                .or_else(|| defaults.target.clone())
                .ok_or_else(|| SetupError::NoTarget(decl.interface.clone()))?;
            let timeout = decl.timeout.unwrap_or(defaults.timeout);
            let idle_timeout = decl.idle_timeout.unwrap_or(defaults.idle_timeout);
            let opts = CallOptions {
                timeout,
                idle_timeout,
            };
            let connected = connector.target(&target, opts).await.map_err(|err| {
                if let Endpoint::Nats(_) = target {
                    SetupError::Nats {
                        url: target.to_string(),
                        interface: decl.interface.clone(),
                        reason: err.reason,
                    }
                } else {
                    SetupError::NoTarget(decl.interface.clone())
                }
            })?;
            let adapted = adapted::for_package(&decl.interface.package);
            let wire = adapted.map(|a| a.wire_name(&decl.interface));
            if let Some(adapted) = adapted {
                router.learn_wit(adapted.wire_wit, adapted.wire, routes.len());
            }
            info!(interface = %decl.interface, %target, ?timeout, "routing over wRPC");
            routes.push(Route {
                declared: decl.interface.clone(),
                wire,
                target: connected,
                check: decl.check,
            });
        }
        Ok(Self { routes, ..router })
    }

    /// A router with no routes: every call fails as not routed.
    pub fn unrouted() -> Self {
        Self {
            routes: Vec::new(),
            limits: Limits::DEFAULT,
            functions: RwLock::new(HashMap::new()),
            no_paths: Arc::from([]),
        }
    }

    /// Asks each checked target, for every instance the components import
    /// through its declaration (the wire instance, for adapted interfaces),
    /// whether it serves it: all at once, each within the route's deadline.
    /// A target that answers that it does not fails the start, naming what it
    /// serves instead. A target where nothing answers (not started yet; over
    /// NATS also a prefix where nothing serves the instance) is left to the
    /// calls' own deadlines and errors.
    ///
    /// # Errors
    ///
    /// [`SetupError::NotServed`] when a target serves other interfaces,
    /// [`SetupError::NotDescribed`] when it is not an sdk extension.
    pub async fn check_served(&self, imports: &[String]) -> Result<(), SetupError> {
        let asks: Vec<(usize, String)> = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, route)| route.check)
            .flat_map(|(i, _)| {
                self.instances_imported(i, imports)
                    .into_iter()
                    .map(move |instance| (i, instance))
            })
            .collect();
        let answers = futures::future::join_all(asks.iter().map(|(i, instance)| {
            crate::discovery::ask(
                &self.routes[*i].target,
                instance,
                transport::discovery::PER_INSTANCE,
            )
        }))
        .await;
        for ((i, instance), answer) in asks.iter().zip(answers) {
            let route = &self.routes[*i];
            let target = route.target.endpoint().to_string();
            match answer {
                crate::discovery::Answer::Described(_) => {
                    debug!(interface = %route.declared, instance, target, "target serves it");
                }
                crate::discovery::Answer::Unreachable(reason) => {
                    info!(interface = %route.declared, instance, target, reason, "target not checked: nothing answered");
                }
                crate::discovery::Answer::Failed(reason) => {
                    // It answered, so ask what it does serve.
                    return Err(match crate::discovery::describe(&route.target).await {
                        crate::discovery::Answer::Described(described) => SetupError::NotServed {
                            interface: route.declared.to_string(),
                            instance: instance.clone(),
                            target,
                            extension: described.name,
                            served: if described.instances.is_empty() {
                                "nothing else".to_string()
                            } else {
                                described.instances.join(", ")
                            },
                        },
                        _ => SetupError::NotDescribed {
                            interface: route.declared.to_string(),
                            target,
                            reason,
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// The instances route `i` carries for the components' `imports`: the
    /// imports themselves, or for an adapted package the wire instances
    /// standing for them.
    fn instances_imported(&self, i: usize, imports: &[String]) -> Vec<String> {
        let route = &self.routes[i];
        let mut imported: Vec<String> = imports
            .iter()
            .filter(|import| route.declared.matches(import))
            .cloned()
            .collect();
        if let Some(adapted) = adapted::for_package(&route.declared.package) {
            let interface = |instance: &str| {
                instance
                    .parse::<InterfaceName>()
                    .ok()
                    .and_then(|name| name.interface)
            };
            let learned: Vec<String> = self
                .functions
                .read()
                .map(|functions| {
                    functions
                        .iter()
                        .filter(|(_, fns)| fns.values().any(|l| l.route == Some(i)))
                        .map(|(instance, _)| instance.clone())
                        .collect()
                })
                .unwrap_or_default();
            imported = learned
                .into_iter()
                .filter(|wire| {
                    adapted.flat
                        || imported
                            .iter()
                            .any(|import| interface(import) == interface(wire))
                })
                .collect();
        }
        imported.sort();
        imported.dedup();
        imported
    }

    /// Records the types of `instance.func`, so its results are checked
    /// before they are decoded and its parameters are known to be complete.
    pub fn learn(&self, instance: &str, func: &str, signature: &Signature) {
        let route = self.routes.iter().position(|r| r.serves(instance));
        self.learn_at(instance, func, signature, route);
    }

    fn learn_at(&self, instance: &str, func: &str, signature: &Signature, route: Option<usize>) {
        let learned = Learned {
            prepared: Prepared::new(instance, func, signature),
            route,
        };
        if let Ok(mut functions) = self.functions.write() {
            functions
                .entry(instance.to_string())
                .or_default()
                .insert(func.to_string(), Arc::new(learned));
        }
    }

    /// Learns the functions of an adapted package's wire package `wire`
    /// (typed by `wit`, dependencies first), all routed by route `route`.
    fn learn_wit(&self, wit: &[wit::Package], wire: &str, route: usize) {
        // The embedded wire WIT is part of the plugin and parses (tested).
        if let Ok(signatures) = Signatures::from_wit(wit) {
            for (instance, func, signature) in signatures.iter() {
                if instance.starts_with(wire) && instance[wire.len()..].starts_with('/') {
                    self.learn_at(instance, func, signature, Some(route));
                }
            }
        }
    }

    fn learned(&self, instance: &str, func: &str) -> Option<Arc<Learned>> {
        let functions = self.functions.read().ok()?;
        functions.get(instance)?.get(func).cloned()
    }

    fn route(&self, instance: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.serves(instance))
    }

    /// The longest a streamed value of `instance` may make no progress.
    pub(crate) fn idle_timeout(&self, instance: &str) -> Option<Duration> {
        self.route(instance).map(|r| r.target.idle_timeout())
    }

    /// The limits results are checked against.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether calls to the import `instance` are routed.
    pub fn routes(&self, instance: &str) -> bool {
        self.route(instance).is_some()
    }

    /// Where calls to `instance` go, if anywhere.
    pub fn target(&self, instance: &str) -> Option<&Endpoint> {
        self.route(instance).map(|r| r.target.endpoint())
    }

    /// Each declared interface and its target, in declaration order.
    pub fn targets(&self) -> impl Iterator<Item = (&InterfaceName, &Target)> {
        self.routes.iter().map(|r| (&r.declared, &r.target))
    }

    /// The declared interfaces, in declaration order.
    pub fn declared(&self) -> impl Iterator<Item = &InterfaceName> {
        self.routes.iter().map(|r| &r.declared)
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
        let Some(route) = self.route(instance) else {
            return CallError::NotRouted {
                interface: interface.to_string(),
                func: func.to_string(),
            };
        };
        transport::CallError::of(format!("{interface}.{func}"), &route.target, err).into()
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
        self.invoke_within(cx, instance, func, params, paths, Duration::ZERO)
            .await
    }
}

/// The router, with calls' deadlines `extra` later than their route's: for
/// functions that wait by design (`consumer.request` with its timeout).
pub(crate) struct Extended<'a> {
    pub(crate) router: &'a Router,
    pub(crate) extra: Duration,
}

impl Invoke for Extended<'_> {
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
        self.router
            .invoke_within(cx, instance, func, params, paths, self.extra)
            .await
    }
}

impl Router {
    async fn invoke_within<P>(
        &self,
        cx: Arc<Caller>,
        instance: &str,
        func: &str,
        params: Bytes,
        paths: impl AsRef<[P]> + Send,
        extra: Duration,
    ) -> anyhow::Result<(Outgoing, Incoming)>
    where
        P: AsRef<[Option<usize>]> + Send + Sync,
    {
        let learned = self.learned(instance, func);
        let route = learned
            .as_ref()
            .and_then(|l| self.routes.get(l.route?))
            .or_else(|| self.route(instance))
            .ok_or_else(|| anyhow!("`{instance}` is not routed"))?;
        let untyped;
        let prepared = match &learned {
            Some(learned) => &learned.prepared,
            None => {
                untyped = Prepared::untyped(instance, func);
                &untyped
            }
        };
        let result_paths: ResultPaths = if paths.as_ref().is_empty() {
            Arc::clone(&self.no_paths)
        } else {
            paths
                .as_ref()
                .iter()
                .map(|p| Box::from(p.as_ref()))
                .collect()
        };
        debug!(instance, func, target = %route.target.endpoint(), "invoking");
        // The caller's span is the parent of the server span the call
        // becomes (the plugin keeps no span of its own per call).
        let traceparent = cx.trace.map(|t| t.to_string());
        let [workload, namespace, component] = cx.headers();
        let with_trace;
        let headers: &[(&str, &str)] = match &traceparent {
            Some(tp) => {
                with_trace = [workload, namespace, component, (headers::TRACEPARENT, tp)];
                &with_trace
            }
            None => {
                with_trace = [workload, namespace, component, ("", "")];
                &with_trace[..3]
            }
        };
        let call = Call::new(prepared, params)
            .headers(headers)
            .result_paths(result_paths)
            .deadline(Deadline::After(extra));
        let (tx, rx) = route.target.invoke(call).await?;
        Ok((tx, rx))
    }
}
