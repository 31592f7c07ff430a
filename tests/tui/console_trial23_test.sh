#!/usr/bin/env bash
# tests/tui/console_trial23_test.sh — what a new user's trial of the console found (trial 23), at
# 80x24 against a real database (checked with `aspen jobs` / `aspen show`):
#   - after X cancels 20,000 waiting jobs the header's counts follow within the console's 1 s
#     refresh, and its jobs/s stays 0.0: cancellations are not finished runs;
#   - a submit of 100,000 jobs from the form (its Count field) shows its progress
#     ("submitting 40,000/100,000 jobs"), refreshed; esc stops the rest and says how many went in
#     (as many as the database has); q quits during one, and says after the screen how many went;
#   - a refused :sort word, or an unknown :command, longer than its quote is cut between
#     characters with the marker (a 300-byte one broke a UTF-8 character at 255 bytes);
#   - the job detail has the job's uniqueness rule, the same line as aspen show's.
#
#   console_trial23_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_trial23_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-trial23.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/t.db
# njobs FILTER: how many jobs aspen jobs lists for the filter
njobs() { "$ASPEN" jobs --filter "$1" --all --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# job 1: unique for 10 minutes; jobs 2..20001 wait; nothing runs (paused)
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --unique-key nightly-report --unique-for 10m \
    --db "$DB" --create >/dev/null || fail "submit 1"
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 20000 --queue bulk --create-queue \
    --db "$DB" >/dev/null || fail "submit 2..20001"
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause"

launch t 80 24 "$DB" --workers 1
wait_for "Aspen console"
wait_for " 1/20001 *$"

echo "== the detail's uniqueness rule, as aspen show says it"
want=$("$ASPEN" show 1 --db "$DB" | grep -E '^  unique ') || fail "aspen show 1 has no unique line"
keys G
keys Enter
wait_for "^ Job 1 +queued"
wait_for_text "$want"
keys Escape
wait_for " 20001/20001 *$"
keys g

echo "== X over 20,000 jobs: the counts follow, jobs/s stays 0.0"
keys /
type_text "queue:bulk"
keys Enter
wait_for "filter: queue:bulk"
wait_for " 1/20000 *$"
keys X
wait_for "Cancel 20000 unfinished jobs matching 'queue:bulk'" 30
keys y
wait_for "cancelled 20000 jobs matching 'queue:bulk'" 120
input_read
# within the console's normal refresh (1 s ticks): 3 s for a loaded machine
for ((i = 0; i < 60; i++)); do
    screen | grep -Eq "^ queued 1 +sched(uled)? 0 +running 0 +succeeded 0 +failed 0 +cancelled 20000" && break
    sleep 0.05
done
screen | grep -Eq "^ queued 1 +sched(uled)? 0 +running 0 +succeeded 0 +failed 0 +cancelled 20000" ||
    fail "the header's counts did not follow the cancel within 3 s"
[ "$(njobs 'state:cancelled')" = 20000 ] || fail "the database has $(njobs 'state:cancelled') cancelled jobs"
# the next ticks see the counts move by 20,000 cancellations: no throughput
sleep 2.5
screen | grep -Eq "^ jobs/s \(([0-9]+s|1m)\) 0\.0 " ||
    fail "jobs/s counts the cancellations: $(screen | sed -n 3p)"

echo "== :sort with a long word: cut with the marker"
keys :
type_text "sort $(printf 'é%.0s' $(seq 1 60))"
keys Enter
wait_for "unknown sort column '(é){39}…' \(columns"
# an unknown command of 300 bytes: its message was cut at 255 bytes inside a character
keys :
type_text "$(printf 'é%.0s' $(seq 1 150))"
keys Enter
wait_for "unknown command ':(é){39}…' \(try :help\)"

echo "== a submit of 100,000 jobs from the form: progress, esc stops the rest"
before=$(njobs "")
keys Escape # the old message goes
keys s
wait_for "Submit a job"
keys Tab Tab Tab Tab Tab # to Count
type_text "100000"
keys C-s
wait_for "submitting [0-9,]+/100,000 jobs \(esc stops the rest" 60
first=$(screen | grep -oE "submitting [0-9,]+/" | head -1)
# refreshed: the figure moves on
for ((i = 0; i < 600; i++)); do
    now=$(screen | grep -oE "submitting [0-9,]+/" | head -1)
    [ -n "$now" ] && [ "$now" != "$first" ] && break
    sleep 0.05
done
[ -n "$now" ] && [ "$now" != "$first" ] || fail "the progress stayed at '$first'"
# keys work meanwhile: the help opens and closes
keys "?"
wait_for "Aspen console - keys" 10
keys Escape
wait_gone "Aspen console - keys" 10
keys Escape
wait_for "submit stopped \(esc\): [0-9]+ of the 100000 jobs submitted" 60
n=$(screen | tr -d '\n' | grep -oE "submit stopped \(esc\): [0-9]+ of" | grep -oE "[0-9]+")
[ "$n" -gt 0 ] && [ "$n" -lt 100000 ] || fail "esc stopped the submit at $n of 100000"
got=$(( $(njobs "") - before ))
[ "$got" = "$n" ] || fail "the console said $n were submitted, the database has $got"
# nothing more comes after the stop
sleep 1.5
[ $(( $(njobs "") - before )) = "$n" ] || fail "jobs were submitted after esc stopped the submit"
quit_and_check t

echo "== q during a submit of 100,000: quits, and says how many went in"
before=$(njobs "")
launch q 80 24 "$DB" --workers 1
wait_for "Aspen console"
keys s
wait_for "Submit a job"
keys Tab Tab Tab Tab Tab
type_text "100000"
keys C-s
wait_for "submitting [0-9,]+/100,000 jobs" 60
quit_and_check q
note=$(grep -oE "submit stopped at quit: [0-9]+ of 100000 jobs submitted" "$TMP/q.err") ||
    note=
got=$(( $(njobs "") - before ))
echo "quit note: ${note:-(none: the submit had finished)}"
if [ -n "$note" ]; then
    n=$(echo "$note" | grep -oE "quit: [0-9]+" | grep -oE "[0-9]+")
    [ "$got" = "$n" ] || fail "the quit said $n were submitted, the database has $got"
else
    # finished before q was read: then every job went in and nothing was said
    [ "$got" = 100000 ] || { cat "$TMP/q.err" >&2; fail "no quit note, and $got of 100000 submitted"; }
fi
echo "PASS: console_trial23_test"
