#!/usr/bin/env bash
# tests/tui/console_queues_pg_test.sh — the Queues pane on a PostgreSQL database keeps answering
# the keyboard while the database is slow to answer it (issue 10): another session holds the
# queues table locked (ACCESS EXCLUSIVE, as a long migration or a stuck host would) until the test
# lets go; meanwhile the pane's read waits on it, `p` on the pane is asked for (it waits for the
# lock), and `?` still opens the help and `esc` closes it while the read waits, because the pane's
# reads and writes run on the thread pool, never on the UI thread. When the lock goes, the pause is
# written (the database says so) and shown.
#
#   console_queues_pg_test.sh ASPEN_BINARY   (ASPEN_PG_DIR: the tests' private server, fixture pg)
set -u

ASPEN=${1:?usage: console_queues_pg_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-queues-pg.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap pg_cleanup EXIT
need_kvm_and_tmux
pg_create_db aspen_tui_queues_$$

"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 50 --queue emails --create-queue --db "$DB" --create \
    >/dev/null || fail "submit to emails"
"$ASPEN" queue set emails --limit 2 --db "$DB" >/dev/null || fail "queue set"
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause" # nothing runs: the figures stay put

launch q 80 24 "$DB application_name=$CONSOLE_APP" --workers 1
wait_for "Aspen console"
keys 6
wait_for "^ +emails +50 +0 +0 +0 +2 "

# Another session takes the queues table until pg_unlock_table: every read and write of it waits.
pg_lock_table queues
pg_wait_waiting queues # the pane's once-a-second read waits on the lock

keys j
keys p # asked while the read waits: goes after it, on the pool
help_opens_fast queues
keys 1
wait_for "ID.* GUEST +STATE" 30 # another pane while the queues still wait
pg_still_waiting queues "the jobs pane was shown"
keys 6

pg_unlock_table
wait_for "^ +emails +50 +0 +0 +0 +2 +- +paused " 10
[ "$("$ASPEN" queues --json --db "$DB" | python3 -c '
import json, sys
print([q["paused"] for q in json.load(sys.stdin) if q["name"] == "emails"][0])')" = True ] ||
    fail "emails is not paused in the database after the lock"
quit_and_check q
echo "PASS: console_queues_pg_test"
