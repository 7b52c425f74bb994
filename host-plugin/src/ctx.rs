//! [`Ctx`]: the data of every store the host makes, whatever serves the
//! components in it.
//!
//! A store runs one component and the components of its workload it calls
//! in process (each instantiated there on first use). They share the store's
//! resource table, so resources cross between them; each keeps its own WASI
//! context (arguments, environment, directories), identity and plugin state,
//! and the one running is the *current* member.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use transport::TraceContext;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::StoreSetup;

/// Who runs in a store: the workload, its namespace, the component, and the
/// trace its calls continue (a component run's, or the caller's of a served
/// export).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreIdentity {
    /// The workload's name.
    pub workload: Arc<str>,
    /// Its namespace.
    pub namespace: Arc<str>,
    /// The component's name within the workload.
    pub component: Arc<str>,
    /// The trace this store's calls belong to, if any.
    pub trace: Option<TraceContext>,
}

/// Plugin state, one slot per type.
#[derive(Default)]
pub struct Slots(HashMap<TypeId, Box<dyn Any + Send>>);

impl Slots {
    /// Puts a state in its slot, replacing any there.
    pub fn insert<S: Send + 'static>(&mut self, state: S) {
        self.0.insert(TypeId::of::<S>(), Box::new(state));
    }

    /// The state of type `S`, if one was put in.
    pub fn get<S: Send + 'static>(&mut self) -> Option<&mut S> {
        self.0
            .get_mut(&TypeId::of::<S>())
            .and_then(|s| s.downcast_mut())
    }
}

/// One component in a store.
pub struct Member {
    identity: StoreIdentity,
    wasi: WasiCtx,
    slots: Slots,
}

impl Member {
    /// A member running as `identity` with its WASI context and plugin state.
    pub fn new(identity: StoreIdentity, wasi: WasiCtx, slots: Slots) -> Self {
        Self {
            identity,
            wasi,
            slots,
        }
    }
}

/// The data of a store.
pub struct Ctx {
    table: ResourceTable,
    members: Vec<Member>,
    current: usize,
    /// State of the store as a whole (not of one member), by type.
    shared: Slots,
    setup: Arc<StoreSetup>,
}

impl Ctx {
    /// A store's data, running `first`; `setup` makes later members.
    pub fn new(first: Member, setup: Arc<StoreSetup>) -> Self {
        Self {
            table: ResourceTable::new(),
            members: vec![first],
            current: 0,
            shared: Slots::default(),
            setup,
        }
    }

    fn member(&mut self) -> &mut Member {
        &mut self.members[self.current]
    }

    /// Who runs now.
    pub fn identity(&self) -> &StoreIdentity {
        &self.members[self.current].identity
    }

    /// The store's resource table (shared by WASI, every plugin and member).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The running member's state of type `S`, if its plugin put one in.
    pub fn get<S: Send + 'static>(&mut self) -> Option<&mut S> {
        self.member().slots.get()
    }

    /// The running member's state of type `S` and the resource table
    /// together, for host functions that make or look up resources.
    pub fn with_table<S: Send + 'static>(&mut self) -> Option<(&mut S, &mut ResourceTable)> {
        let member = &mut self.members[self.current];
        Some((member.slots.get()?, &mut self.table))
    }

    /// As [`with_table`](Self::with_table), the state made by `init` if its
    /// plugin put none in (for host functions every member may call).
    pub fn with_table_or<S: Send + 'static>(
        &mut self,
        init: impl FnOnce() -> S,
    ) -> (&mut S, &mut ResourceTable) {
        let member = &mut self.members[self.current];
        if member.slots.get::<S>().is_none() {
            member.slots.insert(init());
        }
        let state = member
            .slots
            .get()
            .unwrap_or_else(|| unreachable!("just put in"));
        (state, &mut self.table)
    }

    /// Makes the store's calls continue `trace` from now on (a store made
    /// ahead of the request it serves learns its trace when it arrives).
    pub fn set_trace(&mut self, trace: Option<TraceContext>) {
        for member in &mut self.members {
            member.identity.trace = trace;
            for plugin in self.setup.plugins() {
                plugin.retrace(trace, &mut member.slots);
            }
        }
    }

    /// State of the whole store, of type `S`, made by `init` on first use.
    pub fn shared<S: Send + 'static>(&mut self, init: impl FnOnce() -> S) -> &mut S {
        if self.shared.get::<S>().is_none() {
            self.shared.insert(init());
        }
        self.shared
            .get()
            .unwrap_or_else(|| unreachable!("just put in"))
    }

    /// As [`shared`](Self::shared), with the resource table.
    pub fn shared_with_table<S: Send + 'static>(
        &mut self,
        init: impl FnOnce() -> S,
    ) -> (&mut S, &mut ResourceTable) {
        if self.shared.get::<S>().is_none() {
            self.shared.insert(init());
        }
        let state = self
            .shared
            .get()
            .unwrap_or_else(|| unreachable!("just put in"));
        (state, &mut self.table)
    }

    /// The member running `component`, if it is in this store.
    pub fn position(&self, component: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| &*m.identity.component == component)
    }

    /// Adds `component` of the store's workload as a member (its WASI
    /// context and plugin state made as for a store of its own, continuing
    /// this store's trace); returns its position.
    ///
    /// # Errors
    ///
    /// The component is not in the workload, or a directory of its cannot be
    /// opened.
    pub fn join(&mut self, component: &str) -> Result<usize, crate::StoreError> {
        let trace = self.members[0].identity.trace;
        let member = self.setup.member(component, trace)?;
        self.members.push(member);
        Ok(self.members.len() - 1)
    }

    /// Makes the member at `position` the running one; returns the one that
    /// was, to give back to [`enter`](Self::enter) when its call returns.
    pub fn enter(&mut self, position: usize) -> usize {
        core::mem::replace(&mut self.current, position.min(self.members.len() - 1))
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let member = &mut self.members[self.current];
        WasiCtxView {
            ctx: &mut member.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::manifest::Workload;

    fn setup() -> Arc<StoreSetup> {
        let workload = Workload::parse(
            "name: w\ncomponents:\n  - name: app\n    file: a.wasm\n  - name: lib\n    file: b.wasm\n",
        )
        .unwrap();
        Arc::new(StoreSetup::new(&workload, Vec::new()).unwrap())
    }

    #[test]
    fn one_slot_per_state_type_and_member() {
        struct Counter(u32);
        struct Name(&'static str);
        let setup = setup();
        let mut ctx = Ctx::new(setup.member("app", None).unwrap(), Arc::clone(&setup));
        assert!(ctx.get::<Counter>().is_none());
        ctx.member().slots.insert(Counter(1));
        ctx.member().slots.insert(Name("a"));
        ctx.get::<Counter>().unwrap().0 += 1;
        assert_eq!(ctx.get::<Counter>().unwrap().0, 2);
        assert_eq!(ctx.get::<Name>().unwrap().0, "a");
        let (counter, table) = ctx.with_table::<Counter>().unwrap();
        assert_eq!(counter.0, 2);
        assert!(table.is_empty());

        let lib = ctx.join("lib").unwrap();
        assert_eq!(ctx.position("lib"), Some(lib));
        let app = ctx.enter(lib);
        assert_eq!(&*ctx.identity().component, "lib");
        assert!(ctx.get::<Counter>().is_none(), "each member has its own");
        *ctx.shared(|| 0_u8) += 1;
        ctx.enter(app);
        assert_eq!(&*ctx.identity().component, "app");
        assert_eq!(*ctx.shared(|| 0_u8), 1, "the store's state is shared");
        assert!(ctx.join("nope").is_err());
    }
}
