//! `wrpc-ext new NAME --wit PATH`: a new extension crate from a WIT world:
//! the bindings wired with `sdk::generate!`, a handler skeleton with one
//! method per exported function (each failing with "not implemented yet"),
//! the container definition, and an end-to-end test that starts the binary
//! and calls every function. What it writes builds and passes as written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use heck::ToUpperCamelCase as _;
use wit_parser_bindgen::{
    FunctionKind, Handle, InterfaceId, Resolve, Results, Type, TypeDefKind, TypeId, TypeOwner,
    WorldItem, WorldKey,
};

use crate::Fail;

/// Create an extension crate from a WIT world.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The crate and binary name (lowercase letters, digits and `-`).
    name: String,
    /// The WIT: a `.wit` file, or a folder (with `deps/` if it has dependencies).
    #[arg(long)]
    wit: PathBuf,
    /// The world whose exports the extension serves (default: the package's only world).
    #[arg(long)]
    world: Option<String>,
    /// Where to create the crate (default: `./NAME`); must not exist.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A crate of this project's workspace: add it to the members of the
    /// workspace at `ROOT` and its image to `containers/build.sh`.
    #[arg(long, value_name = "ROOT", conflicts_with_all = ["sdk_path", "sdk_git"])]
    workspace: Option<PathBuf>,
    /// A standalone crate depending on the sdk at this path (its workspace's
    /// `Cargo.lock` is copied, so the same pinned versions build).
    #[arg(long, value_name = "PATH", conflicts_with = "sdk_git")]
    sdk_path: Option<PathBuf>,
    /// A standalone crate depending on the sdk from this git repository.
    #[arg(long, value_name = "URL")]
    sdk_git: Option<String>,
    /// The git revision of `--sdk-git` (default: the default branch).
    #[arg(long, requires = "sdk_git")]
    sdk_rev: Option<String>,
}

/// Where the sdk comes from.
enum Mode {
    Workspace(PathBuf),
    Path(PathBuf),
    Git { url: String, rev: Option<String> },
}

/// Runs `wrpc-ext new`.
pub async fn run(args: Args) -> Result<(), Fail> {
    let name = args.name.clone();
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(Fail::usage(format!(
            "`{name}` is not a crate name for an extension (lowercase letters, digits and `-`, starting with a letter)"
        )));
    }
    let mode = match (&args.workspace, &args.sdk_path, &args.sdk_git) {
        (Some(root), _, _) => Mode::Workspace(absolute(root)?),
        (_, Some(path), _) => Mode::Path(absolute(path)?),
        (_, _, Some(url)) => Mode::Git {
            url: url.clone(),
            rev: args.sdk_rev.clone(),
        },
        _ => {
            return Err(Fail::usage(
                "say where the sdk comes from: --workspace ROOT (a crate of this project), --sdk-path PATH or --sdk-git URL",
            ))
        }
    };
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&name));
    if dir.exists() {
        return Err(Fail::usage(format!("{} already exists", dir.display())));
    }
    let world = read_world(&args.wit, args.world.as_deref())?;
    let files = render(&name, &world, &mode)?;

    std::fs::create_dir_all(dir.join("src")).map_err(|e| io_fail(&dir, &e))?;
    std::fs::create_dir_all(dir.join("tests")).map_err(|e| io_fail(&dir, &e))?;
    copy_wit(&args.wit, &dir.join("wit"))?;
    for (path, contents) in &files {
        write(&dir.join(path), contents)?;
        if path.extension().is_some_and(|e| e == "rs") {
            rustfmt(&dir.join(path));
        }
    }
    match &mode {
        Mode::Workspace(root) => {
            add_member(root, &dir)?;
            add_image(root, &name)?;
        }
        Mode::Path(sdk) => {
            // The sdk's workspace lock: the same pinned versions, known to build.
            if let Some(lock) = sdk.parent().map(|p| p.join("Cargo.lock")) {
                if lock.exists() {
                    std::fs::copy(&lock, dir.join("Cargo.lock")).map_err(|e| io_fail(&lock, &e))?;
                }
            }
        }
        Mode::Git { .. } => {}
    }
    println!(
        "created {} ({} serving {})",
        dir.display(),
        name,
        world.instances().join(", ")
    );
    println!(
        "next: fill in the methods in {}",
        dir.join("src/main.rs").display()
    );
    Ok(())
}

/// What the scaffold needs of the world.
struct World {
    resolve: Resolve,
    name: String,
    /// Exported interfaces, in declaration order.
    interfaces: Vec<Exported>,
}

struct Exported {
    id: InterfaceId,
    instance: String,
    /// `exports::ns::pkg::iface`, relative to the bindings module.
    module: String,
    /// The alias the generated code uses for the module.
    alias: String,
}

impl World {
    fn instances(&self) -> Vec<String> {
        self.interfaces.iter().map(|i| i.instance.clone()).collect()
    }
}

fn read_world(path: &Path, world: Option<&str>) -> Result<World, Fail> {
    let mut resolve = Resolve::new();
    let (package, _) = resolve
        .push_path(path)
        .map_err(|e| Fail::usage(format!("cannot read WIT at {}: {e:#}", path.display())))?;
    let world_id = resolve.select_world(package, world).map_err(|e| {
        let worlds: Vec<&str> = resolve.packages[package]
            .worlds
            .keys()
            .map(String::as_str)
            .collect();
        let package = &resolve.packages[package].name;
        let there = match worlds.as_slice() {
            [] => format!("{package} defines no world"),
            names => format!("the worlds of {package} are: {}", names.join(", ")),
        };
        let why = match world {
            Some(name) if !worlds.contains(&name) => format!("no world `{name}`"),
            None if worlds.len() > 1 => "choose a world with --world NAME".to_string(),
            // wit-parser's message, on one line.
            _ => format!("{e:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        };
        Fail::usage(format!("{why}; {there}"))
    })?;
    let w = &resolve.worlds[world_id];
    let mut interfaces = Vec::new();
    for (key, item) in &w.exports {
        let (WorldKey::Interface(_), WorldItem::Interface { id, .. }) = (key, item) else {
            return Err(Fail::usage(format!(
                "world `{}` exports `{}`, which is not a named interface; the sdk serves named interfaces",
                w.name,
                resolve.name_world_key(key)
            )));
        };
        let iface = &resolve.interfaces[*id];
        let (Some(instance), Some(pkg), Some(iface_name)) =
            (resolve.id_of(*id), iface.package, iface.name.clone())
        else {
            continue;
        };
        let module = format!(
            "exports::{}::{}::{}",
            wit_bindgen_wrpc_rust::to_rust_ident(&resolve.packages[pkg].name.namespace),
            wit_bindgen_wrpc_rust::to_rust_ident(&wit_bindgen_core::name_package_module(
                &resolve, pkg
            )),
            wit_bindgen_wrpc_rust::to_rust_ident(&iface_name),
        );
        interfaces.push(Exported {
            id: *id,
            instance,
            module,
            alias: wit_bindgen_wrpc_rust::to_rust_ident(&iface_name),
        });
    }
    if interfaces.is_empty() {
        return Err(Fail::usage(format!(
            "world `{}` exports no interface: nothing to serve",
            w.name
        )));
    }
    Ok(World {
        name: w.name.clone(),
        interfaces,
        resolve,
    })
}

/// `(path in the crate, contents)` of every generated file but the WIT.
fn render(name: &str, world: &World, mode: &Mode) -> Result<Vec<(PathBuf, String)>, Fail> {
    let ty = Types { world };
    let handler = name.to_upper_camel_case();
    let mut uses = String::new();
    let mut test_uses = String::new();
    let mut impls = String::new();
    let mut calls = String::new();
    for exported in &world.interfaces {
        let iface = &world.resolve.interfaces[exported.id];
        let _ = writeln!(
            uses,
            "use bindings::{} as {};",
            exported.module, exported.alias
        );
        let _ = writeln!(
            test_uses,
            "#[allow(unused_imports)]\nuse bindings::{} as {};",
            exported.module, exported.alias
        );
        let _ = writeln!(
            impls,
            "\nimpl {}::Handler<CallerContext> for {handler} {{",
            exported.alias
        );
        for func in iface.functions.values() {
            if !matches!(func.kind, FunctionKind::Freestanding) {
                return Err(Fail::usage(format!(
                    "`{}.{}` belongs to a resource; the sdk does not serve resources yet",
                    exported.instance, func.name
                )));
            }
            let what = format!("{}.{}", exported.instance, func.name);
            let method = wit_bindgen_wrpc_rust::to_rust_ident(&func.name);
            let mut params = String::new();
            let mut names = vec!["cx".to_string()];
            let mut types = Vec::new();
            let mut dummies = Vec::new();
            for (param, param_ty) in &func.params {
                let ident = wit_bindgen_wrpc_rust::to_rust_ident(param);
                let rust = ty.rust(param_ty, &what)?;
                let _ = write!(params, ", {ident}: {rust}");
                names.push(ident);
                types.push(rust);
                dummies.push(ty.dummy(param_ty, &what)?);
            }
            let results: Vec<String> = match &func.results {
                Results::Named(named) => named
                    .iter()
                    .map(|(_, t)| ty.rust(t, &what))
                    .collect::<Result<_, _>>()?,
                Results::Anon(t) => vec![ty.rust(t, &what)?],
            };
            let returns = match results.as_slice() {
                [] => "()".to_string(),
                [one] => one.clone(),
                many => format!("({})", many.join(", ")),
            };
            let unused = match names.as_slice() {
                [one] => one.clone(),
                many => format!("({})", many.join(", ")),
            };
            let _ = writeln!(
                impls,
                "    async fn {method}(&self, cx: CallerContext{params}) -> anyhow::Result<{returns}> {{\n        let _ = {unused};\n        Err(sdk::not_implemented(\"{what}\"))\n    }}\n"
            );
            let results_tuple = match results.as_slice() {
                [] => "()".to_string(),
                many => format!("({},)", many.join(", ")),
            };
            let params_tuple = if dummies.is_empty() {
                "()".to_string()
            } else {
                format!("({},)", dummies.join(", "))
            };
            let _ = writeln!(
                calls,
                "    let err = ext\n        .call::<_, {results_tuple}>(Vec::new(), \"{}\", \"{}\", {params_tuple})\n        .await\n        .expect_err(\"a skeleton method answered\");\n    assert!(\n        format!(\"{{err:#}}\").contains(\"`{what}` is not implemented yet\"),\n        \"{{err:#}}\"\n    );",
                exported.instance, func.name
            );
        }
        // `impl … {` + methods: close it, without the blank line before `}`.
        while impls.ends_with('\n') {
            impls.pop();
        }
        impls.push_str("\n}\n");
    }
    let served = world.instances().join("`, `");
    let world_name = &world.name;

    let main_rs = format!(
        r#"//! `{name}`: serves `{served}` over wRPC.
//!
//! Generated by `wrpc-ext new`: fill in the handler methods, add your own
//! flags to `Config`, and check the backend in `readiness`.

use std::process::ExitCode;

use sdk::CallerContext;

mod bindings {{
    sdk::generate!({{ world: "{world_name}", path: "wit" }});
}}

{uses}
/// The sdk's shared flags (`--listen`, `--nats-url`, `--http-addr`, …, each
/// with an environment variable), then the extension's own.
#[derive(clap::Parser)]
#[command(version, about)]
struct Config {{
    #[command(flatten)]
    serve: sdk::ServeArgs,
}}

impl sdk::Config for Config {{
    fn serve_args(&self) -> &sdk::ServeArgs {{
        &self.serve
    }}
}}

/// The handler: one method per exported function.
#[derive(Clone)]
struct {handler};
{impls}
fn main() -> ExitCode {{
    sdk::main("{name}", |config: Config| async move {{
        sdk::Extension::new("{name}", config.serve)
            .version(env!("CARGO_PKG_VERSION"))
            .readiness(|| async {{ Ok(()) }})
            .run(bindings::serve_exports({handler}))
            .await?;
        Ok(())
    }})
}}
"#
    );

    let test_rs = format!(
        r#"//! Starts `{name}` on a TCP port of its choosing and calls every
//! exported function (generated by `wrpc-ext new`; each call answers "not
//! implemented yet" until its method is written: replace these checks as
//! you fill them in).

use std::io::{{BufRead as _, BufReader}};
use std::process::{{Child, Command, Stdio}};

#[allow(dead_code)]
mod bindings {{
    sdk::generate!({{ world: "{world_name}", path: "wit" }});
}}

{test_uses}
/// The running extension, killed on drop.
struct Running(Child);

impl Drop for Running {{
    fn drop(&mut self) {{
        let _ = self.0.kill();
        let _ = self.0.wait();
    }}
}}

/// Starts the extension and returns it with its `tcp://` address, read from
/// the `listening …` lines it prints before `ready`.
fn start() -> (Running, String) {{
    let mut child = Command::new(env!("CARGO_BIN_EXE_{name}"))
        .args(["--listen", "tcp://127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the extension binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let running = Running(child);
    let mut tcp = None;
    for line in BufReader::new(stdout).lines() {{
        let line = line.expect("the extension's stdout is readable");
        if let Some(addr) = line.strip_prefix("listening tcp://") {{
            tcp = Some(format!("tcp://{{addr}}"));
        }}
        if line == "ready" {{
            break;
        }}
    }}
    let tcp = tcp.expect("the extension announced a tcp:// listener before `ready`");
    (running, tcp)
}}

#[tokio::test]
async fn every_function_is_served() {{
    let (_running, target) = start();
    let target = target.parse().expect("a tcp:// endpoint");
    let ext = sdk::Outbound::connect(&target, "{name}-test", bindings::WIT_PACKAGES, Default::default())
        .await
        .expect("connected");
{calls}}}
"#
    );

    let cargo_toml = match mode {
        Mode::Workspace(_) => format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
description = "A wRPC extension serving {served}"
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true

[dependencies]
sdk.workspace = true
anyhow.workspace = true
bytes.workspace = true
clap.workspace = true
# Bound backend calls with tokio::time::timeout; also runs the test.
tokio.workspace = true

[lints]
workspace = true
"#
        ),
        Mode::Path(path) => standalone(
            name,
            &served,
            &format!("{{ path = {:?} }}", path.display().to_string()),
        ),
        Mode::Git {
            url,
            rev: Some(rev),
        } => standalone(
            name,
            &served,
            &format!("{{ git = {url:?}, rev = {rev:?} }}"),
        ),
        Mode::Git { url, rev: None } => standalone(name, &served, &format!("{{ git = {url:?} }}")),
    };

    let mut files = vec![
        (PathBuf::from("Cargo.toml"), cargo_toml),
        (PathBuf::from("src/main.rs"), main_rs),
        (PathBuf::from("tests/e2e.rs"), test_rs),
    ];
    if !matches!(mode, Mode::Workspace(_)) {
        files.push((PathBuf::from("Containerfile"), containerfile(name)));
        files.push((PathBuf::from("build-image.sh"), build_image(name)));
    }
    Ok(files)
}

/// The `Cargo.toml` of a standalone crate whose sdk dependency is `sdk`.
fn standalone(name: &str, served: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
description = "A wRPC extension serving {served}"
edition = "2021"
publish = false

# Standalone: not a member of any enclosing workspace.
[workspace]

[dependencies]
# The sdk pins the wRPC crate family exactly (wrpc-transport =0.29.0,
# wrpc-transport-nats =0.31.0, wit-bindgen-wrpc =0.11.0, async-nats =0.49.1);
# generated code reaches them through it.
sdk = {sdk}
anyhow = "1"
bytes = "1"
clap = {{ version = "4", features = ["derive", "env"] }}
# Bound backend calls with tokio::time::timeout; also runs the test.
tokio = {{ version = "1", features = ["macros", "rt-multi-thread", "time"] }}

# As in the sdk's workspace: line tables for backtraces, and no debug info
# for dependencies in debug builds (smaller, faster-linking tests).
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false

[profile.release]
debug = "line-tables-only"
"#
    )
}

/// Rust types and placeholder values of WIT types, as `sdk::generate!`
/// (wit-bindgen-wrpc) names them from the generated `main.rs`.
struct Types<'a> {
    world: &'a World,
}

impl Types<'_> {
    fn rust(&self, ty: &Type, what: &str) -> Result<String, Fail> {
        Ok(match ty {
            Type::Bool => "bool".into(),
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::S8 => "i8".into(),
            Type::S16 => "i16".into(),
            Type::S32 => "i32".into(),
            Type::S64 => "i64".into(),
            Type::F32 => "f32".into(),
            Type::F64 => "f64".into(),
            Type::Char => "char".into(),
            Type::String => "String".into(),
            Type::Id(id) => {
                if let Some(path) = self.named(*id) {
                    return Ok(path);
                }
                self.anonymous(*id, what)?
            }
        })
    }

    fn anonymous(&self, id: TypeId, what: &str) -> Result<String, Fail> {
        let def = &self.world.resolve.types[id];
        Ok(match &def.kind {
            TypeDefKind::List(Type::U8) => "bytes::Bytes".into(),
            TypeDefKind::List(t) => format!("Vec<{}>", self.rust(t, what)?),
            TypeDefKind::Option(t) => format!("Option<{}>", self.rust(t, what)?),
            TypeDefKind::Result(r) => format!(
                "Result<{}, {}>",
                r.ok.as_ref()
                    .map_or(Ok("()".into()), |t| self.rust(t, what))?,
                r.err
                    .as_ref()
                    .map_or(Ok("()".into()), |t| self.rust(t, what))?
            ),
            TypeDefKind::Tuple(t) => {
                let types = t
                    .types
                    .iter()
                    .map(|t| self.rust(t, what))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({},)", types.join(", "))
            }
            TypeDefKind::Type(t) => self.rust(t, what)?,
            TypeDefKind::Handle(Handle::Own(_) | Handle::Borrow(_)) | TypeDefKind::Resource => {
                return Err(unsupported(what, "a resource"))
            }
            TypeDefKind::Future(_) | TypeDefKind::Stream(_) => {
                return Err(unsupported(what, "a future or stream"))
            }
            _ => return Err(unsupported(what, "a type the scaffold does not know")),
        })
    }

    /// The path of a named type, if `id` is one.
    fn named(&self, id: TypeId) -> Option<String> {
        let resolve = &self.world.resolve;
        let def = &resolve.types[id];
        let name = def.name.as_deref()?;
        let rust = match name {
            "handler" => "Handler_".to_string(),
            other => other.to_upper_camel_case(),
        };
        let module = match def.owner {
            TypeOwner::Interface(owner) => {
                match self.world.interfaces.iter().find(|e| e.id == owner) {
                    Some(exported) => exported.alias.clone(),
                    None => {
                        let iface = &resolve.interfaces[owner];
                        let pkg = iface.package?;
                        format!(
                            "bindings::{}::{}::{}",
                            wit_bindgen_wrpc_rust::to_rust_ident(
                                &resolve.packages[pkg].name.namespace
                            ),
                            wit_bindgen_wrpc_rust::to_rust_ident(
                                &wit_bindgen_core::name_package_module(resolve, pkg)
                            ),
                            wit_bindgen_wrpc_rust::to_rust_ident(iface.name.as_deref()?),
                        )
                    }
                }
            }
            TypeOwner::World(_) => "bindings".into(),
            TypeOwner::None => return None,
        };
        Some(format!("{module}::{rust}"))
    }

    /// An expression of type `ty`, for the generated test's calls.
    fn dummy(&self, ty: &Type, what: &str) -> Result<String, Fail> {
        Ok(match ty {
            Type::Bool => "false".into(),
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => "0".into(),
            Type::S8 | Type::S16 | Type::S32 | Type::S64 => "0".into(),
            Type::F32 | Type::F64 => "0.0".into(),
            Type::Char => "'a'".into(),
            Type::String => "String::new()".into(),
            Type::Id(id) => {
                let resolve = &self.world.resolve;
                let def = &resolve.types[*id];
                let path = self.named(*id);
                match (&def.kind, &path) {
                    (TypeDefKind::Record(r), Some(path)) => {
                        let fields = r
                            .fields
                            .iter()
                            .map(|f| {
                                Ok(format!(
                                    "{}: {}",
                                    wit_bindgen_wrpc_rust::to_rust_ident(&f.name),
                                    self.dummy(&f.ty, what)?
                                ))
                            })
                            .collect::<Result<Vec<_>, Fail>>()?;
                        format!("{path} {{ {} }}", fields.join(", "))
                    }
                    (TypeDefKind::Variant(v), Some(path)) => {
                        let case = v
                            .cases
                            .first()
                            .ok_or_else(|| unsupported(what, "an empty variant"))?;
                        let name = case.name.to_upper_camel_case();
                        match &case.ty {
                            Some(t) => format!("{path}::{name}({})", self.dummy(t, what)?),
                            None => format!("{path}::{name}"),
                        }
                    }
                    (TypeDefKind::Enum(e), Some(path)) => {
                        let case = e
                            .cases
                            .first()
                            .ok_or_else(|| unsupported(what, "an empty enum"))?;
                        format!("{path}::{}", case.name.to_upper_camel_case())
                    }
                    (TypeDefKind::Flags(_), Some(path)) => format!("{path}::empty()"),
                    (TypeDefKind::List(Type::U8), _) => "bytes::Bytes::new()".into(),
                    (TypeDefKind::List(_), _) => "Vec::new()".into(),
                    (TypeDefKind::Option(_), _) => "None".into(),
                    (TypeDefKind::Result(r), _) => match &r.ok {
                        Some(t) => format!("Ok({})", self.dummy(t, what)?),
                        None => "Ok(())".into(),
                    },
                    (TypeDefKind::Tuple(t), _) => {
                        let values = t
                            .types
                            .iter()
                            .map(|t| self.dummy(t, what))
                            .collect::<Result<Vec<_>, _>>()?;
                        format!("({},)", values.join(", "))
                    }
                    (TypeDefKind::Type(t), _) => self.dummy(t, what)?,
                    _ => {
                        // Resources, streams: refused by `rust` first.
                        self.rust(ty, what)?;
                        return Err(unsupported(what, "a type the scaffold does not know"));
                    }
                }
            }
        })
    }
}

fn unsupported(what: &str, construct: &str) -> Fail {
    Fail::usage(format!(
        "`{what}` uses {construct}, which the scaffold does not generate (write that method's registration by hand, see sdk/src/blobstore.rs)"
    ))
}

/// The standalone crate's image: the project's image definition (scratch, a
/// static musl binary, uid 65532, the binary as its own health check).
fn containerfile(name: &str) -> String {
    format!(
        r#"# The image of `{name}`: a static (musl) binary on an empty base, like
# every image of the project. ./build-image.sh stages the binary and the CA
# bundle into the build context.
FROM scratch
ARG BIN={name}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY ${{BIN}} /app
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    WRPC_HTTP_ADDR=0.0.0.0:9090 \
    LOG_FORMAT=json
USER 65532:65532
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/app", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app"]
"#
    )
}

fn build_image(name: &str) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Builds the image `{name}:dev` from a static release binary (needs the
# x86_64-unknown-linux-musl target: rustup target add x86_64-unknown-linux-musl).
set -euo pipefail
cd "$(dirname "${{BASH_SOURCE[0]}}")"
target=x86_64-unknown-linux-musl
cargo build --release --locked --target "$target"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# Without the line tables the release profile keeps for backtraces.
strip -o "$ctx/{name}" "${{CARGO_TARGET_DIR:-target}}/$target/release/{name}"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
engine="${{CONTAINER_ENGINE:-$(command -v podman || command -v docker)}}"
format=()
# Podman writes OCI images by default, which drop HEALTHCHECK.
case "$engine" in *podman) format=(--format docker) ;; esac
"$engine" build --quiet "${{format[@]}}" -f Containerfile -t {name}:dev "$ctx"
"#
    )
}

/// Copies a `.wit` file, or a folder with its `deps/`, to `to`.
fn copy_wit(from: &Path, to: &Path) -> Result<(), Fail> {
    std::fs::create_dir_all(to).map_err(|e| io_fail(to, &e))?;
    if from.is_file() {
        let name = from.file_name().unwrap_or_default();
        std::fs::copy(from, to.join(name)).map_err(|e| io_fail(from, &e))?;
        return Ok(());
    }
    let entries = std::fs::read_dir(from).map_err(|e| io_fail(from, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_fail(from, &e))?;
        let path = entry.path();
        if path.is_dir() {
            copy_wit(&path, &to.join(entry.file_name()))?;
        } else if path.extension().is_some_and(|e| e == "wit") {
            std::fs::copy(&path, to.join(entry.file_name())).map_err(|e| io_fail(&path, &e))?;
        }
    }
    Ok(())
}

/// Adds `dir` to the `members` of the workspace at `root`.
fn add_member(root: &Path, dir: &Path) -> Result<(), Fail> {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| io_fail(&manifest, &e))?;
    let dir = absolute(dir)?;
    let member = dir
        .strip_prefix(root)
        .map_err(|_| {
            Fail::usage(format!(
                "{} is not inside the workspace at {}",
                dir.display(),
                root.display()
            ))
        })?
        .display()
        .to_string();
    let Some(start) = text.find("members = [") else {
        return Err(Fail::usage(format!(
            "{} has no `members = [` list",
            manifest.display()
        )));
    };
    let Some(end) = text[start..].find(']').map(|i| start + i) else {
        return Err(Fail::usage(format!(
            "{}: unclosed `members`",
            manifest.display()
        )));
    };
    let updated = format!("{}    \"{member}\",\n{}", &text[..end], &text[end..]);
    write(&manifest, &updated)
}

/// Adds the extension's image to `containers/build.sh` (its list and its
/// ports: the health endpoint), if the workspace has one.
fn add_image(root: &Path, name: &str) -> Result<(), Fail> {
    let script = root.join("containers/build.sh");
    let Ok(text) = std::fs::read_to_string(&script) else {
        return Ok(());
    };
    let updated = text
        .replacen("all=(", &format!("all=({name} "), 1)
        .replacen(
            "declare -A ports=(",
            &format!("declare -A ports=([{name}]=\"9090\" "),
            1,
        );
    write(&script, &updated)
}

/// Formats a generated file with rustfmt when it is installed (the code is
/// valid either way; formatted, it reads like the rest of the crate).
fn rustfmt(path: &Path) {
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status();
}

fn write(path: &Path, contents: &str) -> Result<(), Fail> {
    std::fs::write(path, contents).map_err(|e| io_fail(path, &e))?;
    if path.extension().is_some_and(|e| e == "sh") {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io_fail(path, &e))?;
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, Fail> {
    std::path::absolute(path).map_err(|e| io_fail(path, &e))
}

fn io_fail(path: &Path, err: &std::io::Error) -> Fail {
    Fail::call(format!("{}: {err}", path.display()))
}
