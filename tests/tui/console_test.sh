#!/usr/bin/env bash
# tests/tui/console_test.sh — the operations console driven through tmux against the real build.
#
#   console_test.sh ASPEN_BINARY
#
# Starts `aspen console` detached in a private tmux server (its own socket) on a temporary database
# at 120x40 and at 80x24, and drives it like a user: submit through the form and see the job
# succeed, read its log line in the logs pane, open the detail, cancel a long-running job (guest
# test-spin), rerun a job, filter, resize, open help, and quit — then checks the terminal was
# restored, the process exited 0, and no job was left running. Every check polls
# `tmux capture-pane -p` until the text shows up (or a deadline passes). Needs /dev/kvm: fails,
# never skips, without it. Installs nothing.
set -u

ASPEN=${1:?usage: console_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-test.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

# start NAME COLS ROWS: a console on $TMP/NAME.db (see launch in tmux_lib.sh)
start() {
    launch "$1" "$2" "$3" "$TMP/$1.db" --workers 2 --grace 500
    wait_for "Aspen console \| running" 20
}

# quit_and_check, then no job of the console's is left running
quit_and_check_jobs() {
    local name=$1 running
    quit_and_check "$name"
    running=$("$ASPEN" jobs --db "$TMP/$name.db" --state running | tail -n +2)
    [ "$running" = "(no jobs match)" ] || fail "jobs left running after quit: $running"
}

echo "== 120x40: submit, logs, detail, cancel, rerun, filter, help, resize, quit"
start big 120 40
wait_for "No jobs yet"

# submit the default job (echo-worker) through the form
keys s
wait_for "Submit a job"
wait_for "< echo-worker >"
wait_for "payload is valid JSON"
keys C-s
wait_for "submitted job 1 "
wait_for "^ +1 vm_execute +echo-worker +succeeded" 20

# its log line: in the logs pane, live
keys 3
wait_for "Logs of all jobs"
wait_for "\[job 1\] echo-worker: received [0-9]+ bytes"

# the detail: payload indented, output, attempts
keys 1 Enter
wait_for "Job 1 +succeeded"
wait_for '"message": "hello from the console"'
wait_for "Echo: "
wait_for "#1 succeeded"
keys Escape
wait_gone "Job 1 +succeeded"

# a bad payload is refused before submit
keys s
wait_for "Submit a job"
keys Tab C-u
type_text '{"oops": '
wait_for "payload: not JSON at line 1, column"
keys C-s
wait_for "Submit a job"
keys C-u
type_text '{"message": "second"}'
wait_for "payload is valid JSON"
keys Escape
wait_gone "Submit a job"

# a long-running job (test-spin never finishes; a 600s timeout), cancelled while it runs
keys s
wait_for "Submit a job"
type_text "test-spin"
wait_for "< test-spin >"
keys Tab Tab C-u
type_text "600s"
keys C-s
wait_for "submitted job 2 "
wait_for "^ +2 vm_execute +test-spin +running" 20
keys g c
wait_for "Cancel job 2\?"
keys y
wait_for "^ +2 vm_execute +test-spin +cancelled" 20

# rerun job 1 (second row): a new job 3 that succeeds
keys g j r
wait_for "rerun queued as job 3"
wait_for "^ +3 vm_execute +echo-worker +succeeded" 20

# filter by state, then by guest (a bare word), then clear with esc in the prompt
keys /
wait_for "^filter>"
type_text "state:cancelled"
keys Enter
wait_for "filter: state:cancelled"
wait_for "^ +2 vm_execute +test-spin +cancelled"
wait_gone "^ +1 vm_execute"
wait_gone "^ +3 vm_execute"
keys /
keys C-u
type_text "echo-worker"
keys Enter
wait_for "^ +3 vm_execute +echo-worker"
wait_for "^ +1 vm_execute +echo-worker"
wait_gone "^ +2 vm_execute"
keys / Escape
wait_for "filter: \(none"
wait_for "^ +2 vm_execute"

# the VMs pane shows the workers and the warm pool
keys 2
wait_for "Warm pool: [0-9]+ VMs?"
wait_for "^0 +(idle|running)"
keys 1

# help
keys "?"
wait_for "Aspen console - keys"
keys NPage
wait_for "cancel \(asks first\)"
keys Escape
wait_gone "Aspen console - keys"

# resize down to 80x24 and back up: the screen follows
T resize-window -t c -x 80 -y 24
wait_for "^ queued [0-9]+ +sched"
wait_for "\? help +s submit"
wait_gone "Live logs"
T resize-window -t c -x 120 -y 40
wait_for "Live logs"
wait_for "scheduled [0-9]+"

# a job still running at quit goes back to the queue (grace 0.5 s)
keys s
wait_for "Submit a job"
type_text "test-spin"
wait_for "< test-spin >"
keys Tab Tab C-u
type_text "600s"
keys C-s
wait_for "^ +4 vm_execute +test-spin +running" 20
quit_and_check_jobs big
state=$("$ASPEN" jobs --db "$TMP/big.db" --filter "id:4" | tail -n +2)
echo "$state" | grep -q "queued" || fail "job 4 (running at quit) should be queued again: $state"

echo "== 80x24: the seed's data-processor through the form, detail, logs, quit"
start small 80 24
wait_for "No jobs yet"
wait_for "\? help +s submit"
keys s
wait_for "Submit a job"
keys Right
wait_for "< data-processor >"
wait_for "payload is valid JSON"
keys C-s
wait_for "submitted job 1 "
wait_for "^ +1 +data-processor +succeeded" 20
keys Enter
wait_for "Job 1 +succeeded"
wait_for '"records": \['
keys l
wait_for "Logs of job 1"
keys a
wait_for "Logs of all jobs"
keys Tab Tab Tab Tab Tab Tab # logs -> engines -> cron -> queues -> metrics -> jobs -> vms
wait_for "[Pp]ool:? [0-9]+ VMs?"
keys Escape
quit_and_check_jobs small

echo "PASS: console tests"
