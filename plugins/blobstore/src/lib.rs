//! The `blobstore` host plugin: `wasi:blobstore@0.2.0-draft` served in the
//! host on a local directory, and `blobstore-s3:admin/containers@0.1.0`
//! (list-containers) on the same directory, so a component written for
//! the `blobstore-s3` extension runs unchanged.
//!
//! A `host:` entry takes these options:
//!
//! - `dir: PATH` (required): the directory holding the containers, which
//!   must exist (a relative path is relative to the manifest's
//!   directory, like component files). Each container is a
//!   subdirectory, each object a file in it; bodies being written are
//!   staged in `PATH/.partial/` and renamed into place by `finish`, so a
//!   half-written object never appears.
//! - `max_object_bytes` (default 1 GiB): a body writing more fails at the
//!   write that crosses it, and its `finish` returns the same error.
//!
//! An entry with no options (`- blobstore-s3:admin`) uses the directory of
//! the other entries serving the same component. Container and object
//! names are checked before they become paths: empty names, `.`, `..`,
//! path separators, NUL and names over 255 bytes are refused with an error
//! naming them, and so are container names starting with `.`.
#![deny(missing_docs)]

mod body;
mod container;
mod host;
mod root;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use host_plugin::manifest::HostEntry;
use host_plugin::{
    Claims, ComponentBinding, HostPlugin, InterfaceName, PerComponent, PluginError, PluginFuture,
    Slots, StoreIdentity, WorkloadBinding,
};

use host::BlobSlot;
use root::Root;

/// The interfaces it serves.
const SERVES: [&str; 2] = [
    "wasi:blobstore@0.2.0-draft",
    "blobstore-s3:admin/containers@0.1.0",
];

/// The default of `max_object_bytes`.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 1 << 30;

/// Serves `wasi:blobstore` (and `blobstore-s3:admin`) to components whose
/// workload lists it under `host:`.
#[derive(Default)]
pub struct BlobstorePlugin {
    /// Each bound workload's directories, by component.
    workloads: PerComponent<Arc<Root>>,
}

/// What an entry with options asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Options {
    dir: PathBuf,
    max_object_bytes: u64,
}

/// Why an entry without a directory of its own, or another's, is refused.
const DIR_REQUIRED: &str =
    "`dir` is required: the directory holding the containers, e.g. `{interface: wasi:blobstore, dir: ./blobs}`";

impl Options {
    /// The options of `entry`; `None` when it has none.
    fn parse(entry: &HostEntry) -> Result<Option<Self>, String> {
        if entry.options.is_empty() {
            return Ok(None);
        }
        let unknown: Vec<&str> = entry
            .options
            .keys()
            .map(String::as_str)
            .filter(|name| !["dir", "max_object_bytes"].contains(name))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown option `{}` (blobstore takes dir, max_object_bytes)",
                unknown.join("`, `")
            ));
        }
        let dir = match entry.options.get("dir") {
            Some(serde_yaml::Value::String(s)) if !s.is_empty() => Some(entry.resolve(s)),
            Some(_) => return Err("`dir` must be a directory's path".into()),
            None => None,
        };
        let max_object_bytes = match entry.options.get("max_object_bytes") {
            Some(value) => value
                .as_u64()
                .filter(|&n| n > 0)
                .ok_or_else(|| "`max_object_bytes` must be a whole number above 0".to_string())?,
            None => DEFAULT_MAX_OBJECT_BYTES,
        };
        let dir = dir.ok_or(DIR_REQUIRED)?;
        if !dir.is_dir() {
            return Err(format!("`dir`: {} is not a directory", dir.display()));
        }
        Ok(Some(Self {
            dir,
            max_object_bytes,
        }))
    }
}

impl BlobstorePlugin {
    fn bind(&self, binding: &WorkloadBinding<'_>) -> Result<Claims, PluginError> {
        let serves = self.serves();
        let parsed = RefCell::new(Vec::new());
        let claims = binding.claim_host_entries(self.id(), &serves, |entry| {
            parsed
                .borrow_mut()
                .push((entry.clone(), Options::parse(entry)?));
            Ok(())
        })?;
        let parsed = parsed.into_inner();
        let covers = |entry: &HostEntry, component: &str| {
            entry
                .components
                .as_ref()
                .is_none_or(|cs| cs.iter().any(|c| c == component))
        };
        // One directory per distinct options; a component gets one.
        let mut made: Vec<(&Options, Arc<Root>)> = Vec::new();
        let mut roots: HashMap<String, (&InterfaceName, Arc<Root>)> = HashMap::new();
        for (entry, options) in &parsed {
            let Some(options) = options else { continue };
            let root = match made.iter().find(|(o, _)| *o == options) {
                Some((_, root)) => Arc::clone(root),
                None => {
                    let root = Arc::new(Root::new(options.dir.clone(), options.max_object_bytes));
                    made.push((options, Arc::clone(&root)));
                    root
                }
            };
            for c in &binding.workload.components {
                if !covers(entry, &c.name) {
                    continue;
                }
                match roots.get(&c.name) {
                    Some((first, other)) if !Arc::ptr_eq(other, &root) => {
                        return Err(refuse(entry, format!(
                            "component `{}` already has the directory of `host:` entry `{first}`, with other options",
                            c.name
                        )));
                    }
                    Some(_) => {}
                    None => {
                        roots.insert(c.name.clone(), (&entry.interface, Arc::clone(&root)));
                    }
                }
            }
        }
        // Entries without options need another's directory where used.
        for (entry, options) in &parsed {
            let used = binding
                .imports()
                .any(|(c, import)| covers(entry, c.name()) && entry.interface.matches(&import));
            if options.is_none() && used {
                let orphan = binding
                    .components
                    .iter()
                    .find(|c| covers(entry, c.name()) && !roots.contains_key(c.name()));
                if orphan.is_some() {
                    return Err(refuse(entry, DIR_REQUIRED.into()));
                }
            }
        }
        let roots = roots.into_iter().map(|(c, (_, r))| (c, r)).collect();
        self.workloads.bind(&binding.workload.name, roots);
        Ok(claims)
    }
}

/// `entry` refused for `why`.
fn refuse(entry: &HostEntry, why: String) -> PluginError {
    PluginError::new(format!("`host:` entry `{}`: {why}", entry.interface))
}

impl HostPlugin for BlobstorePlugin {
    fn id(&self) -> &'static str {
        "blobstore"
    }

    fn serves(&self) -> Vec<InterfaceName> {
        SERVES
            .iter()
            .map(|s| s.parse().unwrap_or_else(|_| unreachable!("a valid name")))
            .collect()
    }

    fn bind_workload<'a>(
        &'a self,
        workload: &'a WorkloadBinding<'a>,
    ) -> PluginFuture<'a, Result<Claims, PluginError>> {
        let outcome = self.bind(workload);
        Box::pin(async move { outcome })
    }

    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        host::add_to_linker(binding.linker, &binding.claimed)
            .map_err(|err| PluginError::new(format!("{err:#}")))
    }

    fn new_store(&self, identity: &StoreIdentity, slots: &mut Slots) {
        if let Some(root) = self.workloads.for_store(identity) {
            slots.insert(BlobSlot(root));
        }
    }

    fn unbind_workload<'a>(&'a self, workload: &'a str) -> PluginFuture<'a, ()> {
        self.workloads.unbind(workload);
        Box::pin(async {})
    }
}
