//! Adding `wasi:http` to a component's linker, and the view its host
//! functions take of a store.

use host_plugin::Ctx;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiHttp, WasiHttpCtxView};

use crate::outgoing::HttpState;

/// The `wasi:http` view of the running member of a store: its state, put
/// in by the plugin, or one sending nothing out.
pub(crate) fn view(ctx: &mut Ctx) -> WasiHttpCtxView<'_> {
    let (state, table) = ctx.with_table_or(HttpState::deny_all);
    WasiHttpCtxView {
        ctx: &mut state.ctx,
        table,
        hooks: &mut state.hooks,
    }
}

/// Adds `wasi:http/types` and `outgoing-handler` (WASI 0.2) and
/// `wasi:http/types` and `client` (WASI 0.3).
pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    use wasmtime_wasi_http::{p2, p3};
    let options = p2::bindings::LinkOptions::default();
    p2::bindings::http::outgoing_handler::add_to_linker::<_, WasiHttp>(linker, view)?;
    p2::bindings::http::types::add_to_linker::<_, WasiHttp>(linker, &options.into(), view)?;
    p3::bindings::http::client::add_to_linker::<_, WasiHttp>(linker, view)?;
    p3::bindings::http::types::add_to_linker::<_, WasiHttp>(linker, view)?;
    Ok(())
}
