//! `blobstore-s3:admin/containers@0.1.0`: what `wasi:blobstore` has no
//! function for.

use sdk::{Exports, Functions, RegisterError};

use crate::store::S3Store;

/// The admin instance.
pub const INSTANCE: &str = "blobstore-s3:admin/containers@0.1.0";

/// Serves the admin interface beside the blobstore one.
pub struct Admin(pub S3Store);

impl Exports for Admin {
    fn register(&self, fns: &mut Functions) -> Result<(), RegisterError> {
        fns.add_wit(&[wit::BLOBSTORE_ADMIN])?;
        let store = self.0.clone();
        fns.serve(INSTANCE, "list-containers", move |cx, (): ()| {
            let store = store.clone();
            async move { Ok((store.list_containers(&cx).await,)) }
        })
    }
}

/// Both interfaces, for [`sdk::Extension::run`].
pub struct All<A, B>(pub A, pub B);

impl<A: Exports, B: Exports> Exports for All<A, B> {
    fn register(&self, fns: &mut Functions) -> Result<(), RegisterError> {
        self.0.register(fns)?;
        self.1.register(fns)
    }
}
