#!/usr/bin/env bash
# tests/tui/console_sort_test.sh — the whole-store sort, driven through tmux against the real build
# (issue 9). A store of 1,203 finished jobs where the slowest job (a 1.5 s sleep) and the most
# urgent one are the OLDEST, far outside the 500 rows the console loads around the cursor:
#   - :sort duration puts the slow job on top (the store sorted every job, not the loaded rows),
#     the DUR column carries the marker, the counter is 1/1203;
#   - :sort priority puts the urgent one on top; O reverses (the marker turns, the least urgent
#     newest-last order), G reaches the true last row in one press (1203/1203);
#   - paging down (PgDn 30 times: the table is read 250 rows around the cursor by key) keeps the
#     order and the counter; g comes back to the top;
#   - a filter and a sort together (succeeded + duration);
#   - `aspen jobs --sort duration,desc --limit 1` answers the same job, a bad column is refused.
# Every check polls `tmux capture-pane` until it holds or a deadline passes. Needs /dev/kvm and
# tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_sort_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-sort.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/sort.db
"$ASPEN" submit --type sleep --payload '{"ms":1500}' --db "$DB" --create >/dev/null || fail "submit sleep"  # job 1
"$ASPEN" submit --type echo --priority 9 --db "$DB" >/dev/null || fail "submit urgent"                   # job 2
"$ASPEN" submit --type echo --count 1200 --db "$DB" >/dev/null || fail "submit many"                     # 3..1202
"$ASPEN" submit --type echo --priority -5 --db "$DB" >/dev/null || fail "submit last"                    # 1203
"$ASPEN" worker --until-idle --quiet --workers 2 --db "$DB" || fail "worker"

echo "== the CLI sorts the whole store"
out=$("$ASPEN" jobs --db "$DB" --sort duration,desc --limit 1) || fail "jobs --sort: $out"
grep -Eq '^1 +succeeded +sleep' <<<"$out" || fail "jobs --sort duration,desc: $out"
out=$("$ASPEN" jobs --db "$DB" --sort priority --limit 1) || fail "jobs --sort priority: $out"
grep -Eq '^1203 +succeeded' <<<"$out" || fail "jobs --sort priority (ascending): $out"
out=$("$ASPEN" jobs --db "$DB" --sort durration 2>&1) && fail "a bad sort column was taken: $out"
grep -q "cannot sort by 'durration' (did you mean duration?)" <<<"$out" || fail "bad sort message: $out"

echo "== the console: :sort duration finds the slowest job among every job"
launch sort 120 30 "$DB" --workers 1
wait_for "Aspen console" 20
wait_for " 1/1203( |$)"
wait_for "^ +1203 echo"
keys :
type_text "sort duration"
keys Enter
wait_for "sorted by duration over every matching job"
wait_for "^ +1 sleep +- +succeeded"
wait_for "DUR(▼|v)"
wait_for " 1/1203( |$)"

echo "== :sort priority, O, G"
keys :
type_text "sort priority"
keys Enter
wait_for "PRI(▼|v)"
wait_for "^ +2 echo +- +succeeded +1/3 +9 "
keys O
wait_for "PRI(▲|\^)"
wait_for "^ +1203 echo +- +succeeded +1/3 +-5 "
keys G
wait_for " 1203/1203( |$)"
wait_for "^ +2 echo +- +succeeded +1/3 +9 "

echo "== paging down the sorted list keeps the order and the count"
keys :
type_text "sort id"
keys Enter
wait_for "^ +1203 echo"
for i in $(seq 30); do keys NPage; done
wait_for " ([5-9][0-9][0-9]|1[0-9]{3})/1203( |$)"
# the position once every PgDn is read and drawn (not after a second, which a loaded machine may
# not have spent on the 30 keys): all input read, then the same position twice, 0.3 s apart
input_read
pos= prev=
for ((i = 0; i < 100; i++)); do
    pos=$(screen | grep -Eo ' [0-9]+/1203' | head -1 | grep -Eo '^ [0-9]+' | tr -d ' ')
    [ -n "$pos" ] && [ "$pos" = "$prev" ] && break
    prev=$pos
    sleep 0.3
done
[ -n "$pos" ] && [ "$pos" = "$prev" ] || fail "the position after 30 PgDn did not settle"
# id order, newest first: the job at position P is job 1204 - P
wait_for "^ +$((1204 - pos)) echo"
keys g
wait_for " 1/1203( |$)"
wait_for "^ +1203 echo"

echo "== a filter and a sort together"
keys /
type_text "succeeded"
keys Enter
keys :
type_text "sort duration"
keys Enter
wait_for "^ +1 sleep +- +succeeded"
wait_for " 1/1203( |$)"
quit_and_check sort
echo "PASS"
