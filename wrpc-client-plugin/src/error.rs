//! Why a routed call or the plugin's set-up failed.

use crate::InterfaceName;

/// Why a call to an extension failed. Its message names the interface, the
/// function and, once routed, the target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The call failed in transit: no answer within the deadline, the
    /// extension unreachable, or the call broke (the transport's one call
    /// error, naming the function as `interface.func`).
    #[error(transparent)]
    Call(#[from] transport::CallError),
    /// The interface has no route (it was not declared under `wrpc:`).
    #[error("{interface}.{func}: not routed (declare it under `wrpc:`)")]
    NotRouted {
        /// The interface called.
        interface: String,
        /// The function called.
        func: String,
    },
}

/// Why the plugin could not be set up for a workload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A declaration has no target and there is no default.
    #[error("`{0}` has no target and the host has no default (--wrpc-target)")]
    NoTarget(InterfaceName),
    /// The same interface is declared twice.
    #[error("`{0}` is declared more than once under `wrpc:`")]
    Duplicate(InterfaceName),
    /// The NATS server of a target cannot be reached.
    #[error("cannot connect to NATS at {url} (for {interface}): {reason}")]
    Nats {
        /// The server URL (credentials redacted).
        url: String,
        /// The first interface routed there.
        interface: InterfaceName,
        /// What the client said.
        reason: String,
    },
    /// The target described itself and does not serve the interface.
    #[error("`{interface}` is routed to {target}, but the extension there ({extension}) does not serve `{instance}`; it serves {served}")]
    NotServed {
        /// The declared interface.
        interface: String,
        /// The instance asked for.
        instance: String,
        /// The target (credentials redacted).
        target: String,
        /// The extension's name, as it says.
        extension: String,
        /// The instances it serves, joined by `, ` (`nothing else` if none).
        served: String,
    },
    /// The target answered, but not with what it serves.
    #[error("`{interface}` is routed to {target}, which did not say what it serves ({reason}); if it is not an sdk extension, set `check: false` on its `wrpc:` entry")]
    NotDescribed {
        /// The declared interface.
        interface: String,
        /// The target (credentials redacted).
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The workload's identity cannot travel in call headers.
    #[error("{0}")]
    Identity(#[from] transport::IdentityError),
    /// Linking a declared interface into a component failed.
    #[error("cannot route `{instance}` for component `{component}`: {reason}")]
    Link {
        /// The component.
        component: String,
        /// The import.
        instance: String,
        /// Why.
        reason: String,
    },
}
