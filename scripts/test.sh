#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, then
#   0. checks the gates: `cargo fmt --check`, `cargo clippy --workspace --all-targets -D warnings`,
#      `cargo doc --workspace --no-deps` with warnings denied,
#   1. builds everything and runs every unit, property, scenario test and criterion bench smoke
#      (cargo test --workspace --all-targets),
#   2. fuzzes the packet parsers for a bounded time (FUZZ_SECONDS per target, default 30),
#   3. runs the packet-rate harness on all five scenarios (release build) and checks its JSON,
#   4. runs the OpenFlow and tenant API benchmarks with small counts and checks their JSON,
#   5. runs the side-by-side lab benchmark briefly (strato, Linux bridge, OVS, raw AF_XDP on
#      veths) and checks its JSON (root only: CI is root; elsewhere it says it skipped).
# Exits non-zero on any failure. Prints a closing "N passed, N failed" line for the stages.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
passed=0; failed=0
stage() { printf '\n==== %s ====\n' "$*"; }
ok() { passed=$((passed+1)); echo "stage ok: $*"; }
bad() { failed=$((failed+1)); echo "stage FAILED: $*"; }

# Build outputs (honours CARGO_TARGET_DIR, as cargo does).
T="${CARGO_TARGET_DIR:-target}"
mkdir -p "$T"
# No incremental caches: a fresh run never reuses them and they double the debug build's size.
export CARGO_INCREMENTAL=0
free_gib() { df -Pk "$T" | awk 'NR==2 {printf "%d", $4/1048576}'; }
echo "disk: $(free_gib) GiB free where the build goes ($T); a fresh run needs about 3.5 GiB (under 2 GiB at a time when short)"

stage "bootstrap"
scripts/bootstrap.sh --fuzz

stage "gate: cargo fmt --all --check"
if cargo fmt --all --check; then ok "fmt"; else bad "fmt (run \`cargo fmt --all\`)"; fi

stage "gate: cargo clippy --workspace --all-targets -- -D warnings"
if cargo clippy --workspace --all-targets -- -D warnings; then ok "clippy"; else bad "clippy"; fi

stage "gate: cargo doc --workspace --no-deps (warnings denied)"
if RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps; then ok "doc"; else bad "doc"; fi

stage "cargo test --workspace --all-targets"
if cargo test --workspace --all-targets --no-fail-fast; then ok "cargo test"; else bad "cargo test"; fi
# The later stages build release and fuzz binaries only. When the disk is short, the debug
# build (no longer needed) makes room for them.
if [ "$(free_gib)" -lt 8 ]; then
  echo "disk: only $(free_gib) GiB free; removing $T/debug (the tests are done with it)"
  rm -rf "$T"/debug
fi

stage "fuzz (${FUZZ_SECONDS}s per target)"
if scripts/fuzz.sh "$FUZZ_SECONDS"; then ok "fuzz"; else bad "fuzz"; fi
if [ "$(free_gib)" -lt 8 ]; then
  echo "disk: only $(free_gib) GiB free; removing target/fuzz (fuzzing is done; logs and artifacts stay)"
  rm -rf target/fuzz
fi

stage "packet-rate harness smoke (all scenarios, release)"
if cargo build --release -p strato-control --bin strato \
   && "$T"/release/strato bench pipeline --packets 2000000 --json > "$T"/bench-smoke.json \
   && python3 - "$T"/bench-smoke.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = [s["name"] for s in d["scenarios"]]
want = ["l2_fwd_1flow", "l2_fwd_10kflows", "vxlan_encap", "vxlan_decap", "classifier_100k"]
assert names == want, names
for s in d["scenarios"]:
    for k in ("mpps", "ns_per_pkt", "baseline_copy_mpps"):
        assert isinstance(s[k], (int, float)) and s[k] > 0, (s["name"], k, s[k])
    print(f'{s["name"]:18} {s["mpps"]:7.2f} Mpps  {s["ns_per_pkt"]:6.1f} ns/pkt  baseline copy {s["baseline_copy_mpps"]:.2f} Mpps')
PY
then ok "bench smoke"; else bad "bench smoke"; fi

stage "OpenFlow benchmark smoke (tiny counts, release)"
if cargo build --release -p strato-control --bin strato \
   && "$T"/release/strato bench openflow --flows 2000 --megaflows 500 --rounds 1 --json \
        > "$T"/bench-openflow.json \
   && python3 - "$T"/bench-openflow.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(d) == ["flow_mods_per_s", "revalidate_ms"], d
for k in ("flow_mods_per_s", "revalidate_ms"):
    assert isinstance(d[k], (int, float)) and d[k] > 0, (k, d[k])
print(f'flow_mods/s {d["flow_mods_per_s"]:.0f}  revalidate {d["revalidate_ms"]:.2f} ms')
PY
then ok "openflow bench smoke"; else bad "openflow bench smoke"; fi

stage "tenant API benchmark smoke (small counts, release)"
if "$T"/release/strato bench api --ports 500 --first-packet 20 --requests 500 --json \
        > "$T"/bench-api.json \
   && python3 - "$T"/bench-api.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = ["api_requests_per_s", "create_p50_ms", "create_p99_ms", "first_packet_p99_ms",
        "port_creates_per_s"]
assert sorted(d) == want, d
for k in want:
    assert isinstance(d[k], (int, float)) and d[k] > 0, (k, d[k])
print({k: round(v, 2) for k, v in d.items()})
PY
then ok "api bench smoke"; else bad "api bench smoke"; fi

stage "side-by-side lab benchmark smoke (root)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED lab benchmark smoke: needs root (namespaces, AF_XDP); CI runs as root"
elif "$T"/release/strato bench lab --seconds 2 --json > "$T"/bench-lab.json \
   && python3 - "$T"/bench-lab.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("strato", "bridge", "ovs", "raw"):
    assert d["mpps"][k] > 0, (k, d)
for k in ("strato_over_bridge", "strato_over_ovs", "strato_over_raw"):
    assert d["ratios"][k] > 0, (k, d)
print("mpps", d["mpps"], "ratios", {k: round(v, 2) for k, v in d["ratios"].items()})
PY
then ok "lab bench smoke"; else bad "lab bench smoke"; fi

echo
echo "stages: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
