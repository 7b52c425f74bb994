//! The `keyvalue` host plugin: `wasi:keyvalue@0.2.0-draft` (store, atomics,
//! batch) served in the host, in memory or kept in a file.
//!
//! A `host:` entry takes these options:
//!
//! - `path: FILE`: keep the data in `FILE` (a relative path is relative to
//!   the manifest's directory, like component files). It is
//!   loaded when the workload binds (a file that cannot be read or is not a
//!   keyvalue file refuses the workload, naming it; a missing one starts
//!   empty, its directory must exist) and replaced atomically after every
//!   change, before the call returns. Entries naming the same file share
//!   its data. Without `path`, the data lives in memory while the workload
//!   is bound.
//! - `max_value_bytes` (default 1 MiB), `max_total_bytes` (keys and values
//!   of every bucket together, default 64 MiB), `max_keys` (every bucket
//!   together, default 100 000): a write past one of them returns
//!   `error::other` naming it and changes nothing.
//!
//! Every store of a workload (per-request ones included) shares its data.
//! What a guest sees matches the `keyvalue-redis` extension: any bucket name
//! opens, `list-keys` pages hold up to 500 keys and end with no cursor,
//! `increment` needs a decimal integer and stores decimal text.
#![deny(missing_docs)]

mod data;
mod file;
mod host;
mod store;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use host_plugin::manifest::HostEntry;
use host_plugin::{
    Claims, ComponentBinding, HostPlugin, InterfaceName, PerComponent, PluginError, PluginFuture,
    Slots, StoreIdentity, WorkloadBinding,
};

use data::Limits;
use host::KvSlot;
use store::{Kv, Shared};

/// The interfaces it serves (the package, every interface of it).
const SERVES: &str = "wasi:keyvalue@0.2.0-draft";

/// Serves `wasi:keyvalue` to components whose workload lists it under `host:`.
#[derive(Default)]
pub struct KeyvaluePlugin {
    /// Each bound workload's stores, by component.
    workloads: PerComponent<Arc<Kv>>,
    /// The stores kept in files, by absolute path, while an entry uses them.
    files: Mutex<HashMap<PathBuf, Weak<Shared>>>,
}

/// What a `host:` entry asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Options {
    path: Option<PathBuf>,
    limits: Limits,
}

impl Options {
    /// The options of `entry`.
    fn parse(entry: &HostEntry) -> Result<Self, String> {
        const KNOWN: [&str; 4] = ["path", "max_value_bytes", "max_total_bytes", "max_keys"];
        let unknown: Vec<&str> = entry
            .options
            .keys()
            .map(String::as_str)
            .filter(|name| !KNOWN.contains(name))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown option `{}` (keyvalue takes {})",
                unknown.join("`, `"),
                KNOWN.join(", ")
            ));
        }
        let mut options = Self::default();
        for (name, value) in &entry.options {
            let limit = match name.as_str() {
                "path" => {
                    match value {
                        serde_yaml::Value::String(s) if !s.is_empty() => {
                            options.path = Some(entry.resolve(s));
                        }
                        _ => return Err("`path` must be a file name".into()),
                    }
                    continue;
                }
                "max_value_bytes" => &mut options.limits.max_value_bytes,
                "max_total_bytes" => &mut options.limits.max_total_bytes,
                _ => &mut options.limits.max_keys,
            };
            *limit = value.as_u64().filter(|&n| n > 0).ok_or_else(|| {
                let shown = serde_yaml::to_string(value).unwrap_or_default();
                format!(
                    "`{name}` must be a whole number above 0, not `{}`",
                    shown.trim()
                )
            })?;
        }
        Ok(options)
    }
}

impl KeyvaluePlugin {
    /// The data `options` asks for: the file's, shared with every entry
    /// using it, or a new store in memory.
    fn shared(&self, options: &Options) -> Result<Arc<Shared>, String> {
        let Some(path) = &options.path else {
            return Ok(Arc::new(Shared::in_memory()));
        };
        let key = std::path::absolute(path).map_err(|err| format!("`path`: {err}"))?;
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        files.retain(|_, shared| shared.strong_count() > 0);
        if let Some(shared) = files.get(&key).and_then(Weak::upgrade) {
            return Ok(shared);
        }
        let shared = Arc::new(Shared::load(path.clone())?);
        files.insert(key, Arc::downgrade(&shared));
        Ok(shared)
    }

    fn bind(&self, binding: &WorkloadBinding<'_>) -> Result<Claims, PluginError> {
        let serves = self.serves();
        let parsed = RefCell::new(Vec::new());
        let claims = binding.claim_host_entries(self.id(), &serves, |entry| {
            parsed
                .borrow_mut()
                .push((entry.clone(), Options::parse(entry)?));
            Ok(())
        })?;
        // One store per distinct options; a component gets one store.
        let mut made: Vec<(Options, Arc<Kv>)> = Vec::new();
        let mut stores: HashMap<String, (InterfaceName, Arc<Kv>)> = HashMap::new();
        for (entry, options) in parsed.into_inner() {
            let refuse = |why: String| {
                PluginError::new(format!("`host:` entry `{}`: {why}", entry.interface))
            };
            let kv = match made.iter().find(|(o, _)| *o == options) {
                Some((_, kv)) => Arc::clone(kv),
                None => {
                    let kv = Arc::new(Kv {
                        shared: self.shared(&options).map_err(refuse)?,
                        limits: options.limits,
                    });
                    made.push((options, Arc::clone(&kv)));
                    kv
                }
            };
            for c in &binding.workload.components {
                if !entry
                    .components
                    .as_ref()
                    .is_none_or(|cs| cs.contains(&c.name))
                {
                    continue;
                }
                match stores.get(&c.name) {
                    Some((first, other)) if !Arc::ptr_eq(other, &kv) => {
                        return Err(refuse(format!(
                            "component `{}` already has the store of `host:` entry `{first}`, with other options",
                            c.name
                        )));
                    }
                    Some(_) => {}
                    None => {
                        stores.insert(c.name.clone(), (entry.interface.clone(), Arc::clone(&kv)));
                    }
                }
            }
        }
        let stores = stores.into_iter().map(|(c, (_, kv))| (c, kv)).collect();
        self.workloads.bind(&binding.workload.name, stores);
        Ok(claims)
    }
}

impl HostPlugin for KeyvaluePlugin {
    fn id(&self) -> &'static str {
        "keyvalue"
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
        let outcome = self.bind(workload);
        Box::pin(async move { outcome })
    }

    fn bind_component(&self, binding: &mut ComponentBinding<'_>) -> Result<(), PluginError> {
        host::add_to_linker(binding.linker, &binding.claimed)
            .map_err(|err| PluginError::new(format!("{err:#}")))
    }

    fn new_store(&self, identity: &StoreIdentity, slots: &mut Slots) {
        if let Some(kv) = self.workloads.for_store(identity) {
            slots.insert(KvSlot(kv));
        }
    }

    fn unbind_workload<'a>(&'a self, workload: &'a str) -> PluginFuture<'a, ()> {
        self.workloads.unbind(workload);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(options: &str) -> HostEntry {
        let yaml = format!("{{interface: wasi:keyvalue, {options}}}");
        serde_yaml::from_str(&yaml).unwrap()
    }

    #[test]
    fn options_have_defaults_and_unknown_ones_are_named_first() {
        let defaults = Options::parse(&entry("components: [a]")).unwrap();
        assert_eq!(defaults, Options::default());
        assert_eq!(defaults.limits.max_value_bytes, 1 << 20);
        let set = Options::parse(&entry("path: kv.db, max_keys: 5")).unwrap();
        assert_eq!(set.path.as_deref(), Some(std::path::Path::new("kv.db")));
        assert_eq!(set.limits.max_keys, 5);
        let err = Options::parse(&entry("max_keys: -1, size: 1, zz: 2")).unwrap_err();
        assert!(
            err.starts_with("unknown option `size`, `zz` (keyvalue takes path, "),
            "{err}"
        );
        let err = Options::parse(&entry("max_keys: lots")).unwrap_err();
        assert_eq!(err, "`max_keys` must be a whole number above 0, not `lots`");
    }
}
