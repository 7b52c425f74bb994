//! `wasi:logging/logging`, to the host's log: one event per message, at
//! the message's level under target [`TARGET`], with the workload, component
//! and context as fields (`critical` is logged as an error with `critical`
//! set).

use host_plugin::{
    Claims, ComponentBinding, Ctx, HostPlugin, InterfaceName, PluginError, PluginFuture,
    StoreIdentity, WorkloadBinding,
};
use wasmtime::component::HasData;

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/logging",
        world: "imports",
    });
}

use bindings::wasi::logging::logging::{Host, Level};

/// The interface it serves.
const SERVES: &str = "wasi:logging/logging@0.1.0-draft";

/// The target of components' log events: `RUST_LOG=guest=debug` shows
/// theirs down to debug (the host shows `info` and above by default).
pub const TARGET: &str = "guest";

/// The longest message logged whole; longer ones are cut, saying so.
const MAX_MESSAGE: usize = 16 * 1024;

/// Serves `wasi:logging/logging` to components whose workload lists it under `host:`.
#[derive(Default)]
pub struct LoggingPlugin;

struct Logging;

impl HasData for Logging {
    type Data<'a> = LoggingView<'a>;
}

/// Who logs.
struct LoggingView<'a> {
    identity: &'a StoreIdentity,
}

impl Host for LoggingView<'_> {
    fn log(&mut self, level: Level, context: String, message: String) {
        let message = cut(&message);
        let (workload, component) = (&*self.identity.workload, &*self.identity.component);
        match level {
            Level::Trace => {
                tracing::trace!(target: TARGET, workload, component, context, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: TARGET, workload, component, context, "{message}")
            }
            Level::Info => {
                tracing::info!(target: TARGET, workload, component, context, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: TARGET, workload, component, context, "{message}")
            }
            Level::Error => {
                tracing::error!(target: TARGET, workload, component, context, "{message}")
            }
            Level::Critical => {
                tracing::error!(target: TARGET, workload, component, context, critical = true, "{message}");
            }
        }
    }
}

/// `message`, cut at [`MAX_MESSAGE`] bytes (on a character boundary).
fn cut(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE {
        return message.into();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &message[..end], message.len() - end).into()
}

impl HostPlugin for LoggingPlugin {
    fn id(&self) -> &'static str {
        "logging"
    }

    fn serves(&self) -> Vec<InterfaceName> {
        vec![SERVES
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid name"))]
    }

    fn bind_workload<'a>(
        &'a self,
        workload: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        let serves = self.serves();
        let outcome = workload.claim_host_entries(self.id(), &serves, |entry| entry.no_options());
        Box::pin(async move { outcome })
    }

    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        bindings::wasi::logging::logging::add_to_linker::<Ctx, Logging>(binding.linker, |ctx| {
            LoggingView {
                identity: ctx.identity(),
            }
        })
        .map_err(|err| PluginError::new(format!("{err:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_MESSAGE);
        let cut = cut(&long);
        assert!(cut.ends_with(&format!("… ({} bytes cut)", long.len() - MAX_MESSAGE)));
        assert!(cut.len() < MAX_MESSAGE + 32);
    }
}
