//! `k8s-render`: writes `containers/k8s/{native,classic}/workload.yaml` from
//! `containers/k8s/source.yaml`, or with `--check` fails when they are stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use k8s_render::Form;

/// Render the native-sidecar and classic pod manifests from source.yaml.
#[derive(Debug, Parser)]
#[command(name = "k8s-render", version, about)]
struct Cli {
    /// Write nothing; exit 1 when a render on disk differs from a fresh one.
    #[arg(long, env = "K8S_RENDER_CHECK")]
    check: bool,

    /// The folder holding source.yaml and the native/ and classic/ renders
    /// (default: this repository's containers/k8s).
    #[arg(long, env = "K8S_RENDER_DIR")]
    dir: Option<PathBuf>,

    /// Also write the classic render as Podman 4.3 plays it into this folder:
    /// workload.yaml without Secrets and liveness probes, and NAME.json for
    /// each Secret (`podman secret create NAME NAME.json`).
    #[arg(long, env = "K8S_RENDER_PODMAN", conflicts_with = "check")]
    podman: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.dir.unwrap_or_else(k8s_render::k8s_dir);
    let result = k8s_render::sync(&dir, !cli.check).and_then(|stale| {
        if let Some(out) = &cli.podman {
            write_podman(&dir, out)?;
        }
        Ok(stale)
    });
    match result {
        Ok(stale) if cli.check && !stale.is_empty() => {
            for s in &stale {
                eprintln!("k8s-render: {} {}", s.path.display(), s.reason);
            }
            eprintln!("k8s-render: run `cargo run -p k8s-render` and commit the result");
            ExitCode::FAILURE
        }
        Ok(stale) => {
            for s in &stale {
                println!("wrote {}", s.path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("k8s-render: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn write_podman(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let path = Form::Classic.path(dir);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let play = k8s_render::podman::prepare(k8s_render::parse_documents(&text)?)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = vec![(out.join("workload.yaml"), play.yaml)];
    for (name, json) in play.secrets {
        files.push((out.join(format!("{name}.json")), json));
    }
    for (file, contents) in files {
        std::fs::write(&file, contents)
            .with_context(|| format!("cannot write {}", file.display()))?;
        println!("wrote {}", file.display());
    }
    Ok(())
}
