#!/usr/bin/env bash
# fuzz/run.sh BUILD_DIR — runs every libFuzzer target in BUILD_DIR (built from fuzz/) for
# FUZZ_SECONDS each (default 60), starting from the committed seeds in fuzz/corpus/TARGET and the
# corpus grown by earlier runs in BUILD_DIR/corpus/TARGET. Fails if any target reports a finding
# (crash, ASan/UBSan report, leak, timeout, out-of-memory): the input that caused it is left in
# BUILD_DIR/findings/TARGET/ and the log in BUILD_DIR/logs/TARGET.log, with the command that
# reproduces it. FUZZ_TARGETS="json filter" runs a subset. Prints executions per second per target.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="$(cd "${1:?usage: fuzz/run.sh BUILD_DIR}" && pwd)"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS=(${FUZZ_TARGETS:-elf hostcall json filter gdb cron tape})

# Per-target input size limits: ELF seeds are real binaries; the others are small texts/programs.
declare -A MAXLEN=([elf]=65536 [hostcall]=4096 [json]=8192 [filter]=1024 [gdb]=4096 [cron]=512 [tape]=4096)

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  bin="$B/fuzz_$t"
  [[ -x "$bin" ]] || { echo "fuzz: $bin is missing (make fuzz builds it)" >&2; exit 1; }
  work="$B/corpus/$t" art="$B/findings/$t" log="$B/logs/$t.log"
  mkdir -p "$work" "$art" "$(dirname "$log")"
  echo "fuzz: $t for ${SECONDS_EACH}s (log: $log)"
  rc=0
  # -timeout: one input taking 10 s is a finding (a hang); -rss_limit_mb: so is growing past 2 GiB.
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len="${MAXLEN[$t]}" \
    -print_final_stats=1 -artifact_prefix="$art/" "$work" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  summary+=("$(printf '%-9s %9s execs  %6s exec/s  %s' "$t" "${execs:-?}" "${rate:-?}" "$cov")")
  if ((rc != 0)); then
    failed+=("$t")
    echo "fuzz: FINDING in $t (exit $rc):" >&2
    grep -E 'FINDING|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY|Test unit written' "$log" | head -8 >&2 || true
    for f in "$art"/*; do
      [[ -e "$f" ]] && echo "fuzz: reproduce with: $bin $f" >&2
    done
  fi
done
echo "fuzz: results (${SECONDS_EACH}s each):"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: findings in: ${failed[*]} (see $B/findings/ and $B/logs/)" >&2
  exit 1
fi
echo "fuzz: no findings"
