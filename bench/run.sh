#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] — Aspen's benchmarks beside the KVM floor of this very machine.
#
# Runs ../shared/bench/kvm_floor.c (the raw cost of KVM here: cold VM, warm re-entry, one exit,
# guest compute) before and after `aspen bench vm --json`, averages the two floor runs to damp
# drift, and prints one JSON line of ratios (ours / floor). Then `aspen bench engine --json` and the
# console benchmark (1,000,000 jobs in the store). Nothing here passes or fails on time: it reports.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[[ $build = /* ]] || build=$root/$build
floor_src=${ASPEN_FLOOR_SRC:-$root/../shared/bench/kvm_floor.c}
aspen=$build/aspen

if [[ ! -f $floor_src ]]; then
  echo "bench: the KVM floor source is not at $floor_src; set ASPEN_FLOOR_SRC to kvm_floor.c" >&2
  exit 1
fi
cc -O2 -o "$build/kvm_floor" "$floor_src"

# json_num JSON KEY -> the number after "KEY":
json_num() { sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p" <<<"$1"; }

echo "== KVM floor (1/2)"; f1=$("$build/kvm_floor" 300 | tail -1); echo "$f1"
echo "== aspen bench vm";  vm=$("$aspen" bench vm --json | tail -1); echo "$vm"
echo "== KVM floor (2/2)"; f2=$("$build/kvm_floor" 300 | tail -1); echo "$f2"

avg() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
floor_cold=$(avg "$(json_num "$f1" cold_p50_us)" "$(json_num "$f2" cold_p50_us)")
floor_warm=$(avg "$(json_num "$f1" warm_p50_us)" "$(json_num "$f2" warm_p50_us)")
floor_exit=$(avg "$(json_num "$f1" exit_us)" "$(json_num "$f2" exit_us)")
floor_gl=$(avg "$(json_num "$f1" guest_loop_ms)" "$(json_num "$f2" guest_loop_ms)")
floor_nl=$(avg "$(json_num "$f1" native_loop_ms)" "$(json_num "$f2" native_loop_ms)")

echo "== ratios (aspen / floor; compute: guest / native for each)"
printf '{"floor_cold_p50_us": %s, "floor_warm_p50_us": %s, "floor_exit_us": %s, ' \
  "$floor_cold" "$floor_warm" "$floor_exit"
printf '"cold_ratio": %s, "warm_ratio": %s, "hostcall_ratio": %s, ' \
  "$(ratio "$(json_num "$vm" cold_p50_us)" "$floor_cold")" \
  "$(ratio "$(json_num "$vm" warm_p50_us)" "$floor_warm")" \
  "$(ratio "$(json_num "$vm" hostcall_p50_us)" "$floor_exit")"
printf '"aspen_compute_ratio": %s, "floor_compute_ratio": %s, "idle_vm_host_bytes": %s, "guest_memory_bytes": %s}\n' \
  "$(json_num "$vm" compute_ratio)" "$(ratio "$floor_gl" "$floor_nl")" \
  "$(json_num "$vm" idle_vm_host_bytes)" "$(json_num "$vm" guest_memory_bytes)"

if "$aspen" bench engine --help >/dev/null 2>&1; then
  echo "== aspen bench engine"
  db=$(mktemp -d)/bench.db
  "$aspen" bench engine --json --db "$db" | tail -1
  rm -rf "$(dirname "$db")"
fi

if [[ -x $build/aspen-bench-console ]]; then
  echo "== console (1,000,000 jobs in the store; redraw and key-to-screen times)"
  "$build/aspen-bench-console" --aspen "$aspen"
fi
