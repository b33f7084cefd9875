#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 30 s): the key extractor, the action
# executor / VXLAN decapsulation, and the OpenFlow decoder (parse then re-emit byte-for-byte).
# cargo-fuzz needs nightly flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP=1, used
# for the fuzz crates only. Both fuzz crates share one target directory, so the dependencies they
# have in common are built once. Fails on any crash.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs=${1:-30}
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$root/target/fuzz"
mkdir -p "$root/target"
for spec in datapath:extract datapath:tunnel_pop control:openflow; do
  crate=${spec%%:*}; t=${spec##*:}
  cd "$root/$crate/fuzz"
  echo "fuzz: $t for ${secs}s"
  mkdir -p "corpus/$t"
  log=$root/target/fuzz-$t.log
  if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t FAILED (artifacts in $crate/fuzz/artifacts/$t)"
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$log" | sed "s/^/fuzz: $t: /" || true
done
