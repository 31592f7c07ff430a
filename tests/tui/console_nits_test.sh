#!/usr/bin/env bash
# tests/tui/console_nits_test.sh — console defects, driven through tmux against the real build at
# 80x24:
#   - the jobs pane's position counter follows the row the cursor is on while the job under the
#     cursor moves deep in a sorted list (:sort state, 300 rows above it, the job finishing): it
#     never keeps the job's old position;
#   - the submit form's summary line keeps the useful part of an invalid-JSON error (line, column,
#     what was expected) on screen at 80x24, alone and beside seven other bad fields (Memory last):
#     none is cut off the end, each is named, the cursor's field says its rule.
# Every check polls `tmux capture-pane` until it holds or a deadline passes. Needs /dev/kvm and
# tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_nits_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-nits.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

# the id on the highlighted (reverse video) row of the jobs table, or nothing
selected_id() {
    T capture-pane -p -e -t c | grep -a $'^\e\\[1;7m' | sed 's/\x1b\[[0-9;]*m//g' |
        awk '$1 ~ /^[0-9]+$/ {print $1; exit}'
}
# the counter's position (the N of " N/TOTAL" at the header row's end)
counter_pos() { screen | grep -Eo " [0-9]+/$1 *\$" | head -1 | grep -Eo '^ [0-9]+' | tr -d ' '; }

echo "== the counter follows the cursor's row while the job under it moves (sort state)"
DB=$TMP/pos.db
"$ASPEN" submit --type echo --count 300 --db "$DB" --create >/dev/null || fail "submit"      # 1..300
"$ASPEN" worker --until-idle --quiet --workers 2 --db "$DB" || fail "worker"
"$ASPEN" submit --type echo --count 300 --delay 1h --db "$DB" >/dev/null || fail "submit later"  # 301..600
"$ASPEN" submit --type echo --delay 30s --db "$DB" >/dev/null || fail "submit soon"          # 601
launch pos 80 24 "$DB" --workers 1
wait_for "Aspen console" 20
keys :
type_text "sort state"
keys Enter
wait_for "sorted by state over every matching job"
wait_for " 1/601 *$"
# the status and " 1/601" are there before the sorted rows land (the fetch is asynchronous), and
# keys sent meanwhile move through the old rows: wait until row 1 is the first scheduled job
for ((i = 0; i < 300; i++)); do
    [ "$(selected_id)" = 301 ] && break
    sleep 0.05
done
[ "$(selected_id)" = 301 ] || fail "after :sort state row 1 is job '$(selected_id)', not 301"
# the scheduled jobs first (301..601), then the succeeded ones: job 601 is row 301
for i in $(seq 30); do keys j j j j j j j j j j; done
input_read
wait_for " 301/601 *$"
[ "$(selected_id)" = 601 ] || fail "the cursor is on job '$(selected_id)', not 601"
# job 601 comes due and succeeds: it moves to row 601 (after job 300), out of the rows loaded
wait_for "scheduled 300  running 0  succeeded 301" 90
ok=
for ((i = 0; i < 100; i++)); do
    pos=$(counter_pos 601) id=$(selected_id)
    if [ -n "$pos" ] && [ -n "$id" ]; then
        at=$("$ASPEN" jobs --db "$DB" --sort state --all | awk -v id="$id" 'NR > 1 && $1 == id {print NR - 1}')
        [ "$at" = "$pos" ] && ok=1 && break
    fi
    sleep 0.2
done
[ -n "$ok" ] || fail "the counter says $pos/601 but the cursor's job $id is row $at of the sorted list"
# and it holds on the next refreshes too
sleep 2
pos=$(counter_pos 601) id=$(selected_id)
at=$("$ASPEN" jobs --db "$DB" --sort state --all | awk -v id="$id" 'NR > 1 && $1 == id {print NR - 1}')
[ "$at" = "$pos" ] || fail "later: the counter says $pos/601 but the cursor's job $id is row $at"
quit_and_check pos

echo "== the submit form's summary keeps a long JSON error's place and every field at 80x24"
DB=$TMP/form.db
launch form 80 24 "$DB" --workers 0
wait_for "Aspen console" 20
keys s
wait_for "Submit a job"
# the summary's text, or a failure naming what it lacks
summary_has() {
    local i
    for ((i = 0; i < 100; i++)); do form_joined | grep -qF -- "$1" && return 0; sleep 0.05; done
    fail "the form does not say '$1': $(form_joined)"
}
# nothing of the summary cut: no row under [ Submit ] ends in "..." (the cut marker)
not_cut() {
    screen | sed -n '/\[ Submit \]/,$p' | grep -Eq '\.\.\. *x$' && fail "the summary is cut: $(form_joined)"
    return 0
}
keys Tab C-u
for i in 1 2 3 4 5 6 7 8; do keys C-k BSpace; done
# a duplicate key: the parser's message quotes it after "near" (jansson quotes up to about 20
# characters), after a long payload (a column of three digits)
key=kkkkkkkkkkkkkkkkkk
pad=$(printf 'x%.0s' $(seq 120))
type_text "{\"pad\": \"$pad\", \"$key\":1,\"$key\":2}"
wait_for "x!Payload"
summary_has "payload: not JSON at line 1, column 1"
summary_has ": duplicate object key near '\"$key\"'" # alone: the whole token
not_cut
# seven more bad fields, the Memory field last: each is named, the payload keeps its place
for v in abc x 0 0 "" "bad queue!" "for=10x" "10x"; do
    keys Tab C-u
    [ -n "$v" ] && type_text "$v"
done
wait_for "x!Memory +10x"
summary_has "8 fields to fix (marked !): payload: not JSON at line 1, column "
summary_has "duplicate object key near '\"kkkkkkkk...'" # beside others: cut short, inside its quotes
summary_has "memory: 64K to 1G, like 1M or 512K" # the field the cursor is on
for f in timeout priority attempts count queue unique; do
    form_joined | grep -Eq "also ([a-z]+, )*$f(,| |$)" || fail "the summary does not name $f: $(form_joined)"
done
not_cut
# the cursor on another bad field: that one says its rule
keys BTab BTab # Memory -> Unique -> Queue
summary_has "queue: 1 to 64 letters, digits, _ - ."
form_joined | grep -Eq "also ([a-z]+, )*memory" || fail "memory is no longer named: $(form_joined)"
not_cut
keys Escape
wait_gone "Submit a job"
quit_and_check form

echo "PASS"
