#!/usr/bin/env bash
# tests/tui/console_fit_test.sh — what was left of issue 9 at 80x24, on a real build:
#   - every pane's header, column heads and footer fit 80 columns: the Engines pane keeps
#     HEARTBEAT and each worker's job (STARTED goes), the tabs row keeps the Logs pane's follow,
#     wrap and timestamp settings whole, the Metrics pane's empty-window note is not cut;
#   - the submit form owns the rows it covers (the jobs counter no longer shows beside it), up and
#     down inside the multi-line payload move between its lines and never into Timeout (tab
#     leaves, the hint says so), every invalid field is marked with one summary line, and a
#     long invalid-JSON error wraps under the form instead of being cut;
#   - :commands with a bad argument say what is allowed, with "did you mean" for a near miss;
#   - the header's jobs/s says its window and stays above 0.0 while jobs finished in it.
#
#   console_fit_test.sh ASPEN_BINARY
set -u
export LC_ALL=C.UTF-8 # ${#line} counts characters, not bytes

ASPEN=${1:?usage: console_fit_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-fit.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

# fits_80 WHAT: no line of the screen is wider than 80 characters (counted as characters: ▼)
fits_80() {
    local l
    while IFS= read -r l; do
        [ "${#l}" -le 80 ] || fail "a line wider than 80 columns in $1: $l"
    done < <(screen)
    return 0
}
# joined: the screen as one line (a message wrapped over rows reads whole)
joined() { screen | sed 's/ *$//' | tr '\n' ' '; }
# form_joined: the inside of the form's box (80 columns: x0 = 2, width 76) as one line
command_says() { # command_says COMMAND TEXT: :COMMAND, then TEXT on screen (wrapping allowed)
    local i
    keys :
    type_text "$1"
    keys Enter
    for ((i = 0; i < 100; i++)); do
        joined | grep -Fq -- "$2" && return 0
        sleep 0.05
    done
    fail ":$1 did not say '$2'"
}

DB=$TMP/f.db
# one job runs for the whole test (the one worker is busy: an Engines worker row), one waits
"$ASPEN" submit --type sleep --payload '{"ms": 60000}' --count 2 --db "$DB" --create >/dev/null ||
    fail "submit"
launch fit 80 24 "$DB" --workers 1
wait_for "Aspen console"
wait_for "running 1 "

echo "== every pane's header and footer at 80x24"
wait_for "ERROR +1/2$" # the jobs counter, whole at the right edge
fits_80 jobs
keys 2
wait_for "^W +STATE +JOB +GUEST"
fits_80 vms
keys 4
wait_for "^  ID +HOST +PID +WORKERS +BUSY +VMS +RSS +JOBS/S +HEARTBEAT$"
wait_for '^\* [0-9]+ +[^ ]+ +[0-9]+ +1 +1 +[0-9]+ +[0-9.]+[BKMG] +[0-9.]+ +[0-9.]+s ago$'
wait_for "worker 0 +job 1 +sleep"
fits_80 engines
keys 5
wait_for "Schedules: 0"
fits_80 schedules
keys 6
wait_for "Queues on this database: 1"
fits_80 queues
keys 7
wait_for_text "no job finished in the last 1h (written every 5 s; w: longer)"
fits_80 metrics
keys 3
wait_for "follow ON wrap off ts off$"
keys f
wait_for "follow off wrap off ts off$"
wait_for "paused \(f: follow\)"
fits_80 logs
keys f
# every pane's footer starts with the same keys and is whole
for p in 1 2 3 4 5 6 7; do
    keys "$p"
    wait_for "^\? help  s submit  "
    fits_80 "pane $p footer"
done

echo "== :commands with a bad argument say what is allowed"
keys 1
command_says "priority abc" ":priority wants a whole number from -1000000 to 1000000, not 'abc'"
command_says "priority 99999999999999999999999" "from -1000000 to 1000000, not '99999999999999999999999'"
command_says "window 24" "unknown window '24', did you mean 24h? (windows: 15m, 1h, 24h, 7d)"
keys 1
command_says "load mine" "no filter saved as 'mine': none is saved yet (:save NAME keeps the filter set)"
command_says "job abc" "'abc' is not a job id: a whole number from 1 (e.g. :job 42)"
command_says "logs x1" "'x1' is not a job id: a whole number from 1 (e.g. :logs 42; :logs alone: every job's)"
command_says "pause now" ":pause takes no argument, not 'now' (type :pause alone)"
command_says "now" "unknown command ':now': did you mean :run-now?"
command_says "sort dur" "unknown sort column 'dur', did you mean duration?"
fits_80 "command messages"

echo "== the submit form at 80x24"
keys Escape 1
wait_for "ERROR +1/2$"
keys s
wait_for "Submit a job"
# the form owns its rows: nothing of the table (the counter "1/2") beside the box
while IFS= read -r l; do
    [ "${#l}" -le 78 ] || fail "the jobs list shows through beside the form: $l"
done < <(screen | sed -n '2,23p')
screen | grep -q "1/2" && fail "the jobs counter shows beside the form"
# up/down inside the payload move between its lines and never leave it
keys Tab
wait_for_text "up/down lines  tab/shift-tab leave"
keys C-u
type_text '{"a": 1,'
keys Enter
type_text '"b": 2}'
keys Up Up Up Up
type_text "Z"
keys Down Down Down Down
type_text "Q"
wait_for_text 'Payload     Z{"a": 1,'
wait_for_text '"b": 2}Q'
wait_for "Timeout +30s "  # up/down did not reach the field below (or above)
wait_for "Guest/type +< echo-worker >"
# every invalid field is marked, with one summary line
keys Tab C-u
type_text "abc"
keys Tab C-u
type_text "x"
wait_for "x!Payload "
wait_for "x!Timeout +abc"
wait_for "x!Priority +x"
screen | grep -q "x!Attempts" && fail "a valid field is marked"
wait_for_text "3 fields to fix (marked !): payload: not JSON"
form_joined | grep -Fq "timeout: 30s, 5m, 1h or ms, to 24h; priority: -1000000 to 1000000" ||
    fail "the summary does not name every invalid field"
keys C-s # refused: the form stays, the cursor goes to the first field to fix
wait_for "3 fields to fix"
fits_80 "the form"
# a long invalid-JSON error wraps onto the free row below it, whole
keys C-r
wait_for "reset to the defaults"
screen | grep -q "x!" && fail "a field is still marked after the reset"
keys Tab C-u
type_text '{"message": "an unfinished'
wait_for_text "payload: not JSON at line 1, column 26"
form_joined | grep -Fq "payload: not JSON at line 1, column 26: premature end of input near '\"an unfinished'" ||
    fail "the invalid-JSON error is cut"
keys Escape
wait_gone "Submit a job"
quit_and_check fit

echo "== the header's jobs/s says its window and holds while finished jobs are in it"
DB2=$TMP/r.db
"$ASPEN" submit --type sleep --payload '{"ms": 100}' --count 6 --db "$DB2" --create >/dev/null ||
    fail "submit"
# kept for less than the 7d window (checked at the end)
"$ASPEN" metrics --retention 72h --db "$DB2" >/dev/null || fail "metrics --retention"
launch rate 80 24 "$DB2" --workers 2
wait_for "Aspen console"
wait_for "succeeded 6 " 30
# the window is the seconds the console has counted (up to a minute): wait for 3 more of them
# after the last job finished, then the figure still counts the 6 jobs
w0=$(screen | sed -n 's/.*jobs\/s (\([0-9]*\)s).*/\1/p')
[ -n "$w0" ] || fail "the header's jobs/s does not say its window"
for ((i = 0; i < 200; i++)); do
    w=$(screen | sed -n 's/.*jobs\/s (\([0-9]*\)s).*/\1/p')
    [ -n "$w" ] && [ "$w" -ge $((w0 + 3)) ] && break
    sleep 0.05
done
[ "${w:-0}" -ge $((w0 + 3)) ] || fail "the jobs/s window did not grow from ${w0}s"
screen | grep -Eq "jobs/s \([0-9]+s\) (0\.[1-9]|[1-9])" ||
    fail "jobs/s dropped to 0.0 while the window holds 6 finished jobs"
fits_80 header

echo "== the Metrics pane's 7d window, on a database that keeps 72h of rollups"
command_says "window 7d" "Metrics, last 7d, every engine"
wait_for "finished, jobs/s \(one column = [0-9hm]+; only 3d kept\)"
fits_80 "metrics 7d"
quit_and_check rate
echo "PASS: console_fit_test"
