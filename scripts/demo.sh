#!/usr/bin/env bash
# The demo: Redis + NATS + keyvalue-redis (serving NATS and TCP at once) and
# the host running demo/counter.yaml, which counts visits with `increment`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

log() { printf '==> %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

log "building the workspace (debug) and the demo guest (wasm32-wasip2)"
cargo build --workspace --locked --quiet
cargo build --release --locked --quiet --target wasm32-wasip2 \
  --manifest-path tests/components/kv-guest/Cargo.toml

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(free_port); nats_port=$(free_port); tcp_port=$(free_port); http_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
nats-server -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
pids+=($!)
sleep 0.5

log "starting keyvalue-redis: nats://127.0.0.1:$nats_port and tcp://127.0.0.1:$tcp_port"
RUST_LOG=warn target/debug/keyvalue-redis \
  --redis-url "redis://127.0.0.1:$redis_port" \
  --nats-url "nats://127.0.0.1:$nats_port" \
  --listen "tcp://127.0.0.1:$tcp_port" \
  --http-addr "127.0.0.1:$http_port" &
pids+=($!)
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null || { echo "keyvalue-redis never became ready" >&2; exit 1; }

for target in "nats://127.0.0.1:$nats_port" "tcp://127.0.0.1:$tcp_port" "nats://127.0.0.1:$nats_port"; do
  log "host run demo/counter.yaml --wrpc-target $target"
  target/debug/host run demo/counter.yaml --wrpc-target "$target"
done
log "demo done: three visits counted in Redis through wRPC"
