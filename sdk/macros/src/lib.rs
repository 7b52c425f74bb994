//! `sdk::generate!`: from one WIT world, the wRPC bindings (by
//! `wit_bindgen_wrpc::generate!`) and the registration of every function the
//! world exports, so an extension author writes only the handler methods.
//!
//! Use it through the `sdk` crate (`sdk::generate!`), which documents it.

use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote};
use wit_parser_bindgen::{FunctionKind, Resolve, WorldItem, WorldKey};

/// See `sdk::generate!`.
#[proc_macro]
pub fn generate(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    match expand(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// The options the sdk reads; every option is also handed to
/// `wit_bindgen_wrpc::generate!` unchanged.
struct Options {
    /// Every key given.
    keys: Vec<String>,
    world: Option<String>,
    path: String,
    span: Span,
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let body = options_body(input)?;
    let options = parse_options(body.clone())?;
    let exported = read_world(&options)?;

    let mut functions = Vec::new();
    let mut bounds = Vec::new();
    let mut instances = Vec::new();
    for interface in &exported.interfaces {
        let module: Vec<_> = interface
            .module
            .iter()
            .map(|m| format_ident!("{m}"))
            .collect();
        let handler = quote!(self::#(#module)::*::Handler<::sdk::CallerContext>);
        bounds.push(handler.clone());
        let instance = &interface.instance;
        instances.push(instance.clone());
        for func in &interface.functions {
            let name = &func.name;
            let method = format_ident!("{}", func.method);
            let params: Vec<_> = (0..func.params).map(|i| format_ident!("p{i}")).collect();
            let results = if func.results == 1 {
                quote!((results,))
            } else {
                quote!(results)
            };
            functions.push(quote! {
                {
                    let handler = ::core::clone::Clone::clone(&self.0);
                    functions.serve(#instance, #name, move |cx, (#(#params,)*)| {
                        let handler = ::core::clone::Clone::clone(&handler);
                        async move {
                            let results = <H as #handler>::#method(&handler, cx, #(#params),*).await?;
                            ::core::result::Result::Ok(#results)
                        }
                    })?;
                }
            });
        }
    }
    let packages = exported.packages.iter().map(|files| {
        let files = files.iter().map(|path| {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = path.to_string_lossy();
            quote!((#name, ::core::include_str!(#path)))
        });
        quote!(&[#(#files),*])
    });
    let world = &exported.world;

    // The generated code reaches its runtime through the sdk, so an
    // extension needs no direct dependency on wit-bindgen-wrpc.
    let mut runtime = TokenStream::new();
    for (key, krate) in RUNTIME_PATHS {
        if !options.keys.iter().any(|k| k == key) {
            let key = format_ident!("{key}");
            let path = format!("::sdk::__private::wit_bindgen_wrpc::{krate}");
            runtime.extend(quote!(#key: #path,));
        }
    }
    let body = if body.is_empty() || ends_with_comma(&body) {
        body
    } else {
        quote!(#body,)
    };

    Ok(quote! {
        ::sdk::__private::wit_bindgen_wrpc::generate!({ #body #runtime });

        /// Every handler trait of the world's exports: implement them all
        /// for one type and serve it with [`serve_exports`].
        pub trait Handlers: #(#bounds +)* ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static {}

        impl<H> Handlers for H where H: #(#bounds +)* ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static {}

        /// The WIT instances the world exports, in declaration order.
        pub const EXPORTED_INSTANCES: &[&str] = &[#(#instances),*];

        /// The WIT packages that type the world (dependencies first), as
        /// `(file name, contents)` lists.
        pub const WIT_PACKAGES: &[&[(&str, &str)]] = &[#(#packages),*];

        /// The world's exports served by `handler`: every function of every
        /// exported interface, for [`::sdk::Extension::run`].
        pub fn serve_exports<H: Handlers>(handler: H) -> impl ::sdk::Exports {
            ServeExports(handler)
        }

        /// The whole `main` of an extension serving the world with `handler`
        /// and no flags of its own: [`::sdk::serve_main`], named and
        /// versioned after this crate (`CARGO_PKG_NAME`, `CARGO_PKG_VERSION`).
        #[allow(dead_code)]
        pub fn serve_main<H: Handlers>(handler: H) -> ::std::process::ExitCode {
            ::sdk::serve_main(
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
                serve_exports(handler),
            )
        }

        #[doc = concat!("The exports of world `", #world, "`.")]
        struct ServeExports<H>(H);

        impl<H: Handlers> ::sdk::Exports for ServeExports<H> {
            fn register(
                &self,
                functions: &mut ::sdk::Functions,
            ) -> ::core::result::Result<(), ::sdk::RegisterError> {
                functions.add_wit(WIT_PACKAGES)?;
                functions.export(EXPORTED_INSTANCES)?;
                #(#functions)*
                ::core::result::Result::Ok(())
            }
        }
    })
}

/// `wit_bindgen_wrpc::generate!`'s options naming the crates its code uses.
const RUNTIME_PATHS: &[(&str, &str)] = &[
    ("anyhow_path", "anyhow"),
    ("bitflags_path", "bitflags"),
    ("bytes_path", "bytes"),
    ("futures_path", "futures"),
    ("tokio_path", "tokio"),
    ("tokio_util_path", "tokio_util"),
    ("tracing_path", "tracing"),
    ("wasm_tokio_path", "wasm_tokio"),
    ("wrpc_transport_path", "wrpc_transport"),
];

fn ends_with_comma(tokens: &TokenStream) -> bool {
    matches!(tokens.clone().into_iter().last(), Some(TokenTree::Punct(p)) if p.as_char() == ',')
}

/// The tokens inside `{ … }` (the braces are optional).
fn options_body(input: TokenStream) -> syn::Result<TokenStream> {
    let mut tokens = input.clone().into_iter();
    match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Group(group)), None)
            if group.delimiter() == proc_macro2::Delimiter::Brace =>
        {
            Ok(group.stream())
        }
        _ => Ok(input),
    }
}

/// Reads `world` and `path` from `key: value` pairs; other keys are left
/// to `wit_bindgen_wrpc::generate!`.
fn parse_options(body: TokenStream) -> syn::Result<Options> {
    let mut keys = Vec::new();
    let mut world = None;
    let mut path = None;
    let mut tokens = body.into_iter().peekable();
    while let Some(token) = tokens.next() {
        let TokenTree::Ident(key) = token else {
            return Err(syn::Error::new(token.span(), "expected `key: value`"));
        };
        match tokens.next() {
            Some(TokenTree::Punct(p)) if p.as_char() == ':' => {}
            _ => return Err(syn::Error::new(key.span(), "expected `:` after the key")),
        }
        let mut value = Vec::new();
        while let Some(token) = tokens.peek() {
            if matches!(token, TokenTree::Punct(p) if p.as_char() == ',') {
                tokens.next();
                break;
            }
            value.extend(tokens.next());
        }
        let string = || -> syn::Result<String> {
            let tokens: TokenStream = value.iter().cloned().collect();
            Ok(syn::parse2::<syn::LitStr>(tokens)
                .map_err(|_| syn::Error::new(key.span(), format!("`{key}` must be a string")))?
                .value())
        };
        keys.push(key.to_string());
        match key.to_string().as_str() {
            "world" => world = Some(string()?),
            "path" => path = Some((string()?, key.span())),
            _ => {}
        }
    }
    let Some((path, span)) = path else {
        return Err(syn::Error::new(
            Span::call_site(),
            "sdk::generate! needs `path`: the WIT folder or file, relative to Cargo.toml",
        ));
    };
    Ok(Options {
        keys,
        world,
        path,
        span,
    })
}

/// What the world exports, read from its WIT.
struct Exported {
    world: String,
    interfaces: Vec<Interface>,
    /// Each package's files, dependencies first.
    packages: Vec<Vec<PathBuf>>,
}

struct Interface {
    instance: String,
    /// The module of the generated `Handler` trait, e.g. `exports::wrpc::keyvalue::store`.
    module: Vec<String>,
    functions: Vec<Func>,
}

struct Func {
    /// The WIT name, as called on the wire.
    name: String,
    /// The generated method.
    method: String,
    params: usize,
    results: usize,
}

fn read_world(options: &Options) -> syn::Result<Exported> {
    let err = |msg: String| syn::Error::new(options.span, msg);
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = root.join(&options.path);
    let mut resolve = Resolve::new();
    let (package, sources) = resolve
        .push_path(&path)
        .map_err(|e| err(format!("failed to read WIT at {}: {e:#}", path.display())))?;
    let world_id = resolve
        .select_world(package, options.world.as_deref())
        .map_err(|e| err(format!("{e:#}")))?;
    let world = &resolve.worlds[world_id];

    let mut interfaces = Vec::new();
    for (key, item) in &world.exports {
        let WorldItem::Interface { id, .. } = item else {
            return Err(err(format!(
                "world `{}` exports `{}` directly; sdk::generate! serves exported interfaces only",
                world.name,
                resolve.name_world_key(key)
            )));
        };
        let (WorldKey::Interface(_), Some(instance)) = (key, resolve.id_of(*id)) else {
            return Err(err(format!(
                "world `{}` exports the unnamed interface `{}`; declare it in the package and export it by name",
                world.name,
                resolve.name_world_key(key)
            )));
        };
        let iface = &resolve.interfaces[*id];
        let Some(pkg) = iface.package else {
            return Err(err(format!("interface `{instance}` has no package")));
        };
        let module = vec![
            "exports".to_string(),
            wit_bindgen_wrpc_rust::to_rust_ident(&resolve.packages[pkg].name.namespace),
            wit_bindgen_wrpc_rust::to_rust_ident(&wit_bindgen_core::name_package_module(
                &resolve, pkg,
            )),
            wit_bindgen_wrpc_rust::to_rust_ident(iface.name.as_deref().unwrap_or_default()),
        ];
        let mut functions = Vec::new();
        for func in iface.functions.values() {
            if !matches!(func.kind, FunctionKind::Freestanding) {
                return Err(err(format!(
                    "`{instance}.{}` belongs to a resource; sdk::generate! does not serve resources yet",
                    func.name
                )));
            }
            functions.push(Func {
                name: func.name.clone(),
                method: wit_bindgen_wrpc_rust::to_rust_ident(&func.name),
                params: func.params.len(),
                results: func.results.len(),
            });
        }
        interfaces.push(Interface {
            instance,
            module,
            functions,
        });
    }
    if interfaces.is_empty() {
        return Err(err(format!("world `{}` exports no interface", world.name)));
    }

    let mut packages = Vec::new();
    for id in resolve.topological_packages() {
        let Some(paths) = sources.package_paths(id) else {
            continue;
        };
        let files = paths
            .map(|p| absolute(&root, p))
            .collect::<syn::Result<Vec<_>>>()?;
        packages.push(files);
    }
    Ok(Exported {
        world: world.name.clone(),
        interfaces,
        packages,
    })
}

/// `path` made absolute, so `include_str!` finds it from any module.
fn absolute(root: &Path, path: &Path) -> syn::Result<PathBuf> {
    let path = root.join(path);
    path.canonicalize().map_err(|e| {
        syn::Error::new(
            Span::call_site(),
            format!("cannot read {}: {e}", path.display()),
        )
    })
}
