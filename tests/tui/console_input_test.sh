#!/usr/bin/env bash
# tests/tui/console_input_test.sh — the console's keymap, back stack and input, driven through tmux
# against the real build (issue 9):
#   - bracketed paste: multi-line JSON pasted into the payload goes in whole (it used to spill into
#     Timeout, Priority and Attempts); a paste on the main screen never runs as keys (a pasted
#     "c" then "y" used to cancel the selected job);
#   - the form: typing into a field after tab replaces its value (1 then 500 is 500, not 1500), a
#     reset key, every opening starts from the defaults (no stale invalid value), S starts from
#     the selected job;
#   - the back stack: detail -> l (logs) -> esc is the detail again, -> esc the jobs;
#   - the detail wraps a long payload at 80 columns, or scrolls it sideways;
#   - the `:` prompt: history (up), Tab completion, the filter applies as you type;
#   - log search over what is on screen ("[job N]" included), starting empty, the match
#     highlighted and not the whole line; a later success clears the error;
#   - y / Y copy the id, the payload, the output to the clipboard (OSC 52, a tmux buffer here);
#   - mouse: a click on a tab switches panes, the wheel scrolls, a click on a row selects it;
#   - Ctrl-Z suspends to an interactive shell and fg brings the console back, working;
#   - settings (sort, wrap, ...) and :save'd filters kept between runs in the XDG config directory;
#   - at 80x24 the help is readable and complete (every command, scrolled to its end);
#   - the console on a database with thousands of jobs and a running `aspen worker`; a filter's
#     matches counted exactly and G at the true end of a filtered list.
# Every check polls `tmux capture-pane` until it holds or a deadline passes. Needs /dev/kvm and
# tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_input_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-input.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
WORKER_PID=
trap 'kill_servers; [ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

start() {
    launch "$1" "$2" "$3" "$TMP/$1.db" --workers 2 --grace 300
    wait_for "Aspen console \| running" 20
}
# paste TEXT: a bracketed paste (tmux sends the markers only if the console turned the mode on)
paste() {
    T set-buffer -b p -- "$1"
    T paste-buffer -p -b p -t c
}
# click X Y (1-based, as the terminal counts): an SGR mouse press and release
click() { T send-keys -t c -l $'\e[<0;'"$1;$2"'M'$'\e[<0;'"$1;$2"'m'; }
wheel_down() { T send-keys -t c -l $'\e[<65;'"$1;$2"'M'; }
job_json() { "$ASPEN" jobs --db "$1" --filter "id:$2" --json; }

echo "== 80x24: paste into the form, replace-on-type, reset, fresh openings, paste on the main screen"
start form 80 24
wait_for "No jobs yet"
keys s
wait_for "Submit a job"
wait_for "< echo-worker >"
keys Tab # the payload
paste $'{\n  "message": "pasted whole",\n  "lines": [1,\n    2]\n}'
wait_for '"message": "pasted whole",'
wait_for '"lines": \[1,'
wait_for "Timeout +30s "
wait_for "Priority +0 "
wait_for "Attempts +3 "
wait_for "payload is valid JSON"
# typing after tab replaces the value: 1, away, back, 500 is 500
keys Tab
type_text 1
wait_for "Timeout +1 "
keys Tab BTab
type_text 500s
wait_for "Timeout +500s "
screen | grep -q "Timeout  *1500s" && fail "typing after tab appended (1500s) instead of replacing"
keys C-s
wait_for "submitted job 1 "
wait_for "^ +1 +echo-worker +succeeded" 20
j=$(job_json "$TMP/form.db" 1)
echo "$j" | grep -q '"timeout_ms": 500000' || fail "job 1's timeout is not 500 s: $j"
echo "$j" | grep -q 'pasted whole' || fail "job 1's payload is not the pasted one: $j"
# a bad value, closed, opened again: the defaults, not the stale value
keys s
wait_for "Submit a job"
keys Tab Tab
type_text abc
wait_for "Timeout +abc"
keys Escape
wait_gone "Submit a job"
keys s
wait_for "Timeout +30s "
wait_for '"message": "hello from the console"'
# reset: a changed field back to its default
keys Tab Tab Tab
type_text 7
wait_for "Priority +7 "
keys C-r
wait_for "Priority +0 "
wait_for "reset to the defaults"
keys Escape
wait_gone "Submit a job"
# S: the form starts from the selected job (its payload, its timeout)
keys g S
wait_for "a copy of job 1"
wait_for '"message": "pasted whole"'
wait_for "Timeout +8m20s "
keys Escape
# a paste on the main screen runs nothing: "c" then "y" would cancel the selected job
keys s
wait_for "Submit a job"
type_text test-spin
wait_for "< test-spin >"
keys Tab Tab
type_text 600s
keys C-s
wait_for "^ +2 +test-spin +running" 20
keys g
paste "cy"
wait_for "paste ignored \(2 bytes\)"
sleep 1
screen | grep -q "Cancel job" && fail "a paste on the main screen opened the cancel question"
wait_for "^ +2 +test-spin +running"
# a paste into the filter prompt goes into the prompt
keys /
wait_for "^filter>"
keys C-u
paste "test-spin"
wait_for "^filter> test-spin"
wait_for "filter: test-spin" # applied as typed, before enter
wait_gone "^ +1 +echo-worker"
keys Enter
keys / Escape
wait_for "filter: \(none"
# a paste whose end marker never comes: after 3 s the console takes keys again (never deaf)
T send-keys -t c -l $'\e[200~stuck'
input_read # the 3 s count from when the console read the marker, not from when tmux was asked
sleep 3.5
keys 2
wait_for "paste ignored \(5 bytes\)"
wait_for "Pool [0-9]+ VMs?" # the key after it was a key
keys 1
# the detail wraps a long payload and output at 80 columns; w turns wrapping off, right scrolls
long=$(printf 'x%.0s' {1..200})
keys s
wait_for "Submit a job"
keys Tab
paste "{\"message\": \"${long}END-OF-LONG\"}"
wait_for "payload is valid JSON"
keys C-s
wait_for "^ +3 +echo-worker +succeeded" 20
keys g Enter
wait_for "Job 3 +succeeded"
keys NPage
# wrapped rows of an item are indented under it (issue 11): the end is found with the rows joined
joined_rows() { screen | sed -E 's/^ +//' | tr -d '\n'; }
for ((i = 0; i < 300; i++)); do joined_rows | grep -qF 'xxxxEND-OF-LONG"' && break; sleep 0.05; done
joined_rows | grep -qF 'xxxxEND-OF-LONG"' || fail "the wrapped payload's end is not shown"
screen | grep -Eq '^ {7}x+' || fail "the payload's wrapped rows are not indented under it"
keys w
wait_gone "END-OF-LONG"
for ((i = 0; i < 24; i++)); do keys Right; done # 8 columns each
wait_for 'xxxxEND-OF-LONG"'
keys Escape
quit_and_check form

echo "== 120x40: back stack, prompt history and completion, filter as you type, log search, mouse"
start nav 120 40
wait_for "No jobs yet"
keys s
wait_for "Submit a job"
keys C-s
wait_for "^ +1 vm_execute +echo-worker +succeeded" 20
keys s
wait_for "Submit a job"
keys Right
wait_for "< data-processor >"
keys C-s
wait_for "^ +2 vm_execute +data-processor +succeeded" 20
# y / Y copy through OSC 52 (tmux makes a buffer of it)
T set-option -s set-clipboard on
keys G y
wait_for "copied the id of job 1 \(1 bytes\)"
[ "$(T show-buffer)" = 1 ] || fail "y in the jobs pane did not copy the id: '$(T show-buffer)'"
# detail -> logs -> esc: the detail again (issue 9: it landed in all jobs' logs), esc: the jobs
keys Enter
wait_for "Job 1 +succeeded"
keys y
wait_for "copied the payload of job 1"
[ "$(T show-buffer)" = '{"message": "hello from the console"}' ] || fail "y in the detail did not copy the payload: '$(T show-buffer)'"
keys Y
wait_for "copied the output of job 1"
T show-buffer | grep -q "^Echo: " || fail "Y did not copy the output: '$(T show-buffer)'"
keys l
wait_for "Logs of job 1"
keys Escape
wait_for "Job 1 +succeeded"
keys "?"
wait_for "Aspen console - keys"
keys Escape
wait_for "Job 1 +succeeded"
keys Escape
wait_gone "Job 1 +succeeded"
wait_for "^ +2 vm_execute +data-processor"
# the command line: Tab completes a name, up brings back an earlier command
keys :
type_text "so"
keys Tab
wait_for "^:sort *$"
type_text "guest"
keys Enter
wait_for "sorted by guest"
wait_for "GUEST(▲|\^)" # a..z: ascending, the arrow up (▼ is descending everywhere)
keys :
type_text "ret"
keys Tab
wait_for "^:retry-failed *$"
keys C-u Escape
keys :
keys Up
wait_for "^:sort guest"
keys C-u
type_text "rerunn"
keys Enter
wait_for "did you mean :rerun"
# a filter applies as you type: no enter
keys /
type_text "data-processor"
wait_for "filter: data-processor"
wait_gone "^ +1 vm_execute +echo-worker"
keys Escape
wait_for "^ +1 vm_execute +echo-worker"
# log search: starts empty, matches "[job N]" as shown, highlights the match only
keys 3
wait_for "\[job 1\] echo-worker: received"
keys /
wait_for "^search> *$"
type_text "zz-no-such-text"
keys Enter
wait_for "no older match"
keys /
wait_for "^search> *$" # empty again, not pre-filled
type_text "job 1]"
keys Enter
wait_gone "no older match" # a later success clears the error
wait_for "^\[job 1\] echo-worker: received"
line=$(T capture-pane -e -p -t c | grep -F "job 1]" | grep -F "received" | head -1)
# the highlight (black on yellow) starts at the match and ends right after it
printf '%s' "$line" | grep -q $'\e\[30m\e\[43mjob 1\]\e\[39m\e\[49m echo-worker' ||
    printf '%s' "$line" | grep -q $'\e\[30;43mjob 1\]\e\[39;49m echo-worker' ||
    fail "the match is not highlighted alone: $(printf '%s' "$line" | cat -v)"
# mouse: a click on a tab, a click on a row, the wheel
click 12 4 # " 2 VMs "
wait_for "Warm pool: [0-9]+ VMs?"
click 3 4 # " 1 Jobs "
wait_for "^ +2 vm_execute"
click 10 6 # the first row
wait_for " 1/2 *$"
click 10 7 # the second row (sorted by guest): job 1
wait_for " 2/2 *$"
keys Enter
wait_for "Job 1 +succeeded"
keys Escape
quit_and_check nav

echo "== settings and saved filters kept between runs (XDG_CONFIG_HOME/aspen/console.conf)"
start cfg 80 24
keys :
type_text "sort guest"
keys Enter
wait_for "sort guest"
keys 3 w
wait_for "wrap on"
keys 1 /
type_text "state:failed"
keys Enter
wait_for "filter: state:failed"
keys :
type_text "save failures"
keys Enter
wait_for "saved the filter as 'failures'"
quit_and_check cfg
conf="$TMP/cfg.config/aspen/console.conf"
[ -f "$conf" ] || fail "no settings file at $conf"
grep -qx "sort = guest" "$conf" || fail "the sort was not kept: $(cat "$conf")"
grep -qx "wrap = yes" "$conf" || fail "wrap was not kept: $(cat "$conf")"
grep -qx "saved-filter failures = state:failed" "$conf" || fail "the saved filter is not in $conf"
start cfg 80 24
wait_for "filter: \(none: /\) \| sort guest" # the filter in effect is not carried over, the sort is
keys :
type_text "filters"
keys Enter
wait_for "saved: failures"
keys :
type_text "load failures"
keys Enter
wait_for "filter: state:failed"
keys :
type_text "load nope"
keys Enter
wait_for_text "unknown saved filter 'nope' (saved: failures)"
quit_and_check cfg

echo "== 80x24: help readable and complete"
start help 80 24
keys "?"
wait_for "Aspen console - keys"
seen= at_end=
for ((i = 0; i < 30; i++)); do
    seen+=$(screen)$'\n'
    # " A-B of N lines" in the title bar: B = N is the end
    pos=$(screen | grep -oE '[0-9]+-[0-9]+ of [0-9]+ lines' | head -1)
    [ -n "$pos" ] || fail "the help at 80x24 does not say where it is (it must scroll)"
    last=${pos#*-}; last=${last%% *}; total=${pos#* of }; total=${total%% *}
    if [ "$last" = "$total" ]; then at_end=1; break; fi
    keys NPage
    wait_gone "$pos" 5
done
[ -n "$at_end" ] || fail "the help's end is not reachable by PgDn"
echo "$seen" | grep -q "back to the queue\.$" || fail "the help's last line is not shown"
for c in help jobs vms logs quit submit pause resume job filter sort clear cancel rerun retry-failed follow wrap ts save load filters; do
    echo "$seen" | grep -q ":$c\b" || fail "the help at 80x24 does not list :$c"
done
for k in "enter" "esc" "space" "tab" "shift-tab" "\^Z" "\^S" "\^R" "paste" "mouse"; do
    echo "$seen" | grep -Eq "^ +$k[ /]" || echo "$seen" | grep -Eq " $k " || fail "the help at 80x24 does not list the key $k"
done
keys Escape
wait_gone "Aspen console - keys"
quit_and_check help

echo "== Ctrl-Z: suspended to the shell, fg brings it back"
SOCK="aspen-tui-input-$$-z"
SOCKS+=("$SOCK")
mkdir -p "$TMP/z.cwd"
T -f /dev/null new-session -d -s c -x 80 -y 24 -c "$TMP/z.cwd" \
    "env -i PATH='$PATH' HOME='$TMP' TERM=xterm-256color LANG=C.UTF-8 ASPEN_GUEST_DIR='${ASPEN_GUEST_DIR:-}' bash --norc --noprofile -i"
T set-option -t c status off >/dev/null
wait_for "^bash.*[#$] *$" 30 # the shell's prompt: it reads what is typed now
type_text "'$ASPEN' console --db '$TMP/z.db' --create --workers 1 --grace 300 2>'$TMP/z.err'"
keys Enter
wait_for "Aspen console \| running" 20
keys C-z
wait_for "Stopped" 10
wait_gone "Aspen console \|"
type_text "echo SHELL-IS-BACK"
keys Enter
wait_for "^SHELL-IS-BACK"
type_text "fg"
keys Enter
wait_for "Aspen console \| running" 10
wait_for "resumed"
keys s # it still takes keys
wait_for "Submit a job"
keys C-s
wait_for "^ +1 +echo-worker +succeeded" 20
keys q
wait_gone "Aspen console \|" 15
wait_for "^bash.*[#$] *$" 15
type_text 'echo EXIT=$?; stty -a | grep -o " icanon " | head -1'
keys Enter
wait_for "^EXIT=0"
wait_for "^ icanon *$"
grep -Eq 'Sanitizer|runtime error' "$TMP/z.err" && { cat "$TMP/z.err" >&2; fail "sanitizer report after suspend"; }
T kill-server

echo "== a database with thousands of jobs and an aspen worker running them"
"$ASPEN" submit --db "$TMP/busy.db" --create --type sleep --payload '{"ms": 20}' --count 3000 >/dev/null ||
    fail "cannot submit 3000 jobs"
"$ASPEN" submit --db "$TMP/busy.db" --type echo --payload '{}' --count 2000 >/dev/null ||
    fail "cannot submit 2000 jobs"
"$ASPEN" worker --db "$TMP/busy.db" --workers 2 --quiet >"$TMP/worker.out" 2>&1 &
WORKER_PID=$!
launch busy 80 24 "$TMP/busy.db" --workers 1 --grace 300
wait_for "Aspen console \| running" 20
wait_for "^ +[0-9]+ +type:(sleep|echo) +(queued|running|succeeded)" 20 # at 80 columns: the type in GUEST
wait_for "succeeded [0-9.]+k?" 20
keys G
wait_for " 5000/5000 *$"
keys g Enter
wait_for "Job 5000 "
keys Escape
keys /
type_text "succeeded"
wait_for "filter: succeeded"
keys Enter
wait_for "^ +[0-9]+ +type:(sleep|echo) +succeeded"
# a filter the state counts cannot total: counted exactly (off the UI thread), and G reaches the
# true end in one press (issue 9: "1/501+", and G took 12 presses)
keys /
keys C-u
type_text "type:echo"
keys Enter
wait_for "filter: type:echo"
wait_for " 1/2000 *$"
keys G
wait_for " 2000/2000 *$"
wait_for "^ +3001 +type:echo "
keys /
keys C-u
keys Enter
wait_for "filter: \(none"
keys 2
wait_for "Pool [0-9]+ VMs?"
keys 3
wait_for "Logs of all jobs"
keys 1
kill -0 "$WORKER_PID" || fail "the worker died while the console ran"
quit_and_check busy
kill "$WORKER_PID" 2>/dev/null
wait "$WORKER_PID" 2>/dev/null
WORKER_PID=
"$ASPEN" jobs --db "$TMP/busy.db" --state failed --limit 10 | grep -q "(no jobs match)" ||
    fail "jobs failed with the console and a worker on one database: $("$ASPEN" jobs --db "$TMP/busy.db" --state failed --limit 5)"

echo "PASS: console input tests"
