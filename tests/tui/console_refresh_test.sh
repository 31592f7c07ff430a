#!/usr/bin/env bash
# tests/tui/console_refresh_test.sh — the jobs table's refresh near the bottom of a long list
# while the jobs there run (resid2): under the default sort (by id) a job's own state change does
# not move it, so the refresh reads the window by key around the cursor's job, never again by
# position (an offset that steps every row above the cursor: 0.24-0.9 s at 200,000 jobs while
# the engine ran, docs/BENCHMARKS.md). The console's own stats (ASPEN_TUI_STATS) count the reads
# of each kind; the counter ("N/M") stays on the cursor's job.
# 100,010 jobs, so that the cursor is past the depth where a change of the counts re-reads by
# offset anyway (TUI_REPLACE_MAX): the 10 oldest, at the bottom of the newest-first list, queued;
# the others scheduled an hour ahead. The console runs no workers; an `aspen worker` started once
# the cursor sits 3 rows above the end runs the 10, and the console sees their commits.
# Driven through tmux against the real build. Needs /dev/kvm and tmux: fails, never skips.
set -u

ASPEN=${1:?usage: console_refresh_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-refresh.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/refresh.db
"$ASPEN" submit --type echo --count 10 --db "$DB" --create >/dev/null || fail "submit"
"$ASPEN" submit --type echo --count 100000 --delay 1h --db "$DB" >/dev/null || fail "submit 100000"
TOTAL=100010

export ASPEN_TUI_STATS=$TMP/stats.json
launch refresh 120 30 "$DB" --workers 0
wait_for "Aspen console" 30
keys G
wait_for "$TOTAL/$TOTAL" 30
for i in 1 2 3; do keys k; done
wait_for "$((TOTAL - 3))/$TOTAL" 30
# the 10 queued jobs, the cursor's among them, run by another process while the cursor stays
# (not --until-idle: the scheduled jobs keep it waiting for them)
"$ASPEN" worker --quiet --workers 1 --db "$DB" >"$TMP/worker.out" 2>&1 &
WORKER=$!
trap 'kill "$WORKER" 2>/dev/null; kill_servers; rm -rf "$TMP"' EXIT
wait_for "queued 0 " 30
wait_for "succeeded 10 " 30
kill "$WORKER"
wait "$WORKER" 2>/dev/null
sleep 2 # the refreshes after the last commit
screen | grep -q "$((TOTAL - 3))/$TOTAL" || fail "the counter left the cursor's row: $(screen | head -6)"
screen | grep -Eq "^ +4 echo .* succeeded" || fail "job 4 not shown succeeded: $(screen)"
quit_and_check refresh
[ -s "$ASPEN_TUI_STATS" ] || fail "the console wrote no stats to $ASPEN_TUI_STATS"
pos=$(grep '"refresh_window_by_position"' "$ASPEN_TUI_STATS" | sed 's/.*"n": \([0-9]*\).*/\1/')
key=$(grep '"refresh_window_by_key"' "$ASPEN_TUI_STATS" | sed 's/.*"n": \([0-9]*\).*/\1/')
[ -n "$key" ] && [ "$key" -gt 0 ] || fail "no window read by key: $(cat "$ASPEN_TUI_STATS")"
[ "$pos" = 0 ] || fail "$pos window reads by position while the jobs at the cursor ran, under the sort by id: $(cat "$ASPEN_TUI_STATS")"
echo "PASS ($key reads by key, 0 by position)"
