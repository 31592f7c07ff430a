#!/usr/bin/env bash
# tests/tui/console_trial_test.sh — what a new-user trial of the console found at 80x24, driven
# through tmux against the real build:
#   - the header's state counts are exact when they fit (queued 12000, not 12.0k);
#   - the delete-by-filter question is wrapped in its box, its end "(attempts, logs too)?" on
#     screen, and the footer's older message goes while it is open; after y the list says
#     "No job matches" without a counter over '...' rows for jobs that are gone;
#   - the submit form counts and marks every invalid field, a bad Unique (for=10x states=queud)
#     too while the payload is also bad;
#   - the form offers the built-in types (echo, sleep, checksum) and keeps the project's test
#     guests (test-*) out of left/right, still found by typing a name;
#   - an in-process job says its type in the GUEST column (no TYPE column at 80);
#   - q asks first while this console's workers run a job, saying it goes back to the queue;
#     n keeps the console, y quits and the job is queued again.
# Every check polls `tmux capture-pane` until it holds or a deadline passes. Needs /dev/kvm and
# tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_trial_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-trial.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/trial.db
long_user="alice-from-the-accounts-department-north"
"$ASPEN" submit --type echo --payload "{\"user\":\"$long_user\"}" --count 30 --db "$DB" --create \
    >/dev/null || fail "submit the jobs to delete"
"$ASPEN" worker --until-idle --quiet --db "$DB" || fail "worker"
"$ASPEN" submit --type echo --payload '{}' --count 12000 --db "$DB" >/dev/null ||
    fail "submit 12000 queued jobs"

launch trial 80 24 "$DB" --workers 0
wait_for "Aspen console" 20

echo "== exact counts in the header"
wait_for "^ queued 12000 +scheduled 0 +running 0 +succeeded 30 "
screen | grep -Eq "12\.0k|[0-9]\.[0-9]k" && fail "a count is abbreviated although it fits"

echo "== the delete question is wrapped, the old message goes"
filter="type:echo payload.user:$long_user"
keys /
type_text "$filter"
keys Enter
wait_for " 1/30 *$" 20
keys y # copies the id: a message in the footer
wait_for "copied"
keys D
wait_for "Confirm" 15
joined() { screen | sed -E 's/^ *[│x] +//; s/ +[│x] *$//' | tr '\n' ' ' | tr -s ' '; }
for ((i = 0; i < 100; i++)); do joined | grep -qF "(attempts, logs too)?" && break; sleep 0.05; done
joined | grep -qF "Delete 30 finished jobs matching '$filter' (attempts, logs too)?" ||
    fail "the question is not whole: $(joined)"
screen | grep -q "copied" && fail "the footer still shows the message from before the question"
# nothing of the question is drawn past the box's right edge
[ "$(screen | python3 -c 'import sys; print(sum(len(l.rstrip("\n")) > 80 for l in sys.stdin))')" = 0 ] ||
    fail "a line is wider than 80 columns"
keys y
# from the delete on, the list is empty: never the old counter over rows that are gone
for ((i = 0; i < 300; i++)); do
    s=$(screen)
    echo "$s" | grep -q "No job matches" && break
    echo "$s" | grep -Eq '^ +\.\.\.' && fail "'...' rows for deleted jobs: $s"
    sleep 0.05
done
screen | grep -q "No job matches" || fail "the list did not say No job matches after the delete"
keys /
keys C-u
keys Enter

echo "== the form counts and marks every invalid field"
keys s
wait_for "Submit a job"
keys Tab
type_text "{bad"
keys Tab
type_text "abc"
keys Tab Tab Tab Tab Tab Tab
type_text "for=10x states=queud"
wait_for "x!Unique"
wait_for "x!Payload"
wait_for "x!Timeout"
form_joined() { joined; }
for ((i = 0; i < 100; i++)); do form_joined | grep -qF "3 fields to fix" && break; sleep 0.05; done
form_joined | grep -qF "3 fields to fix (marked !)" || fail "the summary does not count 3: $(form_joined)"
form_joined | grep -qF "unique: bad for=10x, states=queud" ||
    fail "the summary does not name the unique field's parts: $(form_joined)"

echo "== the Guest/type field: built-in types, no test guests"
keys C-r
wait_for "reset to the defaults"
wait_for "Guest/type +< echo-worker > guest \(VM\)"
keys Left # from the first guest back round to the last offered: a built-in type
wait_for "< checksum > built-in type \(in-process\)"
seen=""
for ((k = 0; k < 30; k++)); do
    keys Right
    sleep 0.1
    g=$(screen | grep -Eo "Guest/type +< [^ ]+ >" | sed 's/.*< //; s/ >//')
    seen+="$g "
    [[ "$g" == test-* ]] && fail "left/right offers the test guest $g"
done
for t in echo sleep checksum echo-worker; do
    [[ " $seen " == *" $t "* ]] || fail "left/right never offered $t (offered: $seen)"
done
# typed, a test guest is still found (the suite and a developer use them)
keys C-u
type_text "test-spin"
wait_for "< test-spin > test guest \(VM\)"
keys Escape
quit_and_check trial

echo "== an in-process job's type in GUEST; q asks while a job runs"
DB2=$TMP/run.db
launch run 80 24 "$DB2" --workers 1
wait_for "Aspen console \| running" 20
keys s
wait_for "Submit a job"
type_text "sleep" # the Guest/type field: typing finds the built-in type by its name
wait_for "< sleep > built-in type \(in-process\)"
keys Tab
type_text '{"ms": 60000}'
keys Tab
type_text "120s"
keys C-s
wait_for "^ +1 +type:sleep +running" 30
keys q
question="Quit? 1 job is running here: it gets a few seconds to finish, then it is given back to the queue"
for ((i = 0; i < 200; i++)); do joined | grep -qF "$question" && break; sleep 0.05; done
joined | grep -qF "$question" || fail "q did not ask first: $(joined)"
keys n
wait_gone "Quit\?" 10
wait_for "^ +1 +type:sleep +running"
keys q
wait_for "given back to the queue" 10
RUNNING=
keys y
for ((i = 0; i < 600; i++)); do [ -s "$TMP/run.exit" ] && break; sleep 0.05; done
[ "$(cat "$TMP/run.exit" 2>/dev/null)" = 0 ] || fail "the console did not quit after y"
"$ASPEN" jobs --db "$DB2" --all --json | grep -Eq '"id": 1,.*"state": "(queued|scheduled)"|"state": "(queued|scheduled)".*"id": 1' ||
    "$ASPEN" jobs --db "$DB2" --all | grep -Eq '^ *1 .*(queued|scheduled)' ||
    fail "the running job was not given back to the queue: $("$ASPEN" jobs --db "$DB2" --all)"
echo "PASS: console_trial_test"
