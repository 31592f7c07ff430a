#!/usr/bin/env bash
# tests/tui/console_metrics_test.sh — the console's Metrics pane (7, issue 9) on the metrics
# history every engine writes: first a database with no history (the pane says so, the header's
# p50/p95 are "-" and say their window, w cycles 1h -> 24h -> 7d -> 15m -> 1h, a bad :window is
# refused with the names to use); then real jobs (guest VMs that succeed and fail, in-process
# sleeps) run by an `aspen worker --until-idle` PROCESS THAT EXITS before the console starts, so
# everything shown comes from the stored history (a restart loses nothing). At 80x24 and at
# 160x48 the numbers on screen — finished, failed, p50/p95/p99 of the total and of every type /
# guest row, and the header's 5-minute p50/p95 — must equal `aspen metrics --json` for the same
# database; the cursor selects one guest and its charts show it alone; the tabs still fit at 80.
#
#   console_metrics_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_metrics_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-metrics.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

. "$(dirname "$0")/metrics_lib.sh"

# ---- a database with no history --------------------------------------------------------------
DB=$TMP/empty.db
launch empty 80 24 "$DB" --workers 0
wait_for "Aspen console"
keys 7
wait_for "Metrics, last 1h, every engine: all types"
wait_for "no job finished in the last 1h"
wait_for "p50 - p95 - \(5m\)"
wait_for "^> all +0 +0 +0 +- +- +-"
wait_for "w window"                       # the footer, from the keymap
keys w
wait_for "Metrics, last 24h"
wait_for "one column = 20m"               # 72 chart columns at 80: 1440 / 72
wait_for "no job finished in the last 24h"
keys w
wait_for "Metrics, last 7d"
wait_for "one column = 2h20m"               # 10080 / 72
keys w
wait_for "Metrics, last 15m"
keys w
wait_for "Metrics, last 1h"
keys :
type_text "window 5y"
keys Enter
wait_for_text "unknown window '5y' (windows: 15m, 1h, 24h, 7d)"
keys :
type_text "window 24h"
keys Enter
wait_for "Metrics, last 24h"
keys 1                                   # :window from another pane opens the Metrics pane
keys :
type_text "window 7d"
keys Enter
wait_for "Metrics, last 7d"
keys ?
wait_for "6 Queues, 7 Metrics"
keys Escape
quit_and_check empty

# ---- real jobs, run by a worker process that has exited --------------------------------------
DB=$TMP/m.db
run_history_jobs

# the row of test-fail in the table: its index in "guests" + 1 (all is row 0)
fail_row=$(m_json 1h '[g["guest"] for g in d["guests"]].index("test-fail") + 1')

launch small 80 24 "$DB" --workers 0
wait_for "Aspen console"
wait_for "6Queue 7Stats +filter: \(none: /\) \| sort id"   # seven tabs leave the filter and sort at 80
keys :
type_text "sort duration"
keys Enter
keys O
wait_for "7Stats +no filter \| sort duration \(rev\)"   # a longer sort: "filter:" goes, nothing is cut
keys 7
wait_for "Metrics, last 1h, every engine: all types"
wait_for "one column = 1m"
check_numbers
for ((i = 0; i < fail_row; i++)); do keys j; done
wait_for "every engine: vm_execute / test-fail"
wait_for "^> vm_execute / test-fail +1 +1 "
# one attempt, one failure, in one minute: both charts top out at 1/60 = 0.017 jobs/s (the one
# unit of the header and aspen metrics)
# (polled: the charts of the row passed on the way down may still be on screen for a moment)
for ((i = 0; i < 200; i++)); do
    [ "$(screen | grep -Ec '^ +0\.017 ')" = 2 ] && break
    sleep 0.05
done
[ "$(screen | grep -Ec '^ +0\.017 ')" = 2 ] || fail "the charts of test-fail alone do not both top out at 0.017 jobs/s"
screen | grep -q "JOBS/MIN" && fail "the table still says JOBS/MIN"
wait_for "FAILED +JOBS/S +p50"
wait_for "p50-p99: run time in the VM, not DUR"
# every screen line fits 80 columns (the charts do not wrap)
[ "$(screen | python3 -c 'import sys; print(sum(len(l.rstrip("\n")) > 80 for l in sys.stdin))')" = 0 ] ||
    fail "a line is wider than 80 columns"
keys w
wait_for "Metrics, last 24h, every engine: vm_execute / test-fail"
wait_for "^> vm_execute / test-fail +1 +1 "
keys g
wait_for "every engine: all types"
check_numbers
# enter on the in-process type: the jobs pane's filter line with type:sleep, its 5 jobs
sleep_row=$(m_json 1h '[g["type"] for g in d["guests"]].index("sleep") + 1')
for ((i = 0; i < sleep_row; i++)); do keys j; done
wait_for "^> sleep +5 +0 "
keys Enter
wait_for "type:sleep"
keys Enter
wait_for "7Stats +(filter: )?type:sleep \| sort"   # (the sort set above: duration, reversed)
wait_for " 1/5 *$"
quit_and_check small

# ---- a console whose own workers run jobs: the pane and the header follow what it finishes ----
launch live 80 24 "$DB" --workers 2
wait_for "Aspen console"
keys 7
check_numbers
"$ASPEN" submit echo-worker --payload '{"message":"live"}' --count 6 --db "$DB" >/dev/null ||
    fail "submit to the running console"
# the engine writes its rollups every 5 s, the pane reads every 2 s
wait_for "^> all +24 +1 " 30
wait_for "p50 [0-9.]+(us|ms) p95 [0-9.]+(us|ms) \(5m\)"
check_numbers
quit_and_check live

launch big 160 48 "$DB" --workers 0
wait_for "Aspen console"
wait_for " 7 Metrics "
keys 7
wait_for "Metrics, last 1h, every engine: all types \| w window 15m \[1h\] 24h  7d"
check_numbers
keys w
wait_for "Metrics, last 24h"
wait_for "one column = 10m"                # 152 chart columns at 160: ceil(1440 / 152)
check_numbers_24h=$(m_json 24h 'd["total"]["finished"]')
wait_for "^> all +$check_numbers_24h +1 "
quit_and_check big
echo "console_metrics_test: ok"
