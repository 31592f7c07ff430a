#!/usr/bin/env bash
# tests/tui/console_unique_retry_test.sh — the console's retry and rerun keep a unique job unique
# (issue 10, trial 10): job 1 of key K failed and job 2 of K is queued; R (retry every failed job
# matching the filter) leaves job 1 failed and says which job holds its key and what to do; r on
# job 1 (a rerun keeps its rule) answers with job 2 as a duplicate and makes no job. The database
# is prepared with the CLI, the queues paused so job 2 stays queued.
#
#   console_unique_retry_test.sh ASPEN_BINARY   (with ASPEN_PG_DIR set: on a new PostgreSQL database)
set -u

ASPEN=${1:?usage: console_unique_retry_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-uretry.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; pg_drop_db; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

if [ -n "${ASPEN_PG_DIR:-}" ]; then # the PostgreSQL run (tui_console_unique_retry_pg)
    pg_create_db aspen_tui_uretry_$$
else
    DB=$TMP/r.db
fi
A() { "$ASPEN" "$@" --db "$DB"; }
state_of() { A show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
njobs() { A jobs --all --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

A jobs --create >/dev/null || fail "creating the database"
J1=$(A submit --type sleep --payload '{"ms":0,"fail":true}' --max-attempts 1 --unique-key K) ||
    fail "submit job 1"
A worker --until-idle --quiet >/dev/null 2>&1 || fail "running job 1"
[ "$(state_of "$J1")" = failed ] || fail "job 1 did not fail: $(state_of "$J1")"
A pause >/dev/null || fail "pause"
J2=$(A submit --type sleep --payload '{"ms":0}' --unique-key K 2>/dev/null) || fail "submit job 2"
[ "$J2" != "$J1" ] || fail "job 2 was a duplicate of the failed job 1"

launch r 200 30 "$DB" --workers 1
wait_for "Aspen console"
wait_for "^ +$J1 +sleep +- +failed"
keys R
wait_for "Retry every failed job matching"
keys y
wait_for "retried 0, 1 refused: job $J1 not retried: job $J2 \(queued\) holds its unique key 'K'; cancel job $J2 first"
[ "$(state_of "$J1")" = failed ] || fail "R retried job 1 while job 2 holds its key: $(state_of "$J1")"

# r on job 1 (the only failed job under the filter): the holder is the answer, no job is made
keys /
wait_for "^filter>"
keys C-u
type_text "failed"
keys Enter
wait_gone "^ +$J2 +sleep"
keys r
wait_for "rerun: duplicate: job $J2 already exists for unique key K \(queued"
[ "$(njobs)" = 2 ] || fail "the rerun made a job while job 2 holds the key: $(njobs) jobs"

# job 2 cancelled, the key is free: R retries job 1
A cancel "$J2" >/dev/null || fail "cancel job 2"
keys R
wait_for "Retry every failed job matching 'failed'"
keys y
wait_for "retried 1 failed job"
[ "$(state_of "$J1")" = queued ] || fail "R did not retry job 1 once the key was free"
quit_and_check r
echo "PASS: console_unique_retry_test"
