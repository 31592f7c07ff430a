#!/usr/bin/env bash
# tests/tui/console_trial11_test.sh — what a new user's trial of the console found (trial 11), at
# 80x24 against a real database (checked with `aspen queues --json` where the database decides):
#   - the job detail's Spec block names the job's queue, as aspen show does;
#   - under the global pause (aspen pause) the Queues pane says every queue is held by it, and how
#     to end it, and each row's PAUSED reads "all", apart from a queue's own pause ("paused"),
#     which stays after :resume;
#   - text cut to fit ends in a marker ("…" on this UTF-8 terminal): the ERROR column of a job
#     whose error is wider than the column; a status message longer than its rows ends in the
#     marker with where the whole of it is, and the Logs pane (3) has it whole as a [console] line;
#   - the Schedules pane cuts a long name or expression with the marker (bare, "0,5,10,15,20,2"
#     read as another valid expression: trial 22);
#   - :sort queue (refused once: no store index serves it) sorts every job by its queue's name, a
#     before default, and O turns it;
#   - the submit form's Guest field answers a typo ("echo-wrkr") with "did you mean 'echo-worker'?".
#
#   console_trial11_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_trial11_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-trial11.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/t.db
# job 1 fails with an error wider than the 80-column ERROR column; jobs 2-3 wait in queue a
"$ASPEN" submit --type sleep --payload '{"fail": true}' --max-attempts 1 --db "$DB" --create >/dev/null ||
    fail "submit 1"
"$ASPEN" worker --until-idle --db "$DB" >/dev/null 2>&1 || fail "run job 1"
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 2 --queue a --create-queue --db "$DB" >/dev/null ||
    fail "submit 2-3 to a"
# a schedule whose expression and name are wider than the Schedules pane's 80-column cells
"$ASPEN" cron add weekday-mornings-every-five-minutes '0,5,10,15,20,25 9-17 * * MON-FRI' --type echo \
    --paused --db "$DB" >/dev/null || fail "cron add"
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause" # nothing runs: the jobs stay queued
q_json() { # q_json QUEUE FIELD: the field of one queue from aspen queues --json
    "$ASPEN" queues --json --db "$DB" | python3 -c '
import json, sys
for q in json.load(sys.stdin):
    if q["name"] == sys.argv[1]:
        print(json.dumps(q[sys.argv[2]]))' "$1" "$2"
}

launch t 80 24 "$DB" --workers 1
wait_for "Aspen console"
wait_for " 1/3 *$"

echo "== the detail's Spec names the queue"
keys Enter # job 3, the newest, in queue a
wait_for "^ Job 3 +queued"
wait_for "^ +queue +a *$"
keys Escape
keys G
keys Enter # job 1, in no named queue
wait_for "^ Job 1 +failed"
wait_for "^ +queue +default *$"
keys Escape

echo "== a cut error ends in the marker"
# "failed on purpose (payload "fail": true)" is wider than the ERROR column at 80: cut, marked
wait_for "^ +1 type:sleep +failed .*failed on purpo…$"

echo "== the Queues pane under the global pause"
keys 6
wait_for "^ Queues: 2, all paused by the global pause \(:resume or aspen resume\)"
wait_for "^ +default +0 +0 +0 +0 +- +- +all "
wait_for "^ +a +2 +0 +0 +0 +- +- +all "
keys j
keys p # a's own pause, under the global one
wait_for "queue a paused"
wait_for "^ +a +2 +0 +0 +0 +- +- +paused "
[ "$(q_json a paused)" = true ] || fail "a is not paused in the database"
# its resume under the global pause says the global one still holds it, and pausing it again
keys p
wait_for "queue a resumed, but all queues are still paused \(:resume\)"
keys p
wait_for "queue a paused"
wait_for "^ +a +2 +0 +0 +0 +- +- +paused "
keys :
type_text "resume"
keys Enter
# the global switch says it is every queue's, and that a queue's own pause stays
wait_for "all queues resumed"
# the global pause gone: the usual title, default runs, a stays paused on its own
wait_for "^ Queues on this database: 2 \(1 paused, 0 limited\)"
wait_for "^ +default +0 +0 +0 +0 +- +- +- "
wait_for "^ +a +2 +0 +0 +0 +- +- +paused "
[ "$(q_json a paused)" = true ] || fail ":resume resumed queue a's own pause"

echo "== the Schedules pane's cut cells end in the marker (trial 22)"
keys 5
wait_for "^ +weekday-morni… +0,5,10,15,20,… +paused "
# never the bare prefix that reads as another valid expression (minute 2)
screen | grep -q "0,5,10,15,20,2 " && fail "the expression was cut without a marker"

echo "== :sort queue sorts by the queue's name"
keys 1
keys :
type_text "sort queue"
keys Enter
wait_for "sorted by queue over every matching job"
first_rows() { screen | awk '$1 ~ /^[0-9]+$/ && $2 ~ /^type:/ { printf "%s ", $1 }'; }
for ((i = 0; i < 100; i++)); do [ "$(first_rows)" = "2 3 1 " ] && break; sleep 0.1; done
[ "$(first_rows)" = "2 3 1 " ] || fail ":sort queue shows jobs '$(first_rows)', not 2 3 (queue a) then 1 (default)"
keys O
for ((i = 0; i < 100; i++)); do [ "$(first_rows)" = "1 3 2 " ] && break; sleep 0.1; done
[ "$(first_rows)" = "1 3 2 " ] || fail ":sort queue reversed shows jobs '$(first_rows)', not 1 3 2"

echo "== the submit form's Guest field: a typo gets a did-you-mean"
keys Escape
keys s
wait_for "Submit a job"
type_text "echo-wrkr"
for ((i = 0; i < 300; i++)); do # the message wraps inside the box: read it joined
    form_joined | grep -Fq "'echo-wrkr' (did you mean 'echo-worker'?)" && break
    sleep 0.05
done
form_joined | grep -Fq "'echo-wrkr' (did you mean 'echo-worker'?)" ||
    fail "no did-you-mean for the guest typo echo-wrkr"
keys Escape
wait_gone "Submit a job"

echo "== a status message too long for its rows: marked, and whole in the Logs pane"
long=$TMP/$(printf 'd%.0s' $(seq 1 150))/$(printf 'e%.0s' $(seq 1 150))/$(printf 'f%.0s' $(seq 1 150))/$(printf 'g%.0s' $(seq 1 150))/end-of-the-path/out.jsonl
keys 1
keys :
type_text "export $long"
keys Enter
wait_for "… *\(all of it: 3, Logs\) *$"
keys 3
keys w # wrap: the whole line on screen
wait_for "^\[console\] "
screen | tr -d '\n' | grep -q "end-of-the-path/out.jsonl" || fail "the whole message is not in the Logs pane"
quit_and_check t
echo "PASS: console_trial11_test"
