#!/usr/bin/env bash
# The scaffold's output as a user gets it: `wrpc-ext new` makes a standalone
# crate outside this workspace, depending on the sdk by path, from a WIT
# with a typed error variant (wit/inventory). It must build, pass its own
# end-to-end test and be clippy-clean exactly as generated; then its
# ./build-image.sh builds its image, which starts, passes its own probe and
# answers a call (its HEALTHCHECK is run by hand: these machines have no
# systemd timers for podman). Run after containers/build.sh: the static release
# dependencies it compiled are reused.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=scaffold-check
container="$name-$$"
work=$(mktemp -d)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/containers/containers.conf}"
engine="${CONTAINER_ENGINE:-$(command -v podman || command -v docker)}"
cleanup() {
  "$engine" rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$root/target/debug/wrpc-ext" new "$name" \
    --wit "$root/wit/inventory" --world extension \
    --sdk-path "$root/sdk" --dir "$work/$name"
cd "$work/$name"
# The lock is the workspace's (copied by `new`): no download, and the
# workspace's compiled registry crates are reused from its target folder.
export CARGO_TARGET_DIR="$root/target"
cargo test --offline
cargo clippy --offline --all-targets -- -D warnings
echo "==> the scaffold's crate builds and passes its test as generated"

./build-image.sh
"$engine" run -d --name "$container" --network host --no-healthcheck \
    "$name:dev" --listen tcp://127.0.0.1:0 --http-addr 127.0.0.1:0 >/dev/null
# Its stdout announces `listening URL` for each address, then `ready`.
for _ in $(seq 600); do
  out=$("$engine" logs "$container" 2>/dev/null)
  grep -qx ready <<<"$out" && break
  [ "$("$engine" inspect -f '{{.State.Running}}' "$container")" = true ] ||
    { echo "the $name image exited: $("$engine" logs "$container" 2>&1)" >&2; exit 1; }
  sleep 0.1
done
grep -qx ready <<<"$out" || { echo "the $name image printed no \`ready\` within 60 s" >&2; exit 1; }
http=$(sed -n 's|^listening http://||p' <<<"$out" | tail -1)
tcp=$(sed -n 's|^listening \(tcp://.*\)|\1|p' <<<"$out" | tail -1)
"$engine" exec "$container" /app healthcheck "$http"
# A skeleton method fails the call with "not implemented yet" (exit 1).
set +e
answer=$("$root/target/debug/wrpc-ext" call "$tcp" example:inventory/stock@0.1.0.list 2>&1)
code=$?
set -e
expected="the extension failed the call: \`example:inventory/stock@0.1.0.list\` is not implemented yet"
if [ "$code" -ne 1 ] || [[ "$answer" != *"$expected" ]]; then
  echo "wrpc-ext call against the $name image: exit $code, \`$answer\`; expected exit 1 ending in \`$expected\`" >&2
  exit 1
fi
echo "==> the scaffold's image starts, passes its probe and answers: $answer"
"$engine" rmi -f "$name:dev" >/dev/null
