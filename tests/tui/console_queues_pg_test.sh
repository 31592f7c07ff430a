#!/usr/bin/env bash
# tests/tui/console_queues_pg_test.sh — the Queues pane on a PostgreSQL database keeps answering
# the keyboard while the database is slow to answer it (issue 10): another session holds the
# queues table locked (ACCESS EXCLUSIVE, as a long migration or a stuck host would) until the test
# lets go; meanwhile the pane's read waits on it, `p` on the pane is asked for (it waits for the
# lock), and `?` still opens the help and `esc` closes it while the read waits, because the pane's
# reads and writes run on the thread pool, never on the UI thread. When the lock goes, the pause is
# written (the database says so) and shown.
# Then, at 80x24, a database that refuses new connections (ALLOW_CONNECTIONS false, as during a
# server's maintenance) when the pane first opens its handle: the pane says it cannot open the
# database and "reconnecting in N s", keeps trying with a growing wait, and shows the queues once
# connections are allowed again — the failure is not remembered forever.
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

launch r 80 24 "$DB" --workers 1
wait_for "Aspen console"
psql "$SERVER" -qAt -c "ALTER DATABASE $PG_DBNAME ALLOW_CONNECTIONS false" >/dev/null ||
    fail "refusing connections"
keys 6
wait_for "reconnecting in [0-9]+ s: cannot open the database"
# the second failure waits longer than the first (1 s, then 2 s, ...): it is retried, not stuck
wait_for "reconnecting in ([2-9]|[12][0-9]|30) s: cannot open the database" 20
psql "$SERVER" -qAt -c "ALTER DATABASE $PG_DBNAME ALLOW_CONNECTIONS true" >/dev/null ||
    fail "allowing connections again"
wait_for "^ +emails +50 +0 +0 +0 +2 +- +paused " 40
wait_gone "reconnecting" 5
# a change goes through the new handle
keys j
keys p
wait_for "queue emails resumed"
[ "$("$ASPEN" queues --json --db "$DB" | python3 -c '
import json, sys
print([q["paused"] for q in json.load(sys.stdin) if q["name"] == "emails"][0])')" = False ] ||
    fail "emails is still paused in the database after the reconnect"
quit_and_check r
echo "PASS: console_queues_pg_test"
