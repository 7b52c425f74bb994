//! [`PerComponent`]: what a plugin keeps for each component of each
//! workload it serves, from binding to unbinding.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::StoreIdentity;

/// A plugin's value for each component of each bound workload (a router,
/// a store handle, a configuration map), looked up when a store is made.
pub struct PerComponent<T> {
    workloads: Mutex<HashMap<String, HashMap<String, T>>>,
}

impl<T> Default for PerComponent<T> {
    fn default() -> Self {
        Self {
            workloads: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> PerComponent<T> {
    /// Keeps `values` (by component name) for `workload`, replacing what was
    /// kept for it; nothing is kept for an empty map.
    pub fn bind(&self, workload: &str, values: HashMap<String, T>) {
        let mut workloads = self
            .workloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if values.is_empty() {
            workloads.remove(workload);
        } else {
            workloads.insert(workload.to_string(), values);
        }
    }

    /// The value kept for `component` of `workload`.
    pub fn get(&self, workload: &str, component: &str) -> Option<T> {
        self.workloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(workload)
            .and_then(|w| w.get(component).cloned())
    }

    /// The value kept for the component a store runs.
    pub fn for_store(&self, identity: &StoreIdentity) -> Option<T> {
        self.get(&identity.workload, &identity.component)
    }

    /// Every value kept for `workload`, by component.
    pub fn workload(&self, workload: &str) -> Vec<(String, T)> {
        self.workloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(workload)
            .map(|w| w.iter().map(|(c, v)| (c.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Forgets `workload`.
    pub fn unbind(&self, workload: &str) {
        self.workloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(workload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_per_workload_and_component_until_unbound() {
        let kept = PerComponent::default();
        kept.bind(
            "w",
            HashMap::from([("a".to_string(), 1), ("b".to_string(), 2)]),
        );
        kept.bind("v", HashMap::from([("a".to_string(), 3)]));
        assert_eq!(kept.get("w", "b"), Some(2));
        assert_eq!(kept.get("v", "a"), Some(3));
        assert_eq!(kept.get("v", "b"), None);
        kept.unbind("w");
        assert_eq!(kept.get("w", "a"), None);
        assert_eq!(kept.workload("v"), vec![("a".to_string(), 3)]);
        kept.bind("v", HashMap::new());
        assert!(kept.workload("v").is_empty());
    }
}
