#!/usr/bin/env bash
# tests/tui/console_queues_test.sh — the console's Queues pane (6): every named queue with its
# figures (queued, limit, rate, paused) read from the store; `p` pauses and resumes the queue under
# the cursor (checked with `aspen queues --json`, i.e. in the database, so every worker sees it),
# while `p` elsewhere stays the global pause; `l` edits its limit on the command line (a bad
# number is refused with the rule) and `r` its rate (a bad one refused with the store's reason),
# and enter opens the jobs pane's filter line with queue:NAME;
# the submit form's Queue field puts the job in that queue (a new one once sent twice) and refuses
# a bad name. Then at 80x24
# with 20,000 jobs in a queue: the columns fit, and pause, limit and rate still go through; a rate
# with a long unknown unit is refused naming the unit whole; the last line shows the retention in
# effect (the defaults, then what aspen retention set changed, within a read); with 100,000 jobs
# made in the last minute an idle queue's DONE/m reads "-".
#
#   console_queues_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_queues_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-queues.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/q.db
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 3 --queue emails --create-queue --db "$DB" --create >/dev/null ||
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
# under the global pause (aspen pause above) every queue is held: the title says so and how to end
# it, and PAUSED reads "all" for a queue held only by it (trial 11)
wait_for "Queues: 2, all paused by the global pause \(:resume or aspen resume\)"
wait_for "default +1 +0 +0 +0 +- +- +all "
wait_for "emails +3 +0 +0 +0 +2 +10/s +all "
wait_for "^ Finished jobs kept: succeeded 24h, failed 7d, cancelled 24h \(defaults\) \| aspen retention set *$"

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

# r: the rate on the command line with the current one, a bad one refused with the store's
# reason, then 5/10s, then none
keys r
wait_for ":rate 10/s"
keys BSpace BSpace BSpace BSpace
type_text "0/s"
keys Enter
wait_for "rate: rate \"0/s\": the count before '/' is not a positive number"
[ "$(q_json emails rate)" = '"10/s"' ] || fail "a bad rate changed it"
keys r
wait_for ":rate 10/s"
keys BSpace BSpace BSpace BSpace
type_text "5/10s"
keys Enter
wait_for "queue emails: at most 5/10s started"
wait_for "emails +3 +0 +0 +0 +- +5/10s "
[ "$(q_json emails rate)" = '"5/10s"' ] || fail "the rate is not 5/10s in the database"
keys r
keys BSpace BSpace BSpace BSpace BSpace
type_text "none"
keys Enter
wait_for "queue emails: no rate limit"
[ "$(q_json emails rate)" = null ] || fail "the rate was not removed"

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
# a queue that does not exist is said first (never made from a typo); sent again, it is made
wait_for "no queue 'forms': "
[ "$("$ASPEN" jobs --filter queue:forms --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] ||
    fail "the form's first submit into the new queue forms was sent"
keys C-s
wait_for "submitted job 5 "
[ "$("$ASPEN" jobs --filter queue:forms --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
    fail "the form's job is not in queue forms"
quit_and_check q

# 80x24 with 20,000 jobs waiting in one queue: the list is read on the thread pool, the columns
# fit 80 (the last one, DONE/m, is on screen), and p, l and r still work on the queue under the
# cursor, as the database says after each.
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 20000 --queue bulk --create-queue --db "$DB" >/dev/null ||
    fail "submit 20,000 to bulk"
launch small 80 24 "$DB" --workers 1
wait_for "Aspen console"
keys 6
wait_for "QUEUE +QUEUED +RESV +SCHED +RUN +LIMIT +RATE +PAUSED +OLDEST +DONE/m"
wait_for "^ +bulk +20000 +0 +0 +0 +- +- +all +[0-9.]+[a-z]+ +0 *$"
keys j
keys p
wait_for "queue bulk paused"
[ "$(q_json bulk paused)" = true ] || fail "bulk is not paused in the database (80x24)"
keys l
wait_for "^:limit *$"
type_text "3"
keys Enter
wait_for "queue bulk: at most 3 running at once"
wait_for "^ +bulk +20000 +0 +0 +0 +3 "
[ "$(q_json bulk limit)" = 3 ] || fail "the limit is not 3 in the database (80x24)"
keys r
wait_for "^:rate *$"
type_text "100/s"
keys Enter
wait_for "^ +bulk +20000 +0 +0 +0 +3 +100/s +paused "
[ "$(q_json bulk rate)" = '"100/s"' ] || fail "the rate is not 100/s in the database (80x24)"
# a unit longer than 8 characters is named whole (it read "millisec", cut), and nothing changes
keys r
wait_for "^:rate 100/s *$"
keys C-u
type_text "rate 5/milliseconds" # C-u empties the whole command line
keys Enter
wait_for "the period \"milliseconds\" is not a" # wrapped at 80: the rest on the next row
[ "$(q_json bulk rate)" = '"100/s"' ] || fail "a bad rate changed it (80x24)"
# the retention in effect, on the last line of the pane; a change by another process shows
wait_for "^ Finished jobs kept: succeeded 24h, failed 7d, cancelled 24h \(defaults\) *$"
"$ASPEN" retention set failed 30d --db "$DB" >/dev/null || fail "retention set failed 30d"
"$ASPEN" retention set cancelled off --db "$DB" >/dev/null || fail "retention set cancelled off"
wait_for "^ Finished jobs kept: succeeded 24h, failed 30d, cancelled off *$" # no room for the hint
# a queue name longer than its column is cut with ~ in the middle (its start and end kept), not
# run into the next column
"$ASPEN" queue set a-very-long-queue-name-indeed --limit 1 --db "$DB" >/dev/null || fail "long queue"
wait_for "^ +a-very-l~-indeed +0 +0 +0 +0 +1 "
# 30 more queues: the list scrolls at 24 rows; after G (the last queue) a click on a row selects
# the queue drawn there, which p then pauses
for i in $(seq -w 1 30); do
    "$ASPEN" queue set "z$i" --limit 1 --db "$DB" >/dev/null || fail "queue z$i"
done
wait_for "Queues: 35, all paused by the global pause"
keys G
wait_for "^ +z30 "
line=$(screen | grep -nE '^ +z2[0-9] ' | head -1) # the first z2x row on screen, as NUMBER:TEXT
[ -n "$line" ] || fail "no z2x queue on screen after G"
y=${line%%:*}
name=$(echo "${line#*:}" | awk '{print $1}')
T send-keys -t c -l $'\e[<0;5;'"$y"'M'$'\e[<0;5;'"$y"'m' # a click there (SGR mouse, 1-based)
keys p
wait_for "queue $name paused"
[ "$(q_json "$name" paused)" = true ] || fail "the clicked queue $name is not paused"
# 100,000 jobs made this minute: DONE/m is counted among the newest 100,000 only, and a queue
# with none among them reads "-", as aspen queues shows it, not ">=0" (trial 23)
"$ASPEN" submit --type echo --count 100000 --queue cap --create-queue --db "$DB" >/dev/null ||
    fail "submit 100,000 to cap"
keys g
wait_for "^ +default +[0-9]+ +0 +0 +0 +- +- +all +[0-9.]+[a-z]+ +- *$"
screen | grep -q '>=0' && fail "DONE/m still reads >=0 with the count capped"
quit_and_check small
echo "PASS: console_queues_test"
