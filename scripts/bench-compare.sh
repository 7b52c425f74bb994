#!/usr/bin/env bash
# Old build against new build, in one run on this machine: checks out the
# old build (default 42d5cba, the commit before Wasmtime 48 and our own
# value codec; or the rev given as the first argument) in a git worktree
# outside this tree (`$OLD_TREE`, default ../old-main), builds it (release,
# its own target dir), builds this tree's release binaries, then runs
# `bench compare` once with free placement and once with every process on
# CPU 0 (`taskset -c 0`; children inherit the affinity), prints both runs'
# tables and rewrites the generated part of BENCHMARKS.md between
# `<!-- compare:begin -->` and `<!-- compare:end -->` (the rest of the file
# is kept).
#
# Only the host binary differs between the two sides: the extensions, the
# guests, Redis and NATS are this tree's, shared by both.
#
# Extra arguments go to both runs, e.g.
# `./scripts/bench-compare.sh 42d5cba --iterations 2000 --duration-ms 2000`
# (see `./target/release/bench compare --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

log() { printf '==> %s\n' "$*" >&2; }

command -v taskset >/dev/null || { echo "bench-compare.sh: taskset not found (util-linux)" >&2; exit 1; }

rev=42d5cba
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  rev="$1"
  shift
fi
old_tree="${OLD_TREE:-$(cd .. && pwd)/old-main}"

# What is measured: the commit, `-dirty` if the tree differs from it (the
# generated BENCHMARKS.md aside).
commit="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain -- . ':!BENCHMARKS.md')" ]; then
  commit="$commit-dirty"
fi
old_commit="$(git rev-parse --short "$rev^{commit}")"

if [ -e "$old_tree/.git" ]; then
  log "old build: worktree $old_tree at $old_commit"
  git -C "$old_tree" checkout --quiet --detach "$old_commit"
else
  log "old build: new worktree $old_tree at $old_commit"
  git worktree add --detach "$old_tree" "$old_commit"
fi
log "building the old build's release binaries (its own target dir)"
(cd "$old_tree" && CARGO_TARGET_DIR="$old_tree/target" cargo build --release --locked --bins --examples)
old_host="$old_tree/target/release/host"

log "building the new release binaries (host, extensions, examples, bench, guests)"
cargo build --release --locked --workspace --bins --examples

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bench=./target/release/bench

log "run 1 of 2: free placement"
"$bench" compare --old-host "$old_host" --markdown "$work/free.md" "$@"
log "run 2 of 2: pinned, taskset -c 0"
taskset -c 0 "$bench" compare --old-host "$old_host" --markdown "$work/pinned.md" "$@"

"$bench" document --doc BENCHMARKS.md --commit "$commit" --compare "$old_commit" \
  --date "$(date -u +%Y-%m-%d)" --nproc "$(nproc)" \
  --reproduce "./scripts/bench-compare.sh $old_commit${*:+ $*}" \
  "$work/free.md" "$work/pinned.md"
log "BENCHMARKS.md rewritten between its compare markers (new $commit, old $old_commit; ${SECONDS}s in all)"
