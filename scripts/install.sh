#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian 12 machine:
# the wasm32-wasip2 and x86_64-unknown-linux-musl Rust targets (+ musl-tools),
# wasm-component-ld 0.5.31 (cargo install),
# nats-server, redis-server, Podman (+ runc, catatonit), docker-registry
# and the S3-compatible test server (moto, from PyPI).
# Idempotent: re-running it only installs what is missing.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v nats-server  >/dev/null 2>&1 || need_apt+=(nats-server)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The OCI registry (CNCF distribution) that host-oci's tests push to and pull from.
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v podman       >/dev/null 2>&1 || need_apt+=(podman)
command -v runc         >/dev/null 2>&1 || need_apt+=(runc)
# `podman kube play` builds each pod's infra (pause) image from catatonit,
# which podman only recommends.
command -v catatonit    >/dev/null 2>&1 || need_apt+=(catatonit)
command -v pkg-config   >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v curl         >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
command -v openssl      >/dev/null 2>&1 || need_apt+=(openssl)
# The static (musl) binaries the container images hold: ring compiles C.
command -v musl-gcc     >/dev/null 2>&1 || need_apt+=(musl-tools)
# libFuzzer, which the fuzz targets link (scripts/fuzz.sh), compiles C++.
command -v c++          >/dev/null 2>&1 || need_apt+=(g++)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The Debian redis-server package starts a system-wide instance on :6379; the
# project starts its own servers on free ports, so that one is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if ! command -v rustup >/dev/null 2>&1; then
  echo "rustup is required (https://rustup.rs); install it and re-run" >&2
  exit 1
fi
for target in wasm32-wasip2 x86_64-unknown-linux-musl; do
  if ! rustup target list --installed | grep -qx "$target"; then
    log "rustup target add $target"
    rustup target add "$target"
  fi
done

# Components with labelled imports (`import primary: ns:pkg/iface;`, e.g.
# tests/components/label-guest) need a newer component linker than the one
# rustc 1.95 bundles; tests/guests/build.rs uses this one for them.
WCL_VERSION=0.5.31
wcl="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-component-ld"
if [ "$("$wcl" --version 2>/dev/null | awk '{print $2}')" != "$WCL_VERSION" ]; then
  log "cargo install wasm-component-ld@$WCL_VERSION (component linker for labelled imports)"
  cargo install --locked --quiet "wasm-component-ld@$WCL_VERSION"
fi

# moto 5.2.0-5.2.1 answer CompleteMultipartUpload with the wrong XML root
# (which the AWS SDKs reject): pin a version known to be right.
MOTO_VERSION=5.2.5
if [ "$(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]; then
  log "pip install moto[server]==$MOTO_VERSION (S3-compatible test server)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  pip_install() { python3 -m pip install --quiet --disable-pip-version-check "$@" "moto[server]==$MOTO_VERSION"; }
  # Debian's own Python refuses system-wide installs (PEP 668) unless told to.
  pip_install || pip_install --break-system-packages
fi

log "installed: $(nats-server --version), $(redis-server --version | cut -d' ' -f1-3), $(podman --version), moto $(python3 -c 'import moto; print(moto.__version__)')"
