#!/usr/bin/env bash
# Builds the static (musl) release binaries of the extensions and the host,
# and an image for each with whichever engine is present (podman or docker),
# tagged `wrpc-ext/<name>:dev`. Usage: containers/build.sh [NAME…] (default:
# all). A new extension adds its name to `all` and its ports to `ports`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh

log() { printf '==> %s\n' "$*" >&2; }

engine="${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}"
[ -n "$engine" ] || { echo "containers/build.sh: neither podman nor docker found (run scripts/install.sh)" >&2; exit 1; }

format=()
case "$engine" in
  # Podman writes OCI images by default, which drop HEALTHCHECK.
  *podman)
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/containers/containers.conf}"
    format=(--format docker)
    ;;
esac

target=x86_64-unknown-linux-musl
all=(inventory keyvalue-redis blobstore-s3 messaging-nats host)
names=("${@:-${all[@]}}")
# The ports each image documents: health is 9090 in all, then the wRPC port.
declare -A ports=([inventory]="9090" [keyvalue-redis]="9090 7761" [blobstore-s3]="9090 7771" [messaging-nats]="9090 7781" [host]="9090")

log "building static binaries for $target: ${names[*]}"
packages=()
for name in "${names[@]}"; do packages+=(-p "$name"); done
cargo build --release --locked --target "$target" "${packages[@]}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
for name in "${names[@]}"; do
  # Without the line tables the release profile keeps for backtraces.
  strip -o "$ctx/$name" "target/$target/release/$name" 2>/dev/null || cp "target/$target/release/$name" "$ctx/$name"
  log "$engine build wrpc-ext/$name:dev"
  "$engine" build --quiet "${format[@]}" -f containers/Containerfile \
    --build-arg "BIN=$name" --build-arg "PORTS=${ports[$name]:-9090}" \
    -t "wrpc-ext/$name:dev" "$ctx" >/dev/null
done
log "images: $(printf 'wrpc-ext/%s:dev ' "${names[@]}")"
