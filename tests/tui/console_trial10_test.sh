#!/usr/bin/env bash
# tests/tui/console_trial10_test.sh — what a new user's trial of issue 10 found in the console, at
# 80x24 against a real database (checked with `aspen jobs` / `aspen queues`):
#   - under a queue:NAME filter the position counter counts that queue's jobs (it said 1/24 over
#     14: the whole database's state counts), and G lands on its last real job (not on "..."
#     placeholder rows past it): enter there opens that job;
#   - the submit form never makes a queue from a typo: "defualt" is answered with "no queue
#     'defualt' (did you mean 'default'?)" and nothing is sent; a queue that exists is submitted
#     to at once; a new name is created only by a second submit of the same name;
#   - X cancels every unfinished job matching the filter after a question with the count and the
#     filter; refused with a clear message when no filter (or one that matches every job) is set;
#     "no" cancels nothing; the result says how many; listed in the help and, at 120 columns, in
#     the footer.
#
#   console_trial10_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_trial10_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-trial10.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/t.db
# jobs 1-5 and 20-24 in default, 6-19 (14 jobs) in queue a: a's jobs are neither the first nor
# the last rows of the whole list
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 5 --db "$DB" --create >/dev/null || fail "submit 1-5"
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 14 --queue a --create-queue --db "$DB" >/dev/null ||
    fail "submit 6-19 to a"
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 5 --db "$DB" >/dev/null || fail "submit 20-24"
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause" # nothing runs: the jobs stay queued

# njobs FILTER: how many jobs aspen jobs lists for the filter
njobs() { "$ASPEN" jobs --filter "$1" --all --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
queues() { "$ASPEN" queues --json --db "$DB" | python3 -c 'import json,sys; print(" ".join(sorted(q["name"] for q in json.load(sys.stdin))))'; }

launch t 80 24 "$DB" --workers 1
wait_for "Aspen console"
wait_for " 1/24 *$"

echo "== queue:a: the counter and G"
keys /
type_text "queue:a"
keys Enter
wait_for "filter: queue:a"
wait_for "^ +19 type:sleep +queued"
wait_for " 1/14 *$" # the 14 jobs of queue a, not the 24 of the database
screen | grep -q '^ *\.\.\. *$' && fail "placeholder rows under queue:a's 14 jobs"
keys G
wait_for " 14/14 *$"
# the last row on screen is job 6, a's last, and it is the selected one (reverse video)
last=$(screen | grep -E '^ +[0-9]+ type:sleep' | tail -1 | awk '{print $1}')
[ "$last" = 6 ] || fail "the last row after G is job '$last', not job 6"
screen | grep -q '^ *\.\.\. *$' && fail "G shows placeholder rows past queue a's last job"
T capture-pane -e -p -t c | grep -F ' 6 type:sleep' | grep -qF $'\e[1;7m' ||
    fail "job 6's row is not the selected one after G"
keys Enter
wait_for "Job 6 +queued"
keys Escape
wait_for " 14/14 *$"

echo "== the submit form: a typo of a queue is not created"
before=$(njobs "")
keys s
wait_for "Submit a job"
wait_for "Queue +default"
keys Tab Tab Tab Tab Tab Tab Tab
type_text "defualt"
keys C-s
wait_for "no queue 'defualt' \(did you mean 'default'\?\)"
form_joined | grep -q "again creates it" || fail "the form does not say a second submit creates the queue: $(form_joined)"
screen | grep -q "Submit a job" || fail "the form closed on a queue that does not exist"
[ "$(njobs "")" = "$before" ] || fail "a job was submitted into the typo queue defualt"
[ "$(queues)" = "a default" ] || fail "queues after the typo: $(queues)"
# fixed to a queue that exists: submitted at once, into it
keys C-u
type_text "a"
keys C-s
wait_for "submitted job 25 "
[ "$(njobs "queue:a id:25")" = 1 ] || fail "job 25 is not in queue a"
[ "$(queues)" = "a default" ] || fail "queues after a submit to a: $(queues)"
# a new name: said first, then the second submit of the same name creates it
keys s
wait_for "Submit a job"
keys Tab Tab Tab Tab Tab Tab Tab
type_text "brandnew"
keys C-s
wait_for "no queue 'brandnew': "
[ "$(queues)" = "a default" ] || fail "brandnew was created by the first submit"
keys C-s
wait_for "submitted job 26 "
[ "$(njobs "queue:brandnew")" = 1 ] || fail "job 26 is not in the new queue brandnew"
[ "$(queues)" = "a brandnew default" ] || fail "queues after the second submit: $(queues)"

echo "== X: cancel every job matching the filter"
# queue:a is still the filter; first none: refused, nothing cancelled
keys /
keys C-u
keys Enter
wait_for " 1/26 *$"
keys X
wait_for "no filter is set"
keys :
type_text "filter order:oldest" # no term narrows the jobs: the same as none
keys Enter
wait_for "filter: order:oldest"
keys X
wait_for "no filter is set"
[ "$(njobs state:cancelled)" = 0 ] || fail "X without a filter cancelled jobs"
keys /
keys C-u
type_text "queue:a state:queued"
keys Enter
wait_for "7Stats +(filter: )?queue:a state:queued \| sort id"
wait_for " 1/15 *$"
keys X
wait_for "Cancel 15 unfinished jobs matching 'queue:a state:queued'\?"
keys n
wait_gone "Cancel 15 unfinished jobs"
[ "$(njobs state:cancelled)" = 0 ] || fail "no to the question cancelled jobs"
keys X
wait_for "Cancel 15 unfinished jobs matching 'queue:a state:queued'\?"
keys y
wait_for "cancelled 15 jobs matching 'queue:a state:queued'"
[ "$(njobs "queue:a state:cancelled")" = 15 ] || fail "queue a's jobs are not all cancelled: $(njobs "queue:a state:cancelled")"
[ "$(njobs state:queued)" = 11 ] || fail "jobs of other queues were cancelled too: $(njobs state:queued) queued"
wait_for "No job matches the filter"
# a filter with nothing unfinished left: said, not asked
keys X
wait_for "no unfinished job matches 'queue:a state:queued': nothing to cancel"
# the help lists it with its command
keys "?"
wait_for "Aspen console - keys"
for ((i = 0; i < 40; i++)); do
    screen | grep -Eq "^ +X +:cancel-match +cancel every unfinished job" && break
    keys PgDn
    sleep 0.05
done
screen | grep -Eq "^ +X +:cancel-match +cancel every unfinished job" || fail "the help does not list X"
keys Escape
quit_and_check t

# at 120 columns the jobs pane's footer shows it beside the others
launch wide 120 30 "$DB" --workers 1
wait_for "Aspen console"
wait_for "X cancel all"
quit_and_check wide
echo "PASS: console_trial10_test"
