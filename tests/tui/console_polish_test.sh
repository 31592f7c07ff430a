#!/usr/bin/env bash
# tests/tui/console_polish_test.sh — what a new user's trial of the console found, driven through
# tmux against the real build at 80x24 (issue 9):
#   - the detail view wraps long lines at word boundaries: no row ends in the middle of a word;
#   - a message longer than the screen is wrapped onto the rows above the footer, its end visible,
#     not cut at 80 columns;
#   - one log line is "1 line", not "1 lines";
#   - a filter that does not parse says why while it is typed (before enter), and the message goes
#     once the text parses.
# Every check polls `tmux capture-pane` until it holds or a deadline passes. Needs /dev/kvm and
# tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_polish_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-polish.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/polish.db
words=""
for i in $(seq 10 69); do words+="wd$i "; done
words=${words% }
# echo-worker logs one line and echoes the payload: long lines in the payload and the output
"$ASPEN" submit echo-worker --payload "{\"message\":\"$words\"}" --db "$DB" --create >/dev/null ||
    fail "submit"
"$ASPEN" worker --until-idle --quiet --db "$DB" || fail "worker"

launch polish 80 24 "$DB" --workers 1
wait_for "Aspen console" 20
wait_for "^ +1 echo-worker +succeeded"

echo "== the detail: 1 line, words never cut"
keys Enter
wait_for "Job 1 +succeeded"
keys G
wait_for "Logs \(1 line\)"
screen | grep -q "1 lines" && fail "the detail says '1 lines'"
keys g
# three rows down: the Spec's queue line (trial 11) pushed the payload's second row under the
# bottom of the top page at 24 rows
keys j j j
wait_for "wd10 wd11"
wait_for "^ +queue +default *$" # still on screen: j scrolled the view, not past the Spec
# every token of the payload on screen is whole: a cut would leave "wd1" / "3" pieces at a row's
# end or start
cut=$(screen | grep wd | tr -s ' ' '\n' | tr -d '",' | grep -E '^wd' | grep -vE '^wd[0-9]{2}$' || true)
[ -z "$cut" ] || fail "a word was cut at a row's end: '$cut'"
screen | grep -Eq '^ ?[0-9]{1,2}"? +wd' && fail "a row starts with the rest of a cut word"
[ "$(screen | grep -c wd)" -ge 2 ] || fail "the payload's line did not wrap onto a second row"
# and the payload's last words are there, further down the pager
keys j j j j j j
wait_for "wd69"
keys Escape

echo "== a long message is wrapped, not cut"
keys :
type_text "priority 5"
keys Enter
wait_for "priority: job 1 is succeeded: only a waiting job's priority can change"
# the whole message, its rows joined: nothing of it is cut
joined() { screen | sed 's/ *$//' | tr '\n' ' ' | tr -s ' '; }
# the store's commands name this database (not the default one), as every printed command does
dba="--db '$(realpath "$DB")'"
msg="priority: job 1 is succeeded: only a waiting job's priority can change (queued or scheduled); to run it again with another priority: aspen rerun $dba, then aspen priority $dba"
for ((i = 0; i < 100; i++)); do joined | grep -qF -- "$msg" && break; sleep 0.05; done
joined | grep -qF -- "$msg" || fail "the message is not shown whole: $(joined)"

echo "== a bad filter says why as it is typed"
keys /
type_text "stat:failed"
wait_for "filter: .*stat"
wait_for "did you mean 'state:'"
keys BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace
type_text "failed"
wait_gone "did you mean 'state:'"
keys Enter
quit_and_check polish
echo "PASS"
