#!/usr/bin/env bash
# The demo. First with no backend process at all: an HTTP counter served by
# a long-running host (`host serve`) with its built-in keyvalue (kept in a
# file, so a restarted host counts on), asked with curl; the blob
# demo on a local directory, and two components of one workload linked in
# process (one exports wasi:blobstore on a directory, the other uses it).
# Then the same components over wRPC: Redis + NATS + keyvalue-redis (serving NATS, TCP, a Unix socket
# and a WebSocket at once) and the HTTP counter counting in Redis over each
# (demo/http-redis.yaml); then an S3-compatible server (moto) +
# blobstore-s3 and the host running demo/blob.yaml over TCP and NATS, storing,
# listing and reading back objects; then a workload serving a messaging
# handler, messaging-nats delivering a subject to it, and a component asking
# on that subject. Servers pick their own ports and say which.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

log() { printf '==> %s\n' "$*" >&2; }

log "building the workspace (debug) and the demo guest (wasm32-wasip2)"
cargo build --workspace --locked --quiet
cargo build --release --locked --quiet --target wasm32-wasip2 \
  --manifest-path tests/components/http-counter/Cargo.toml
cargo build --release --locked --quiet --target wasm32-wasip2 \
  --manifest-path tests/components/blob-guest/Cargo.toml
cargo build --release --locked --quiet --target wasm32-wasip2 \
  --manifest-path tests/components/msg-handler/Cargo.toml
cargo build --release --locked --quiet --target wasm32-wasip2 \
  --manifest-path tests/components/msg-guest/Cargo.toml
cargo build --release --locked --quiet --target wasm32-wasip2 \
  --manifest-path tests/components/blobstore-filesystem/Cargo.toml

# No backend: what the manifests keep goes under target/demo (relative to
# demo/, as the manifests say), emptied first so the counts start at 1.
rm -rf target/demo
mkdir -p target/demo/blobs target/demo/linked
work="$(mktemp -d)"
pids=()
cleanup() {
  # Last started, first stopped: each drains while the servers it uses are up.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits up to 10 s for a line matching $2 in file $1 and prints it.
wait_line() {
  for _ in $(seq 1 100); do
    if line=$(grep -m1 -E "$2" "$1" 2>/dev/null); then printf '%s\n' "$line"; return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

# Starts `host ARGS…` in the background; sets $http (its HTTP listener) and
# $ops (its API), once it is ready.
start_host() {
  local out="$work/host.$RANDOM.out"
  RUST_LOG=warn target/debug/host --http-listen 127.0.0.1:0 --http-addr 127.0.0.1:0 "$@" >"$out" &
  host_pid=$!
  http=$(wait_line "$out" '^serving HTTP on http://' | sed 's|^serving HTTP on ||')
  ops=$(wait_line "$out" '^listening http://' | sed 's|^listening http://||')
  wait_line "$out" '^ready$' >/dev/null
}

# Stops the host started last (SIGTERM: it drains, then exits).
stop_host() { kill "$host_pid"; wait "$host_pid" || true; }

for run in 1 2; do
  log "host serve demo/http.yaml (keyvalue in the host, kept in target/demo/http.kv; host $run)"
  start_host serve --host-id demo demo/http.yaml
  log "curl $http/count, twice"
  curl -sS "$http/count"
  curl -sS "$http/count"
  if [ "$run" = 1 ]; then
    log "host ctl --api $ops list"
    target/debug/host ctl --api "$ops" list
  fi
  stop_host
done
log "host run demo/local-blob.yaml (blobstore in the host, on target/demo/blobs)"
target/debug/host run demo/local-blob.yaml
log "host run demo/linked.yaml (album -> files, in process: files exports wasi:blobstore on target/demo/linked)"
target/debug/host run demo/linked.yaml
log "no backend: four requests counted in a file across two hosts, objects stored in a directory, directly and through another component"

# Waits for the extension $1 whose stdout is in file $2 to be ready: `ready`
# on its stdout says its listeners are bound and take calls; its own
# `healthcheck` (its /readyz) then says every check passes, its backend's
# included (up to 30 s).
wait_ready() {
  wait_line "$2" '^ready$' >/dev/null
  local http
  http=$(grep -m1 '^listening http://' "$2" | sed 's|^listening http://||')
  for _ in $(seq 1 300); do
    if "$1" healthcheck "$http" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$1 (http://$http) is not ready after 30 s:" >&2
  curl -s "http://$http/readyz" >&2 || true
  return 1
}

# redis-server cannot pick its own port: take one the kernel suggests and
# retry if another process got it first.
for _ in $(seq 1 20); do
  redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  if wait_line "$work/redis.log" "Ready to accept connections|Address already in use" | grep -q Ready; then
    pids+=("$redis_pid"); break
  fi
  kill "$redis_pid" 2>/dev/null || true
done

nats-server -a 127.0.0.1 -p -1 >"$work/nats.log" 2>&1 &
pids+=($!)
nats_url="nats://$(wait_line "$work/nats.log" "Listening for client connections on" | sed 's/.* on //')"

log "starting keyvalue-redis on $nats_url, TCP, a Unix socket and a WebSocket"
RUST_LOG=warn target/debug/keyvalue-redis \
  --redis-url "redis://127.0.0.1:$redis_port" \
  --nats-url "$nats_url" \
  --listen tcp://127.0.0.1:0 --listen "unix://$work/kv.sock" --listen ws://127.0.0.1:0/wrpc \
  --http-addr 127.0.0.1:0 >"$work/ext.out" &
pids+=($!)
wait_ready target/debug/keyvalue-redis "$work/ext.out"
target() { grep -m1 "^listening $1://" "$work/ext.out" | sed 's/^listening //'; }

for target in "$nats_url" "$(target tcp)" "$(target unix)" "$(target ws)"; do
  log "host run demo/http-redis.yaml --wrpc-target $target"
  start_host --wrpc-target "$target" run demo/http-redis.yaml
  log "curl $http/count"
  curl -sS "$http/count"
  stop_host
done
log "four requests counted in Redis through wRPC, one per transport"

# moto binds port 0 and logs "Running on http://127.0.0.1:PORT".
python3 -m moto.server -H 127.0.0.1 -p 0 >"$work/s3.log" 2>&1 &
pids+=($!)
s3_url="http://$(wait_line "$work/s3.log" "Running on http://" | sed 's|.*Running on http://||')"

log "starting blobstore-s3 on $nats_url and TCP, storing in $s3_url"
AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo RUST_LOG=warn target/debug/blobstore-s3 \
  --s3-endpoint "$s3_url" --s3-path-style \
  --nats-url "$nats_url" --listen tcp://127.0.0.1:0 \
  --http-addr 127.0.0.1:0 >"$work/blob.out" &
pids+=($!)
wait_ready target/debug/blobstore-s3 "$work/blob.out"
tcp_blob="$(grep -m1 '^listening tcp://' "$work/blob.out" | sed 's/^listening //')"

for target in "$tcp_blob" "$nats_url"; do
  log "host run demo/blob.yaml --wrpc-target $target"
  target/debug/host run demo/blob.yaml --wrpc-target "$target"
done
log "starting the greeter workload, which serves its wasmcloud:messaging handler"
RUST_LOG=warn target/debug/host run demo/greeter.yaml --wrpc-target "$nats_url" >"$work/greeter.out" &
pids+=($!)
wait_line "$work/greeter.out" '^ready$' >/dev/null
handler="$(grep -m1 '^serving ' "$work/greeter.out" | sed 's/.* at //')"
log "starting messaging-nats on $nats_url: demo.greetings goes to the handler at $handler"
RUST_LOG=warn target/debug/messaging-nats --nats-url "$nats_url" --http-addr 127.0.0.1:0 \
  --subscribe "subject=demo.greetings,handler=$handler" >"$work/msg.out" &
pids+=($!)
wait_ready target/debug/messaging-nats "$work/msg.out"
log "host run demo/ask.yaml --wrpc-target $nats_url"
target/debug/host run demo/ask.yaml --wrpc-target "$nats_url"
log "demo done: visits counted in Redis, objects streamed to S3, and a request answered by another component, through wRPC"
