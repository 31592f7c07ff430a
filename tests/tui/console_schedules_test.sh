#!/usr/bin/env bash
# tests/tui/console_schedules_test.sh — the console's Schedules pane (5, issue 10): schedules added
# with `aspen cron add` are listed with their expression, zone, state, next run and last run; the
# console's own engine holds the scheduler lease and enqueues an @every 1s schedule, whose last
# job and its outcome show up; n runs the selected schedule now (a manual key in `aspen cron
# runs`); e disables and enables it (the header's paused count and `aspen cron list` agree);
# enter opens the last job's detail; n again while alpha's job waits names that job and makes none;
# a hostile zone text written behind Aspen's back is shown
# escaped, and the broken schedule says why instead of a next run.
#
#   console_schedules_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_schedules_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-schedules.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/s.db
"$ASPEN" cron add alpha '*/5 * * * *' --type echo --tz Europe/Berlin --paused --db "$DB" --create >/dev/null ||
    fail "cron add alpha"
"$ASPEN" cron add tick '@every 1s' --type echo --payload '{"t":1}' --db "$DB" >/dev/null ||
    fail "cron add tick"
"$ASPEN" cron add zz '@daily' --type echo --db "$DB" >/dev/null || fail "cron add zz"
python3 - "$DB" <<'PY' || fail "breaking zz's zone"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE schedules SET tz = ?, next_run = 1 WHERE name = 'zz'", ("Evil/\x1b]0;owned\x07Zone",))
db.commit()
PY
launch sch 160 30 "$DB" --workers 1
wait_for "Aspen console"
keys 5
wait_for "Schedules: 3 \(1 paused\)"
wait_for "enqueued by engine [0-9]+ \(this console\)" 10
screen | grep -Eq 'alpha +\*/5 \* \* \* \* +Europe/Berlin +paused' || fail "alpha's row"
wait_for "tick +@every 1s +UTC +active .*#[0-9]+ succeeded" 20
# zz: its zone can no longer load: broken, no next run, escaped on screen
wait_for "zz +@daily .*broken +none" 10
screen | grep -F "zz " | grep -Fq 'Evil/\x1b]0;owned' || fail "the hostile zone is not shown escaped"
T capture-pane -p -e -t c | grep -qa $'\x1b\]0;owned' && fail "a raw OSC from a zone reached the terminal"

# the cursor starts on alpha (names in order): run it now although it is paused
keys n
wait_for "schedule alpha: job [0-9]+ enqueued now" 10
JOB=$(screen | grep -Eo "schedule alpha: job [0-9]+" | grep -Eo "[0-9]+$")
"$ASPEN" cron runs alpha --json --db "$DB" | grep -q "\"manual\": true" || fail "no manual key for alpha"
wait_for "alpha .*#$JOB " 10
# enable it, then disable it again
keys e
wait_for "schedule alpha enabled" 10
wait_for "Schedules: 3 \(0 paused\)" 10
"$ASPEN" cron list --json --db "$DB" | python3 -c '
import json, sys
s = {x["name"]: x for x in json.load(sys.stdin)}
assert not s["alpha"]["paused"], s["alpha"]' || fail "alpha is not active in aspen cron list"
keys e
wait_for "Schedules: 3 \(1 paused\)" 10
# down to tick, enter: its last job's detail
keys j
keys Enter
wait_for "job [0-9]+" 10
wait_for "type +echo" 10
keys Escape
wait_for "Schedules: 3" 5
# the console's engine keeps the lease and enqueues tick again: the steps above can take less than
# the schedule's second on a quiet machine, so wait for a second occurrence rather than assume one
runs_of_tick() {
    "$ASPEN" cron runs tick --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
for ((i = 0; i < 100; i++)); do
    RUNS=$(runs_of_tick)
    [ "$RUNS" -ge 2 ] && break
    sleep 0.1
done
[ "$RUNS" -ge 2 ] || fail "tick enqueued only $RUNS jobs in 10 s while the console ran"
# n twice while nothing runs jobs (the global pause): the second press makes no job, it names the
# first, which has not finished (issue 10: two presses were two jobs)
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause"
keys k # back up to alpha
keys n
wait_for "schedule alpha: job [0-9]+ enqueued now" 10
JOB2=$(screen | grep -Eo "schedule alpha: job [0-9]+ enqueued" | grep -Eo "[0-9]+")
[ "$JOB2" != "$JOB" ] || fail "run now gave alpha's first job again"
keys n
wait_for "schedule alpha: its job $JOB2 \(queued, enqueued [^)]*\) has not finished; not running" 10
[ "$("$ASPEN" cron runs alpha --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
    fail "the second n enqueued another job of alpha"
quit_and_check sch
echo "PASS: console_schedules_test"
