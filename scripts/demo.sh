#!/usr/bin/env bash
# The main job, on a fresh Debian machine with the Rust toolchain (as root):
#   the tenant demo (`strato demo`): two hypervisor hosts (network namespaces), each running
#   `strato run` with a [tenant] section (the first also serving the Neutron API), joined by an
#   underlay bridge; two tenants red and blue, both 10.0.0.0/24; four VMs (each tenant one VM
#   per host, on taps and veths) that get their addresses by DHCP from strato; pings across
#   hosts inside each tenant (over VXLAN) must succeed and pings into the other tenant must
#   fail; then each host's counters and flow table are shown and everything is torn down (also
#   on failure). Exits non-zero if any check failed.
# Not root: `strato demo` runs the same topology in memory instead, and says so.
# Then, as root, the learning-switch lab (labs/tri.toml): three hosts on one strato switch over
# AF_XDP veths and a tap, every pair pinging, the learned rules, megaflows and counters shown.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "demo: building strato (release)"
cargo build --release -q -p strato-control
S="${CARGO_TARGET_DIR:-target}/release/strato"

echo; echo "== strato demo (two hosts, two tenants on the same CIDR, VXLAN, DHCP)"
$S demo

LAB=labs/tri.toml
SOCK=/run/strato-lab/tri/strato.sock
if [ "$(id -u)" -eq 0 ]; then
  trap '$S lab down $LAB >/dev/null 2>&1 || true' EXIT
  $S lab down $LAB >/dev/null 2>&1 || true
  echo; echo "== the learning switch: strato lab up $LAB"; $S lab up $LAB
  echo; echo "== strato lab ping-all $LAB"; $S lab ping-all $LAB
  echo; echo "== strato ctl dump-flows (learned MAC addresses are rules)"; $S ctl --socket $SOCK dump-flows
  echo; echo "== strato ctl stats"; $S ctl --socket $SOCK stats
  echo; echo "== strato lab down $LAB"; $S lab down $LAB
  trap - EXIT
fi
