//! `blobstore-s3:admin/containers@0.1.0`: what `wasi:blobstore` has no
//! function for.

use sdk::{CallerContext, Exports, Functions, RegisterError};

use crate::store::S3Store;

#[allow(dead_code, clippy::all)]
mod bindings {
    sdk::generate!({ world: "extension", path: "../../wit/blobstore-admin" });
}

use bindings::exports::blobstore_s3::admin::containers::{ContainerInfo, Handler};

/// Serves the admin interface beside the blobstore one.
#[derive(Clone)]
pub struct Admin(pub S3Store);

impl Handler<CallerContext> for Admin {
    async fn list_containers(
        &self,
        cx: CallerContext,
    ) -> anyhow::Result<Result<Vec<ContainerInfo>, String>> {
        Ok(self.0.list_containers(&cx).await.map(|containers| {
            containers
                .into_iter()
                .map(|(name, created_at)| ContainerInfo { name, created_at })
                .collect()
        }))
    }
}

/// The admin exports, registered from the WIT.
pub fn serve(admin: Admin) -> impl Exports {
    bindings::serve_exports(admin)
}

/// Both interfaces, for [`sdk::Extension::run`].
pub struct All<A, B>(pub A, pub B);

impl<A: Exports, B: Exports> Exports for All<A, B> {
    fn register(&self, fns: &mut Functions) -> Result<(), RegisterError> {
        self.0.register(fns)?;
        self.1.register(fns)
    }
}
