#!/usr/bin/env bash
# tests/tui/console_queues_test.sh — the console's Queues pane (6): every named queue with its
# figures (queued, limit, rate, paused) read from the store; `p` pauses and resumes the queue under
# the cursor (checked with `aspen queues --json`, i.e. in the database, so every worker sees it),
# while `p` elsewhere stays the global pause; `l` edits its limit on the command line (a bad
# number is refused with the rule), and enter opens the jobs pane's filter line with queue:NAME;
# the submit form's Queue field puts the job in that queue and refuses a bad name.
#
#   console_queues_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_queues_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-queues.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/q.db
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 3 --queue emails --db "$DB" --create >/dev/null ||
    fail "submit to emails"
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --db "$DB" >/dev/null || fail "submit"
"$ASPEN" queue set emails --limit 2 --rate 10/s --db "$DB" >/dev/null || fail "queue set"
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause" # nothing runs: the figures stay put

q_json() { # q_json QUEUE FIELD: the field of one queue from aspen queues --json
    "$ASPEN" queues --json --db "$DB" | python3 -c '
import json, sys
for q in json.load(sys.stdin):
    if q["name"] == sys.argv[1]:
        print(json.dumps(q[sys.argv[2]]))' "$1" "$2"
}

launch q 120 40 "$DB" --workers 1
wait_for "Aspen console"
keys 6
wait_for "Queues on this database: 2 \(0 paused, 1 limited\)"
wait_for "default +1 +0 +0 +0 +- +- +-"
wait_for "emails +3 +0 +0 +0 +2 +10/s +-"

# p on the second row pauses emails only
keys j
keys p
wait_for "queue emails paused"
wait_for "emails +3 .* paused"
[ "$(q_json emails paused)" = true ] || fail "emails is not paused in the database"
[ "$(q_json default paused)" = false ] || fail "default was paused too"

# l: the limit on the command line, a bad value refused, then 5
keys l
wait_for ":limit 2"
keys BSpace
type_text "x"
keys Enter
wait_for "limit: want a whole number"
[ "$(q_json emails limit)" = 2 ] || fail "a bad limit changed it"
keys l
keys BSpace
type_text "5"
keys Enter
wait_for "queue emails: at most 5 running at once"
wait_for "emails +3 +0 +0 +0 +5 "
[ "$(q_json emails limit)" = 5 ] || fail "the limit is not 5 in the database"
keys l
keys BSpace
type_text "none"
keys Enter
wait_for "queue emails: no limit"
[ "$(q_json emails limit)" = null ] || fail "the limit was not removed"

# p again resumes it
keys p
wait_for "queue emails resumed"
[ "$(q_json emails paused)" = false ] || fail "emails is still paused"

# enter: the jobs pane, filter line with queue:emails
keys Enter
wait_for "queue:emails"
keys Enter
wait_for "filter: queue:emails"

# the submit form's Queue field: a bad name is refused there, a good one is where the job goes
keys s
wait_for "Submit a job"
wait_for "Queue +default"
keys Tab Tab Tab Tab Tab Tab Tab
type_text "bad name"
keys C-s
wait_for "queue: queue name \"bad name\" is not valid"
keys C-u
type_text "forms"
keys C-s
wait_for "submitted job 5 "
[ "$("$ASPEN" jobs --filter queue:forms --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
    fail "the form's job is not in queue forms"
quit_and_check q
echo "PASS: console_queues_test"
