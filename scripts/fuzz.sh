#!/usr/bin/env bash
# Runs each datapath fuzz target for a bounded time (default 30 s): the key extractor and the
# action executor / VXLAN decapsulation. cargo-fuzz needs nightly flags; the stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1, used for the fuzz crate only. Fails on any crash.
set -euo pipefail
cd "$(dirname "$0")/../datapath/fuzz"
secs=${1:-30}
export RUSTC_BOOTSTRAP=1
mkdir -p ../../target
for t in extract tunnel_pop; do
  echo "fuzz: $t for ${secs}s"
  mkdir -p "corpus/$t"
  log=../../target/fuzz-$t.log
  if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t FAILED (artifacts in datapath/fuzz/artifacts/$t)"
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$log" | sed "s/^/fuzz: $t: /" || true
done
