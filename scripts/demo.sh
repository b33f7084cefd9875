#!/usr/bin/env bash
# The main job: a demo lab (two hypervisor hosts, tenant networks, VXLAN between them, traffic).
# Until real ports land, it runs the in-memory demo of the same pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo build --release -p strato-control --bin strato
exec target/release/strato demo "$@"
