#!/usr/bin/env bash
# Installs what strato's build, tests, demo and benchmarks need on a fresh Debian machine that
# has only the Rust toolchain. Idempotent: installs only what is missing, and says so.
#   scripts/bootstrap.sh            system packages
#   scripts/bootstrap.sh --fuzz     also cargo-fuzz (for the bounded fuzz runs in the test suite)
set -euo pipefail

say() { printf 'bootstrap: %s\n' "$*"; }

# Debian packages: build deps of xsk-rs/libxdp (libelf-dev zlib1g-dev libpcap-dev pkg-config clang
# llvm m4; libxdp's configure refuses to build without pcap headers here),
# iproute2, iputils-ping and ethtool for the netns labs, valgrind for instruction counts,
# openvswitch-switch for the side-by-side benchmark (strato bench lab) and, with
# openvswitch-common's ovs-ofctl, the OpenFlow acceptance tests; tshark to check the OpenFlow
# channel's wire format; python3-venv/python3-pip for the os-ken and openstack venvs below;
# udhcpc (busybox) and iputils-arping: real clients for the ARP/ND/DHCP responder lab test.
pkgs=(pkg-config libelf-dev zlib1g-dev libpcap-dev clang llvm m4 iproute2 iputils-ping ethtool valgrind
      openvswitch-switch openvswitch-common tshark python3-venv python3-pip udhcpc iputils-arping)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "missing ${missing[*]} and not root (no sudo): install them and re-run"; exit 1; }
    sudo=sudo
  fi
  say "installing missing Debian packages: ${missing[*]}"
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "installed ${missing[*]}"
else
  say "Debian packages present: ${pkgs[*]}"
fi

# Python venvs for real peers, under /var/cache/strato (tests look for them there):
#   osken-venv      os-ken 3.x (`osken-manager`), the external OpenFlow controller of
#                   tests/tests/ryu.rs (labs/osken/simple_switch_13.py); os-ken 4 has no manager
#   openstack-venv  openstacksdk + python-openstackclient, the tenant API's real clients
# Built with Debian's python3 (the one python3-venv belongs to). A venv counts as present when
# its programs run; a broken one is rebuilt.
VENV_ROOT=/var/cache/strato
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
[ -n "$py" ] || { say "python3 not found: install python3"; exit 1; }
venv() { # NAME PROGRAM PIP-SPEC...: present when `NAME/bin/PROGRAM --version` runs
  local name=$1 prog=$2; shift 2
  local v="$VENV_ROOT/$name"
  if [ -x "$v/bin/python" ] && (cd / && "$v/bin/$prog" --version >/dev/null 2>&1); then
    say "venv $v present ($*)"
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ] && [ ! -w "$VENV_ROOT" ] && [ ! -w "$(dirname "$VENV_ROOT")" ]; then
    command -v sudo >/dev/null || { say "cannot write $VENV_ROOT and not root (no sudo): create it and re-run"; exit 1; }
    sudo=sudo
  fi
  say "creating venv $v with $*"
  $sudo rm -rf "$v"
  $sudo mkdir -p "$VENV_ROOT"
  $sudo "$py" -m venv "$v"
  $sudo "$v/bin/pip" install -q --disable-pip-version-check "$@" >/dev/null
  (cd / && "$v/bin/$prog" --version >/dev/null 2>&1) || { say "venv $v: \`$prog --version\` fails after installing $*"; exit 1; }
  say "created venv $v"
}
venv osken-venv osken-manager 'os-ken<4'
venv openstack-venv openstack openstacksdk python-openstackclient

command -v cargo >/dev/null || { say "cargo not found: install the Rust toolchain (rustup) first"; exit 1; }

# The test suite's gates need rustfmt and clippy (rustup components; a minimal profile lacks them).
for comp in rustfmt clippy; do
  sub=fmt; [ "$comp" = clippy ] && sub=clippy
  if cargo "$sub" --version >/dev/null 2>&1; then
    say "$comp present"
  elif command -v rustup >/dev/null; then
    say "installing the $comp component (rustup)"
    rustup component add "$comp" || { sleep 5; rustup component add "$comp"; }
    say "installed $comp"
  else
    say "$comp missing and no rustup to install it: install it and re-run"; exit 1
  fi
done

if [[ " $* " == *" --fuzz "* ]]; then
  if ! cargo fuzz --help >/dev/null 2>&1; then
    say "installing cargo-fuzz (crates.io)"
    cargo install --locked cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
    say "installed cargo-fuzz"
  else
    say "cargo-fuzz present"
  fi
fi
