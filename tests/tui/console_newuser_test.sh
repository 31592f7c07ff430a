#!/usr/bin/env bash
# tests/tui/console_newuser_test.sh — issue 10's new-user trial, in the console at 80x24: two
# queues whose long names differ only at the end stay apart in the Queues pane (both read
# very-long-queu~), with the selected one's name whole under the list; enter on a queue applies
# queue:NAME to the jobs list at once (it kept the old filter's jobs until enter); the Schedules
# pane's last run of an @every 5s schedule reads "just now" / "Ns ago", never "(in 0s)", and its
# count follows the clock a second at a time; the ? help says :pause / :resume act on every queue.
#
#   console_newuser_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_newuser_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-newuser.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/n.db
for y in 2026 2027; do
    "$ASPEN" queue set very-long-queue-name-for-reports.$y --limit 3 --db "$DB" --create >/dev/null ||
        fail "queue set .$y"
done
# held: the console's worker must not finish them before the filter is read
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause"
"$ASPEN" submit --type echo --count 2 --db "$DB" >/dev/null || fail "submit default"
"$ASPEN" submit --type echo --queue very-long-queue-name-for-reports.2027 --db "$DB" >/dev/null ||
    fail "submit .2027"
launch nu 80 24 "$DB" --workers 1
wait_for "Aspen console"
keys 6
wait_for "Queues(: 3,| on this database: 3 )"
# distinct at 80 columns: start and end kept
wait_for "very-lon~ts\.2026 " 10
screen | grep -Eq "very-lon~ts\.2027 " || fail "the .2027 queue is not told apart"
screen | grep -Eq "very-long-queu~" && fail "a name cut at its end (the two read alike)"
keys Down Down
wait_for "2 names cut to fit; selected: very-long-queue-name-for-reports\.2027" 10

# enter: the jobs pane's filter line with queue:NAME, applied before enter (only job 3 listed)
keys Enter
wait_for "filter> queue:very-long-queue-name-for-reports\.2027" 10
wait_for " 1/1" 10
screen | grep -Eq "^ +1 +type:echo" && fail "job 1 (queue default) is still listed before enter"
keys Escape

# ? help: :pause and :resume act on every queue
keys '?'
wait_for "Help \(up/down" 10
found=""
for ((i = 0; i < 15; i++)); do # page by page through the 200 lines
    screen | grep -Eq ":(pause|resume) +(pause|resume) the queue" && fail "the help says 'the queue'"
    screen | grep -Eq ":resume +resume every queue" && found=1
    keys PgDn
    sleep 0.3
done
[ -n "$found" ] || fail "the help's :resume does not say it resumes every queue"
keys Escape

# the Schedules pane: a run just made reads just now / 0-1s ago, and the count steps by one
"$ASPEN" resume --db "$DB" >/dev/null || fail "resume"
"$ASPEN" cron add tick '@every 5s' --type echo --db "$DB" >/dev/null || fail "cron add"
keys 5
wait_for "last run [0-9-]+ [0-9:]+ \((just now|1s ago)\), [0-9]+ runs?" 30
seen=""
for ((i = 0; i < 60; i++)); do # 6 s of frames: the count of one run goes 0/1, 1, 2, 3, 4...
    line=$(screen | grep -Eo "last run [0-9-]+ [0-9:]+ \([^)]*\)")
    case $line in *"(in "*) fail "a past run shown as future: $line" ;; esac
    seen+="$(echo "$line" | grep -Eo '\((just now|[0-9]+s ago)\)' | tr -d ' ')"$'\n'
    sleep 0.1
done
# every step between two frames is of at most one second (a run starts the count again)
echo "$seen" | python3 -c '
import sys
vals = [0 if l == "(justnow)" else int(l[1:].split("s")[0]) for l in sys.stdin.read().split() if l]
bad = [(a, b) for a, b in zip(vals, vals[1:]) if b > a + 1]
assert vals and not bad, (vals, bad)' || fail "the last run's age jumped: $(echo $seen)"
echo "PASS console_newuser_test"
