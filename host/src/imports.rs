//! Where each import of a workload's components comes from: WASI, a
//! plugin's claim, another component of the workload (in process), or
//! nothing (types only). Checked whole before anything is linked.

use std::collections::HashMap;

use host_plugin::manifest::Workload;
use host_plugin::{Claims, CompiledComponent, InterfaceName};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::ResourceType;
use wasmtime::Engine;

/// WASI packages the host serves itself (0.2 and 0.3).
pub(crate) const WASI_PACKAGES: &[&str] = &[
    "wasi:cli",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
];

/// Where one import comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    /// The host's WASI.
    Wasi,
    /// The plugin at this index (of those bound).
    Plugin(usize),
    /// The component at this index, in process.
    Local(usize),
    /// Nothing: the import only defines types.
    TypesOnly,
}

/// One import of a component and its provider.
pub(crate) struct Import {
    pub(crate) name: String,
    pub(crate) item: ComponentItem,
    pub(crate) provider: Provider,
    /// The resources it defines: those its type lists that no import
    /// before it does (the rest are `use`d from those imports).
    pub(crate) resources: Vec<String>,
}

/// Every component's imports with their providers, and the order to link
/// the components in (each after those it imports from).
pub(crate) struct Plan {
    pub(crate) imports: Vec<Vec<Import>>,
    pub(crate) order: Vec<usize>,
}

impl Plan {
    /// The components `index` calls in process, directly or not, each
    /// before those that import from it.
    pub(crate) fn links(&self, index: usize) -> Vec<usize> {
        let mut wanted = vec![false; self.imports.len()];
        let mut stack = vec![index];
        while let Some(i) = stack.pop() {
            for import in &self.imports[i] {
                if let Provider::Local(j) = import.provider {
                    if !wanted[j] {
                        wanted[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        self.order.iter().copied().filter(|&i| wanted[i]).collect()
    }
}

/// What the plugins bound to a workload claimed, with their ids, and what
/// each could serve.
pub(crate) struct Claimed<'a> {
    pub(crate) id: &'static str,
    pub(crate) claims: &'a Claims,
    pub(crate) serves: &'a [InterfaceName],
}

/// Decides where every import comes from.
///
/// # Errors
///
/// In one line: an import nothing provides (naming the component, the
/// interface and how to provide it), an import several components export
/// and none chosen, a choice naming a component that does not export it,
/// or components importing from each other in a cycle.
pub(crate) fn plan(
    engine: &Engine,
    workload: &Workload,
    components: &[CompiledComponent],
    plugins: &[Claimed<'_>],
) -> Result<Plan, String> {
    let exports: Vec<Vec<String>> = components
        .iter()
        .map(|c| {
            c.exports(engine)
                .into_iter()
                .filter(|(_, item)| matches!(item, ComponentItem::ComponentInstance(_)))
                .map(|(name, _)| name)
                .collect()
        })
        .collect();
    let mut imports = Vec::with_capacity(components.len());
    for (index, component) in components.iter().enumerate() {
        let mut list = Vec::new();
        let mut seen = Vec::new();
        let labelled = component.labelled_imports(engine);
        for (name, item) in component.imports(engine) {
            let provider = match labelled.iter().find(|(label, _)| *label == name) {
                Some((label, interface)) => {
                    labelled_provider(component.name(), plugins, label, interface)?
                }
                None => provider(
                    engine, workload, components, &exports, plugins, index, &name, &item,
                )?,
            };
            let resources = defined_resources(engine, &item, &mut seen);
            list.push(Import {
                name,
                item,
                provider,
                resources,
            });
        }
        imports.push(list);
    }
    let order = link_order(components, &imports)?;
    Ok(Plan { imports, order })
}

/// Where a labelled import (`import label: ns:pkg/iface;`) comes from: a
/// plugin's claim for its label or for every label. WASI and in-process
/// links serve unlabelled imports only.
fn labelled_provider(
    component: &str,
    plugins: &[Claimed<'_>],
    label: &str,
    interface: &str,
) -> Result<Provider, String> {
    plugins
        .iter()
        .position(|p| {
            p.claims
                .imports
                .iter()
                .any(|c| c.covers_labelled(component, label, interface))
        })
        .map(Provider::Plugin)
        .ok_or_else(|| {
            format!(
                "component `{component}` imports `{label}` (implementing `{interface}`), which nothing on this host provides: declare `{interface}` under `wrpc:`, for every label or with `label: {label}`"
            )
        })
}

#[allow(clippy::too_many_arguments)]
fn provider(
    engine: &Engine,
    workload: &Workload,
    components: &[CompiledComponent],
    exports: &[Vec<String>],
    plugins: &[Claimed<'_>],
    index: usize,
    name: &str,
    item: &ComponentItem,
) -> Result<Provider, String> {
    let component = components[index].name();
    let package = name.split('/').next().unwrap_or(name);
    if WASI_PACKAGES.contains(&package) {
        return Ok(Provider::Wasi);
    }
    if let Some(p) = plugins
        .iter()
        .position(|p| p.claims.imports.iter().any(|c| c.covers(component, name)))
    {
        return Ok(Provider::Plugin(p));
    }
    let chosen = workload
        .component(component)
        .and_then(|spec| spec.imports.iter().find(|c| c.interface.matches(name)));
    if let Some(choice) = chosen {
        let Some(exporter) = components.iter().position(|c| c.name() == choice.component) else {
            return Err(format!(
                "component `{component}`: import `{name}` names component `{}`, which is not in the workload",
                choice.component
            ));
        };
        if !exports[exporter].iter().any(|e| e == name) {
            return Err(format!(
                "component `{component}`: import `{name}` names component `{}`, which does not export it ({})",
                choice.component,
                listed("it exports", &exports[exporter])
            ));
        }
        return Ok(Provider::Local(exporter));
    }
    let exporters: Vec<usize> = (0..components.len())
        .filter(|&j| j != index && exports[j].iter().any(|e| e == name))
        .collect();
    match exporters.as_slice() {
        [one] => return Ok(Provider::Local(*one)),
        [first, second, ..] => {
            return Err(format!(
                "component `{component}` imports `{name}`, which components `{}` and `{}` both export: pick one with `imports: [{{interface: {name}, component: …}}]` on `{component}`",
                components[*first].name(),
                components[*second].name()
            ))
        }
        [] => {}
    }
    if is_type_only(engine, item) {
        return Ok(Provider::TypesOnly);
    }
    let servers: Vec<&str> = plugins
        .iter()
        .filter(|p| p.serves.iter().any(|s| s.matches(name)))
        .map(|p| p.id)
        .collect();
    Err(if servers.is_empty() {
        format!(
            "component `{component}` imports `{name}`, which nothing on this host provides: declare it under `wrpc:` to route it to an extension, or add a component that exports it"
        )
    } else {
        format!(
            "component `{component}` imports `{name}`, which nothing on this host provides: declare it under `host:` to serve it in process (plugin `{}`), or under `wrpc:` to route it to an extension",
            servers.join("`, `")
        )
    })
}

fn listed(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        "it exports no interface".into()
    } else {
        format!("{what}: {}", names.join(", "))
    }
}

/// The resources instance `item` defines, by name: those whose type is not
/// in `seen` (the types of earlier imports), which it then joins.
fn defined_resources(
    engine: &Engine,
    item: &ComponentItem,
    seen: &mut Vec<ResourceType>,
) -> Vec<String> {
    let ComponentItem::ComponentInstance(ty) = item else {
        return Vec::new();
    };
    let mut defined = Vec::new();
    for (name, export) in ty.exports(engine) {
        if let ComponentItem::Resource(resource) = export.ty {
            if !seen.contains(&resource) {
                seen.push(resource);
                defined.push(name.to_string());
            }
        }
    }
    defined
}

/// Whether `item` defines types only: nothing to provide.
pub(crate) fn is_type_only(engine: &Engine, item: &ComponentItem) -> bool {
    matches!(item, ComponentItem::ComponentInstance(ty)
        if ty.exports(engine).all(|(_, t)| matches!(t.ty, ComponentItem::Type(_))))
}

/// The components in an order where each comes after those it imports
/// from; a cycle is named.
fn link_order(
    components: &[CompiledComponent],
    imports: &[Vec<Import>],
) -> Result<Vec<usize>, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        imports: &[Vec<Import>],
        marks: &mut [Mark],
        path: &mut Vec<(usize, String)>,
        order: &mut Vec<usize>,
    ) -> Result<(), Vec<(usize, String)>> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Open => {
                let start = path.iter().position(|(c, _)| *c == i).unwrap_or(0);
                return Err(path[start..].to_vec());
            }
            Mark::New => {}
        }
        marks[i] = Mark::Open;
        for import in &imports[i] {
            if let Provider::Local(j) = import.provider {
                path.push((i, import.name.clone()));
                visit(j, imports, marks, path, order)?;
                path.pop();
            }
        }
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; components.len()];
    let mut order = Vec::with_capacity(components.len());
    let mut by_name: HashMap<usize, &str> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        by_name.insert(i, c.name());
    }
    for i in 0..components.len() {
        let mut path = Vec::new();
        if let Err(cycle) = visit(i, imports, &mut marks, &mut path, &mut order) {
            let names: Vec<String> = cycle
                .iter()
                .map(|(c, _)| format!("`{}`", by_name[c]))
                .chain(cycle.first().map(|(c, _)| format!("`{}`", by_name[c])))
                .collect();
            let edges: Vec<String> = cycle
                .iter()
                .map(|(c, import)| format!("`{}` imports `{import}`", by_name[c]))
                .collect();
            return Err(format!(
                "components import from each other in a cycle: {} ({})",
                names.join(" → "),
                edges.join("; ")
            ));
        }
    }
    Ok(order)
}
