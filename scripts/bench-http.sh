#!/usr/bin/env bash
# The host as an HTTP server: builds the release binaries, runs `bench http`
# once with free placement and once with every process on CPU 0
# (`taskset -c 0`; children inherit the affinity), prints both runs' tables
# and rewrites the generated part of BENCHMARKS.md between
# `<!-- http:begin -->` and `<!-- http:end -->` (the rest of the file is kept).
#
# `wasmtime serve` is measured when a `wasmtime` 48.x is on PATH
# (`cargo install wasmtime-cli@48 --locked`); its rows say so otherwise.
#
# Extra arguments go to both runs, e.g. `./scripts/bench-http.sh --duration 3`
# (see `./target/release/bench http --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

log() { printf '==> %s\n' "$*" >&2; }

command -v taskset >/dev/null || { echo "bench-http.sh: taskset not found (util-linux)" >&2; exit 1; }

# What is measured: the commit, `-dirty` if the tree differs from it (the
# generated BENCHMARKS.md aside).
commit="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain -- . ':!BENCHMARKS.md')" ]; then
  commit="$commit-dirty"
fi

log "building the release binaries (host, bench, guests)"
cargo build --release --locked --workspace --bins

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bench=./target/release/bench

log "run 1 of 2: free placement"
"$bench" http --markdown "$work/free.md" "$@"
log "run 2 of 2: pinned, taskset -c 0"
taskset -c 0 "$bench" http --markdown "$work/pinned.md" "$@"

"$bench" document --doc BENCHMARKS.md --commit "$commit" --http \
  --date "$(date -u +%Y-%m-%d)" --nproc "$(nproc)" \
  --reproduce "./scripts/bench-http.sh${*:+ $*}" \
  "$work/free.md" "$work/pinned.md"
log "BENCHMARKS.md rewritten between its http markers (commit $commit; ${SECONDS}s in all)"
