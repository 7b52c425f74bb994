#!/usr/bin/env bash
# Runs every test: unit tests, doc tests, and the end-to-end tests against real
# nats-server and redis-server (tests/e2e builds the guest components), and
# the container tests on Podman (the images are built here, once).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# The e2e tests start the workspace's binaries: build them once, first.
cargo build --workspace --all-targets --locked
# The guest template builds as the tutorial says and runs against the
# example extension.
"$(dirname "${BASH_SOURCE[0]}")/check-guest-template.sh"
# The images the container tests run (static release binaries; cached by
# cargo and the engine after the first build).
"$(dirname "${BASH_SOURCE[0]}")/../containers/build.sh"
# What `wrpc-ext new` generates builds and passes its own test, outside
# the workspace (an out-of-tree extension), and its image runs (reusing
# the static release dependencies just built).
"$(dirname "${BASH_SOURCE[0]}")/check-scaffold.sh"
# Every test target runs even after one fails, so a run reports all failures.
cargo test --workspace --locked --no-fail-fast "$@"
# Every fuzz target briefly over its committed corpus (scripts/fuzz.sh;
# about a minute of fuzzing after the fuzz build).
"$(dirname "${BASH_SOURCE[0]}")/fuzz.sh"
