#!/usr/bin/env bash
# Runs every test: unit tests, doc tests, and the end-to-end tests against real
# nats-server and redis-server (tests/e2e builds the guest components).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# The e2e tests start the workspace's binaries: build them once, first.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked "$@"
