#!/usr/bin/env bash
# tests/tui/console_jobops_test.sh — the console's job operations, driven through tmux against the
# real build (issue 9):
#   - d deletes the selected job after a question naming it (n keeps it); a queued job is refused
#     with the store's reason, never deleted;
#   - d on marked jobs asks with their count and deletes them all;
#   - D deletes every finished job matching the filter, the question giving the exact count
#     (queued matches not counted and kept);
#   - :export FILE writes every job matching the filter, one JSON object a line, into a new file
#     (an existing file is refused, never overwritten).
# The database is prepared with the CLI, the queue paused so a queued job stays queued. Every check
# polls `tmux capture-pane` until it holds or a deadline passes. Needs /dev/kvm and tmux: fails,
# never skips, without them.
set -u

ASPEN=${1:?usage: console_jobops_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-jobops.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/ops.db
ids() { "$ASPEN" jobs --db "$DB" --all --json | grep -Eo '"id": [0-9]+' | grep -Eo '[0-9]+' | sort -n | tr '\n' ' '; }
want_ids() {
    local got i
    for ((i = 0; i < 100; i++)); do
        got=$(ids)
        [ "$got" = "$1" ] && return 0
        sleep 0.05
    done
    fail "jobs in the database: '$got', want '$1'"
}

"$ASPEN" submit --type echo --tag a --count 5 --db "$DB" --create >/dev/null || fail "submit"
"$ASPEN" worker --until-idle --quiet --db "$DB" || fail "worker"
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause"
"$ASPEN" submit --type echo --tag a --db "$DB" >/dev/null || fail "submit queued" # job 6, queued
want_ids "1 2 3 4 5 6 "

echo "== export: every job, then the filter's, into new files"
launch ops 100 30 "$DB" --workers 1 --grace 300
wait_for "Aspen console \| PAUSED" 20
wait_for " 6 echo +- +queued"
keys :
type_text "export $TMP/all.jsonl"
keys Enter
wait_for "exported 6 jobs matching '\(no filter\)' to $TMP/all.jsonl"
[ "$(wc -l <"$TMP/all.jsonl")" = 6 ] || fail "all.jsonl: $(cat "$TMP/all.jsonl")"
grep -c '"state":"succeeded"' "$TMP/all.jsonl" | grep -qx 5 || fail "all.jsonl states: $(cat "$TMP/all.jsonl")"
grep -q '"id":6,.*"state":"queued"' "$TMP/all.jsonl" || fail "all.jsonl lacks job 6"
keys :
type_text "export $TMP/all.jsonl"
keys Enter
wait_for "export: cannot create .*File exists"
keys :
type_text "filter queued"
keys Enter
keys :
type_text "export $TMP/queued.jsonl"
keys Enter
wait_for "exported 1 job matching 'queued'"
[ "$(wc -l <"$TMP/queued.jsonl")" = 1 ] || fail "queued.jsonl: $(cat "$TMP/queued.jsonl")"
keys :
type_text "filter"
keys Enter
wait_for " 1 echo +- +succeeded"

echo "== d: the selected job, asked first; a queued one refused"
keys g
keys d
wait_for "Delete job 6 \(attempts, logs too\)\?"
keys y
wait_for "deleted 0, 1 refused: job 6 is queued: only finished jobs can be deleted"
want_ids "1 2 3 4 5 6 "
keys j
keys d
wait_for "Delete job 5 \(attempts, logs too\)\?"
keys n
wait_gone "Delete job 5"
want_ids "1 2 3 4 5 6 "
keys d
wait_for "Delete job 5 \(attempts, logs too\)\?"
keys y
wait_for "deleted 1 job"
want_ids "1 2 3 4 6 "
wait_gone " 5 echo +- +succeeded"

echo "== d on marked jobs"
keys g
keys j
wait_for " 4 echo +- +succeeded"
keys Space
keys Space # marks 4 and 3 (space moves down)
keys d
wait_for "Delete 2 marked jobs \(attempts, logs too\)\?"
keys y
wait_for "deleted 2 jobs"
want_ids "1 2 6 "

echo "== D: every finished job matching the filter, with the count"
keys :
type_text "filter tag:a"
keys Enter
keys D
wait_for "Delete 2 finished jobs matching 'tag:a' \(attempts, logs too\)\?"
keys n
want_ids "1 2 6 "
keys D
wait_for "Delete 2 finished jobs matching 'tag:a'"
keys y
wait_for "deleted 2 jobs"
want_ids "6 "
keys D
wait_for "no finished job matches 'tag:a': nothing to delete"
keys :
type_text "filter"
keys Enter
quit_and_check ops
want_ids "6 "

echo "PASS: console job operations"
