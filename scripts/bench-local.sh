#!/usr/bin/env bash
# What stays in the host process, next to the same calls over a socket:
# builds the release binaries, runs `bench local` once with free placement
# and once with every process on CPU 0 (`taskset -c 0`; children inherit
# the affinity), prints both runs' tables and rewrites the generated part
# of BENCHMARKS.md between `<!-- local:begin -->` and `<!-- local:end -->`
# (the rest of the file is kept).
#
# Extra arguments go to both runs, e.g.
# `./scripts/bench-local.sh --iterations 20000 --rounds 5`
# (see `./target/release/bench local --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

log() { printf '==> %s\n' "$*" >&2; }

command -v taskset >/dev/null || { echo "bench-local.sh: taskset not found (util-linux)" >&2; exit 1; }

# What is measured: the commit, `-dirty` if the tree differs from it (the
# generated BENCHMARKS.md aside).
commit="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain -- . ':!BENCHMARKS.md')" ]; then
  commit="$commit-dirty"
fi

log "building the release binaries (host, extensions, echo example, bench, guests)"
cargo build --release --locked --workspace --bins --examples

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bench=./target/release/bench

log "run 1 of 2: free placement"
"$bench" local --markdown "$work/free.md" "$@"
log "run 2 of 2: pinned, taskset -c 0"
taskset -c 0 "$bench" local --markdown "$work/pinned.md" "$@"

"$bench" document --doc BENCHMARKS.md --commit "$commit" --local \
  --date "$(date -u +%Y-%m-%d)" --nproc "$(nproc)" \
  --reproduce "./scripts/bench-local.sh${*:+ $*}" \
  "$work/free.md" "$work/pinned.md"
log "BENCHMARKS.md rewritten between its local markers (commit $commit; ${SECONDS}s in all)"
