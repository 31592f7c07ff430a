#!/usr/bin/env bash
# scripts/setup.sh — make sure the Debian packages Aspen builds and tests with are installed.
# As root, installs what is missing with apt-get; otherwise prints the apt-get line to run and fails.
# Also checks /dev/kvm, which every VM needs: without it the tests fail instead of skipping.
set -euo pipefail

PKGS=(build-essential cmake pkg-config libuv1-dev libjansson-dev libsqlite3-dev libncurses-dev
      libcmocka-dev tmux sqlite3 musl-tools
      zlib1g-dev # guests/musl: minigzip links Debian's libz.a (musl-gcc -static)
      gdb # tests/vm/test_gdb: aspen run --gdb and --core driven by gdb -batch
      git # --source REPO#REV: guests built from a commit (engine/gitsrc.c, tests/engine/test_build_git)
      postgresql libpq-dev # tests/store: a private PostgreSQL server (pg_server.sh) and libpq
      tzdata # schedules: IANA time zones (/usr/share/zoneinfo), read by store/tz.c
      clang-14 libclang-rt-14-dev) # make fuzz: clang and its libFuzzer/sanitizer runtimes

# Rust guests (guests/rust/) need rustc and cargo, 1.63 or newer. Debian's are installed only when
# no working cargo is on the PATH: a newer toolchain there (e.g. rustup's ~/.cargo/bin) is used as
# it is. "Working" means it runs: a rustup proxy with no default toolchain (another HOME, say) is on
# the PATH but fails, and the build then falls back to Debian's /usr/bin/cargo (guests/CMakeLists.txt).
if ! cargo --version >/dev/null 2>&1 || ! rustc --version >/dev/null 2>&1; then
  PKGS+=(rustc cargo)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]} with apt-get (minutes; its output is hidden unless a first try fails)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}"; }
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [[ "${1:-}" == "--need-kvm" ]]; then
  if [[ ! -e /dev/kvm ]]; then
    echo "setup: KVM not available: /dev/kvm does not exist." >&2
    echo "setup: load the modules (sudo modprobe kvm; sudo modprobe kvm_intel or kvm_amd) and enable virtualization in the BIOS." >&2
    exit 1
  fi
  if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
    echo "setup: KVM not available: no permission to open /dev/kvm." >&2
    echo "setup: add yourself to the kvm group (sudo usermod -aG kvm \$USER) and log in again." >&2
    exit 1
  fi
fi
