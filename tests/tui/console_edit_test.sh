#!/usr/bin/env bash
# tests/tui/console_edit_test.sh — editing waiting jobs in the console, driven through tmux against
# the real build (issue 9):
#   - + and - change the selected queued job's priority by one (the PRI column and the message say
#     so), :priority N sets it, the store has it (aspen show), and a finished job is refused with
#     the store's reason;
#   - n runs a scheduled job now: it turns queued (and, the queue resumed, runs); n on it again
#     says it is already queued;
#   - the CLI: aspen priority ID N (a negative N too), aspen run-now ID, and their refusals.
# The queue is paused while jobs must stay waiting. Every check polls `tmux capture-pane` until it
# holds or a deadline passes. Needs /dev/kvm and tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_edit_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-edit.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/edit.db
"$ASPEN" submit --type echo --db "$DB" --create >/dev/null || fail "submit 1"
"$ASPEN" worker --until-idle --quiet --db "$DB" || fail "worker" # job 1 succeeded
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause"
"$ASPEN" submit --type echo --db "$DB" >/dev/null || fail "submit 2"              # job 2, queued
"$ASPEN" submit --type echo --delay 3600000 --db "$DB" >/dev/null || fail "submit 3"   # job 3, scheduled
"$ASPEN" submit --type echo --db "$DB" >/dev/null || fail "submit 4"              # job 4, queued
prio_of() { "$ASPEN" show "$1" --json --db "$DB" | grep -Eo '"priority": -?[0-9]+' | grep -Eo -- '-?[0-9]+$'; }
state_of() { "$ASPEN" show "$1" --json --db "$DB" | grep -Eo '"state": "[a-z]+"' | cut -d'"' -f4; }

echo "== the CLI"
out=$("$ASPEN" priority 4 -7 --db "$DB") || fail "aspen priority 4 -7: $out"
grep -q "job 4: priority -7" <<<"$out" || fail "aspen priority: $out"
[ "$(prio_of 4)" = -7 ] || fail "job 4's priority is $(prio_of 4), not -7"
out=$("$ASPEN" priority 1 3 --db "$DB" 2>&1) && fail "a finished job's priority changed: $out"
grep -q "job 1 is succeeded: only a waiting job's priority can change" <<<"$out" || fail "refusal: $out"
out=$("$ASPEN" priority 4 2000000 --db "$DB" 2>&1) && fail "an out-of-range priority was taken"
grep -q "from -1000000 to 1000000" <<<"$out" || fail "range message: $out"
out=$("$ASPEN" run-now 2 --db "$DB" 2>&1) && fail "run-now of a queued job: $out"
grep -q "job 2 is already queued" <<<"$out" || fail "run-now refusal: $out"
"$ASPEN" priority 4 0 --db "$DB" >/dev/null || fail "priority back to 0"

echo "== the console: + - and :priority on a queued job"
launch edit 110 30 "$DB" --workers 1
wait_for "Aspen console \| PAUSED" 20
wait_for "^ +4 echo +- +queued +0/3 +0 "
keys g j j # job 2 (rows: 4, 3, 2, 1)
keys +
wait_for "job 2: priority 1"
wait_for "^ +2 echo +- +queued +0/3 +1 "
keys - -
wait_for "job 2: priority -1"
wait_for "^ +2 echo +- +queued +0/3 +-1 "
keys :
type_text "priority 42"
keys Enter
wait_for "job 2: priority 42"
wait_for "^ +2 echo +- +queued +0/3 +42 "
[ "$(prio_of 2)" = 42 ] || fail "the store has priority $(prio_of 2) for job 2"
keys j # job 1, succeeded
keys +
wait_for "priority: job 1 is succeeded: only a waiting job's priority can change"
keys :
type_text "priority lots"
keys Enter
wait_for ":priority wants a whole number from -1000000 to 1000000, not 'lots'"

echo "== n runs a scheduled job now"
keys g j # job 3
wait_for "^ +3 echo +- +scheduled"
keys n
wait_for "job 3 queued: it runs now"
wait_for "^ +3 echo +- +queued"
[ "$(state_of 3)" = queued ] || fail "job 3 is $(state_of 3) in the store"
keys n
wait_for "run now: job 3 is already queued"
keys p # resume: the edited jobs run, job 2 (priority 42) first
wait_for "^ +3 echo +- +succeeded" 30
wait_for "^ +2 echo +- +succeeded" 30
quit_and_check edit
echo "PASS"
