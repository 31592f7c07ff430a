#!/usr/bin/env bash
# tests/tui/console_snooze_test.sh — snooze in the console (issue 10), driven through tmux against
# the real build: z on a queued job asks the delay in the prompt line with 10m filled in, Enter
# takes it (the job turns scheduled, the store has run_at about 10 minutes on); an edited answer
# (1h) and :snooze DURATION work too, on a scheduled job as well; n undoes it; a finished job, a
# bare number, '-1s', '1e9d' and 0 are refused in the status line, the job untouched; z in the
# detail view. The queue is paused so the jobs stay waiting. Every check polls `tmux capture-pane`
# until it holds or a deadline passes. Needs /dev/kvm and tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_snooze_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-snooze.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/snooze.db
"$ASPEN" submit --type echo --db "$DB" --create >/dev/null || fail "submit 1"
"$ASPEN" worker --until-idle --quiet --db "$DB" || fail "worker" # job 1 succeeded
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause"
"$ASPEN" submit --type echo --db "$DB" >/dev/null || fail "submit 2"                 # queued
"$ASPEN" submit --type echo --delay 3600000 --db "$DB" >/dev/null || fail "submit 3" # scheduled
"$ASPEN" submit --type echo --db "$DB" >/dev/null || fail "submit 4"                 # queued
field_of() { "$ASPEN" show "$1" --json --db "$DB" | grep -Eo "\"$2\": \"?[a-z0-9]+" | grep -Eo '[a-z0-9]+$'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# run_at of job $1 is $2 ms (+- 5 s) from now
run_at_in() {
    local at d
    at=$(field_of "$1" run_at_ms)
    d=$((at - $(now_ms) - $2))
    [ "${d#-}" -le 5000 ] || fail "job $1 runs at $at, not $2 ms from now (off by $d ms)"
}

launch snooze 110 30 "$DB" --workers 1
wait_for "Aspen console \| PAUSED" 20
wait_for "^ +4 echo +- +queued"

echo "== z asks, 10m filled in; Enter takes it"
keys g # job 4, the newest first
keys z
wait_for ":snooze 10m"
keys Enter
wait_for "job 4 snoozed by 10m"
wait_for "^ +4 echo +- +scheduled"
[ "$(field_of 4 state)" = scheduled ] || fail "job 4 is $(field_of 4 state) in the store"
run_at_in 4 600000
[ "$(field_of 4 attempts)" = 0 ] || fail "snooze counted an attempt"

echo "== the answer edited: 1h, on a job scheduled an hour ahead"
keys j # job 3
wait_for "^ +3 echo +- +scheduled"
keys z
wait_for ":snooze 10m"
keys BSpace BSpace BSpace
type_text "1h"
keys Enter
wait_for "job 3 snoozed by 1h"
run_at_in 3 7200000 # put off from its own time, an hour ahead: never brought earlier

echo "== refusals: a bare number, -1s, 1e9d, 0, past a year, a finished job"
keys j # job 2, queued
for bad in "10" "-1s" "1e9d" "0s" "400d"; do
    keys :
    type_text "snooze $bad"
    keys Enter
    case $bad in
    10) wait_for_text ":snooze '10' has no unit: write 10s, 10m, 10h or 10d" ;;
    -1s) wait_for_text ":snooze: '-1s' is not a duration" ;;
    1e9d) wait_for_text ":snooze: '1e9d' is not a duration" ;;
    *) wait_for_text ":snooze '$bad' is out of range: more than 0, at most 365d" ;;
    esac
done
[ "$(field_of 2 state)" = queued ] || fail "job 2 changed: $(field_of 2 state)"
keys j # job 1, succeeded
keys :
type_text "snooze 5m"
keys Enter
wait_for "snooze: job 1 is succeeded: it has finished, so there is nothing to snooze"

echo "== n undoes it; z in the detail view"
keys g # job 4
keys n
wait_for "job 4 queued: it runs now"
wait_for "^ +4 echo +- +queued"
keys Enter # the detail of job 4
wait_for "state +queued|queued" 10
keys z
wait_for ":snooze 10m"
keys BSpace BSpace BSpace
type_text "90s"
keys Enter
wait_for "job 4 snoozed by 1m30s"
[ "$(field_of 4 state)" = scheduled ] || fail "job 4 is $(field_of 4 state) after z in the detail"
run_at_in 4 90000
keys Escape
quit_and_check snooze
echo "PASS"
