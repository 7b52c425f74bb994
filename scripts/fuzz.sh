#!/usr/bin/env bash
# The fuzz targets in fuzz/ (docs/RELIABILITY.md, "Fuzzing"), with libFuzzer
# on stable Rust: plain cargo builds them with the coverage instrumentation
# libFuzzer reads (no cargo-fuzz, no nightly).
#
#   scripts/fuzz.sh                       CI: build, then every target briefly
#   scripts/fuzz.sh TARGET [--minutes N]  by hand: one target, N minutes (10)
#   scripts/fuzz.sh --merge TARGET        minimize fuzz/corpus/TARGET with
#                                         what by-hand runs found (-merge=1)
#   scripts/fuzz.sh --list                the targets
#
# CI runs each target for FUZZ_SECONDS (default 60 in all) over its
# committed corpus and fails on any crash, timeout or allocation past the
# limits. By-hand runs add what they find to fuzz/target/corpus/TARGET
# (ignored by git) and leave crashes in fuzz/target/artifacts/TARGET.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd fuzz

TARGETS=(frame scanner codec nats wit_value json_value endpoint discovery manifest)
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN="${CARGO_TARGET_DIR:-target}/$TRIPLE/release"
# A crash, a run over 10 s, 2 GiB resident or one allocation over 256 MiB
# is a finding.
LIMITS=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=4096 -print_final_stats=1)

build() {
  # --target keeps the instrumentation off build scripts and proc macros.
  RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares" \
    cargo build --locked --release --target "$TRIPLE" --bins
}

known() {
  local t
  for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done
  echo "unknown target \`$1\` (scripts/fuzz.sh --list)" >&2
  exit 2
}

case "${1:-}" in
  "")
    start=$SECONDS
    build
    echo "fuzz: built in $((SECONDS - start)) s"
    total="${FUZZ_SECONDS:-60}"
    each=$(( (total + ${#TARGETS[@]} - 1) / ${#TARGETS[@]} ))
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    for t in "${TARGETS[@]}"; do
      mkdir -p "$work/$t"
      echo "fuzz: $t for $each s"
      # New inputs go to a scratch directory: the committed corpus is only read.
      "$BIN/$t" "$work/$t" "corpus/$t" "${LIMITS[@]}" -max_total_time="$each" \
        -artifact_prefix="$work/$t-" 2>"$work/$t.log" || {
        tail -n 40 "$work/$t.log" >&2
        echo "fuzz: $t found a failure; the input is above (base64)" >&2
        exit 1
      }
      grep -E '^(stat::number_of_executed_units|Done)' "$work/$t.log" | tail -n 1
    done
    echo "fuzz: ${#TARGETS[@]} targets, $((SECONDS - start)) s in all"
    ;;
  --list) printf '%s\n' "${TARGETS[@]}" ;;
  --merge)
    known "${2:?--merge TARGET}"
    build
    mkdir -p "target/corpus/$2" "target/merged/$2"
    rm -rf "target/merged/$2"/*
    # One input per covered edge (not per hit count): the committed corpora stay small.
    "$BIN/$2" -merge=1 -use_counters=0 "${LIMITS[@]}" "target/merged/$2" "corpus/$2" "target/corpus/$2"
    rm -rf "corpus/$2" && mv "target/merged/$2" "corpus/$2"
    echo "fuzz: corpus/$2 has $(ls "corpus/$2" | wc -l) inputs, $(du -sh --apparent-size "corpus/$2" | cut -f1)"
    ;;
  *)
    known "$1"
    minutes=10
    [ "${2:-}" = "--minutes" ] && minutes="${3:?--minutes N}"
    build
    mkdir -p "target/corpus/$1" "target/artifacts/$1"
    exec nice -n 10 "$BIN/$1" "target/corpus/$1" "corpus/$1" "${LIMITS[@]}" \
      -max_total_time=$((minutes * 60)) -artifact_prefix="target/artifacts/$1/"
    ;;
esac
