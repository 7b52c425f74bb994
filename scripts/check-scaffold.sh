#!/usr/bin/env bash
# The scaffold's output as a user gets it: `wrpc-ext new` makes a standalone
# crate outside this workspace, depending on the sdk by path, from a WIT
# with a typed error variant (wit/inventory). It must build, pass its own
# end-to-end test and be clippy-clean exactly as generated.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$root/target/debug/wrpc-ext" new scaffold-check \
    --wit "$root/wit/inventory" --world extension \
    --sdk-path "$root/sdk" --dir "$work/scaffold-check"
cd "$work/scaffold-check"
# The lock is the workspace's (copied by `new`): no download, and the
# workspace's compiled registry crates are reused from its target folder.
export CARGO_TARGET_DIR="$root/target"
cargo test --offline
cargo clippy --offline --all-targets -- -D warnings
echo "==> the scaffold's crate builds and passes its test as generated"
