//! Server side of the `wrpc:keyvalue@0.2.0-draft` wire package (feature `keyvalue`).
//!
//! Implement [`store::Handler`], [`atomics::Handler`] and [`batch::Handler`]
//! for one type, then run it with [`serve`]. Every call names its bucket, so
//! any replica can serve any call.

use crate::dispatch::{Functions, RegisterError};
use crate::{CallerContext, Exports};

#[allow(missing_docs, dead_code, clippy::all)]
mod bindings {
    wit_bindgen_wrpc::generate!({
        world: "extension",
        path: "../wit/wrpc-keyvalue",
    });
}

pub use bindings::exports::wrpc::keyvalue::{atomics, batch, store};

/// The package's WIT files, which type its functions.
pub const WIT: wit::Package = wit::WRPC_KEYVALUE;

const STORE: &str = "wrpc:keyvalue/store@0.2.0-draft";
const ATOMICS: &str = "wrpc:keyvalue/atomics@0.2.0-draft";
const BATCH: &str = "wrpc:keyvalue/batch@0.2.0-draft";

/// A type serving all three key-value interfaces.
pub trait Handler:
    store::Handler<CallerContext>
    + atomics::Handler<CallerContext>
    + batch::Handler<CallerContext>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<H> Handler for H where
    H: store::Handler<CallerContext>
        + atomics::Handler<CallerContext>
        + batch::Handler<CallerContext>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The key-value exports of `handler`, for [`crate::Extension::run`].
pub fn serve<H: Handler>(handler: H) -> impl Exports {
    Keyvalue(handler)
}

struct Keyvalue<H>(H);

/// Serves `$instance.$name` by calling `$trait::$method` with the parameters.
macro_rules! function {
    ($fns:expr, $handler:expr, $instance:expr, $name:literal, $trait:path, $method:ident, ($($p:ident: $t:ty),*)) => {{
        let handler = $handler.clone();
        $fns.serve($instance, $name, move |cx, ($($p,)*): ($($t,)*)| {
            let handler = handler.clone();
            async move { Ok((<_ as $trait>::$method(&handler, cx, $($p),*).await?,)) }
        })
    }};
}

impl<H: Handler> Exports for Keyvalue<H> {
    fn register(&self, fns: &mut Functions) -> Result<(), RegisterError> {
        use atomics::Handler as A;
        use batch::Handler as B;
        use bytes::Bytes;
        use store::Handler as S;
        fns.add_wit(&[WIT])?;
        let h = &self.0;
        function!(fns, h, STORE, "get", S<CallerContext>, get, (bucket: String, key: String))?;
        function!(fns, h, STORE, "set", S<CallerContext>, set, (bucket: String, key: String, value: Bytes))?;
        function!(fns, h, STORE, "delete", S<CallerContext>, delete, (bucket: String, key: String))?;
        function!(fns, h, STORE, "exists", S<CallerContext>, exists, (bucket: String, key: String))?;
        function!(fns, h, STORE, "list-keys", S<CallerContext>, list_keys, (bucket: String, cursor: Option<u64>))?;
        function!(fns, h, ATOMICS, "increment", A<CallerContext>, increment, (bucket: String, key: String, delta: u64))?;
        function!(fns, h, BATCH, "get-many", B<CallerContext>, get_many, (bucket: String, keys: Vec<String>))?;
        function!(fns, h, BATCH, "set-many", B<CallerContext>, set_many, (bucket: String, key_values: Vec<(String, Bytes)>))?;
        function!(fns, h, BATCH, "delete-many", B<CallerContext>, delete_many, (bucket: String, keys: Vec<String>))?;
        Ok(())
    }
}
