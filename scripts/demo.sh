#!/usr/bin/env bash
# The main job, on a fresh Debian machine with the Rust toolchain (as root):
#  1. a real lab: three hosts (network namespaces) on one strato switch, two over AF_XDP veths
#     and one over a tap; every pair pings; the learned MACs, ports and counters are shown;
#     then everything is torn down (also on failure);
#  2. the overlay: two hypervisor hosts with two tenants sharing 10.0.0.0/24, VXLAN between
#     them, traffic crossing hosts inside each tenant and never between tenants (in memory
#     until the tenant issue moves it onto the lab).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "demo: building strato (release)"
cargo build --release -q -p strato-control
S=target/release/strato
LAB=labs/tri.toml
SOCK=/run/strato-lab/tri/strato.sock

if [ "$(id -u)" -eq 0 ]; then
  trap '$S lab down $LAB >/dev/null 2>&1 || true' EXIT
  $S lab down $LAB >/dev/null 2>&1 || true
  echo; echo "== strato lab up $LAB"; $S lab up $LAB
  echo; echo "== strato lab ping-all $LAB"; $S lab ping-all $LAB
  echo; echo "== strato ctl show"; $S ctl --socket $SOCK show
  echo; echo "== strato ctl dump-flows (learned MAC addresses are rules)"; $S ctl --socket $SOCK dump-flows
  echo; echo "== strato ctl dump-dpflows (what the workers cached)"; $S ctl --socket $SOCK dump-dpflows
  echo; echo "== strato ctl stats"; $S ctl --socket $SOCK stats
  echo; echo "== strato lab down $LAB"; $S lab down $LAB
  trap - EXIT
else
  echo "demo: not root: skipping the netns lab (it needs root for namespaces and AF_XDP)"
fi
echo; echo "== strato demo (two hosts, two tenants, VXLAN)"
$S demo
