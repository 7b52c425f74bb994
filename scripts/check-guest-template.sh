#!/usr/bin/env bash
# Checks templates/guest, the starting point for a guest component calling an
# extension: its WIT is the repository's wit/inventory/inventory.wit, it
# builds on its own (`--locked`, for wasm32-wasip2), and its workload.yaml,
# pointed at a freshly started inventory extension over TCP, runs through the
# host and prints what templates/guest/README.md says. Needs
# target/debug/host and target/debug/inventory (`cargo build -p host -p
# inventory`). Exits non-zero on any failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

template=templates/guest
target_dir="${GUEST_TEMPLATE_TARGET_DIR:-/tmp/guest-template-target}"
wasm="$target_dir/wasm32-wasip2/release/inventory-client.wasm"

# What the guest prints against a fresh extension.
expected='restocked apple: 10 on hand
reserved 4 apple as #1
cannot reserve 100 apple: 6 free
apple: 10 on hand, 4 reserved
released #1
in stock: apple (10 on hand, 0 reserved)'

fail() { echo "check-guest-template: $*" >&2; exit 1; }
log() { printf '==> %s\n' "$*" >&2; }

for bin in host inventory; do
  [ -x "target/debug/$bin" ] || fail "target/debug/$bin not found: run \`cargo build -p host -p inventory\` first"
done

cmp -s wit/inventory/inventory.wit "$template/wit/inventory.wit" \
  || fail "$template/wit/inventory.wit differs from wit/inventory/inventory.wit: copy it again"

# The README shows the same output (its first ```text block).
readme="$(awk '/^```text$/ { on = 1; next } on && /^```$/ { exit } on' "$template/README.md")"
[ "$readme" = "$expected" ] || fail "$template/README.md shows another output than the one expected here"

log "building $template for wasm32-wasip2 (target dir $target_dir)"
cargo build --release --locked --quiet --target wasm32-wasip2 \
  --manifest-path "$template/Cargo.toml" --target-dir "$target_dir"
[ -f "$wasm" ] || fail "the build did not produce $wasm"
grep -q '^    file: ./target/wasm32-wasip2/release/inventory-client.wasm$' "$template/workload.yaml" \
  || fail "$template/workload.yaml does not name ./target/wasm32-wasip2/release/inventory-client.wasm"

work="$(mktemp -d)"
ext_pid=
cleanup() {
  if [ -n "$ext_pid" ]; then
    kill "$ext_pid" 2>/dev/null || true
    wait "$ext_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

: >"$work/ext.out"
RUST_LOG=warn target/debug/inventory --listen tcp://127.0.0.1:0 --http-addr 127.0.0.1:0 \
  >"$work/ext.out" 2>"$work/ext.err" &
ext_pid=$!
for _ in $(seq 1 300); do
  grep -qx ready "$work/ext.out" && break
  kill -0 "$ext_pid" 2>/dev/null || { cat "$work/ext.err" >&2; fail "inventory exited during start-up"; }
  sleep 0.1
done
grep -qx ready "$work/ext.out" || { cat "$work/ext.err" >&2; fail "inventory did not start within 30 s"; }
tcp="$(grep -m1 '^listening tcp://' "$work/ext.out" | sed 's/^listening //')"
[ -n "$tcp" ] || fail "inventory announced no TCP address: $(cat "$work/ext.out")"

# The template's own workload, with the component where it was built and the
# target where the extension listens.
sed -e "s|^    file: .*|    file: $(realpath "$wasm")|" \
  -e "s|^    target: tcp://127.0.0.1:7790 |    target: $tcp |" \
  "$template/workload.yaml" >"$work/workload.yaml"
grep -q "target: $tcp " "$work/workload.yaml" || fail "no \`target: tcp://127.0.0.1:7790\` in $template/workload.yaml"

log "host run $template/workload.yaml against inventory at $tcp"
code=0
timeout 120 target/debug/host run "$work/workload.yaml" >"$work/run.out" 2>"$work/run.err" || code=$?
cat "$work/run.out"
if [ "$code" -ne 0 ] || [ "$(cat "$work/run.out")" != "$expected" ]; then
  echo "--- host stderr:" >&2
  cat "$work/run.err" >&2
  echo "--- expected stdout:" >&2
  printf '%s\n' "$expected" >&2
  fail "host exited $code; the output above differs from what $template/README.md shows"
fi
log "the guest template builds and runs against the inventory extension"
