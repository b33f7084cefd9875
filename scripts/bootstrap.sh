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
# openvswitch-switch for the side-by-side benchmark (strato bench lab).
pkgs=(pkg-config libelf-dev zlib1g-dev libpcap-dev clang llvm m4 iproute2 iputils-ping ethtool valgrind openvswitch-switch)
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
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "installed ${missing[*]}"
else
  say "Debian packages present: ${pkgs[*]}"
fi

command -v cargo >/dev/null || { say "cargo not found: install the Rust toolchain (rustup) first"; exit 1; }

if [[ " $* " == *" --fuzz "* ]]; then
  if ! cargo fuzz --help >/dev/null 2>&1; then
    say "installing cargo-fuzz (crates.io)"
    cargo install --locked cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
    say "installed cargo-fuzz"
  else
    say "cargo-fuzz present"
  fi
fi
