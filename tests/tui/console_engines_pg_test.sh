#!/usr/bin/env bash
# tests/tui/console_engines_pg_test.sh — the console on a PostgreSQL database keeps answering the
# keyboard while the database is slow to answer the Engines pane (issue 8): another session holds
# the engines table locked (ACCESS EXCLUSIVE, as a long migration or a stuck host would) for 6 s;
# meanwhile the pane is shown and `?` opens the help within 2 s and `esc` closes it, because the
# engines list (and other hosts' log lines) is read on the thread pool, never on the UI thread.
# When the lock goes, the pane lists the console's own engine again.
#
#   console_engines_pg_test.sh ASPEN_BINARY   (ASPEN_PG_DIR: the tests' private server, fixture pg)
set -u

ASPEN=${1:?usage: console_engines_pg_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-engines-pg.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap pg_cleanup EXIT
need_kvm_and_tmux
pg_create_db aspen_tui_engines_$$

launch eng 120 40 "$DB" --workers 1
wait_for "Aspen console"
keys 4
wait_for "Engines on this database: 1 "

# Another session takes the engines table and keeps it 6 s: every read of it waits meanwhile.
pg_lock_table engines 6
sleep 1.5 # the console's once-a-second read of the engines is now waiting on the lock

keys "?"
wait_for "Aspen console - keys" 2
keys Escape
wait_gone "Aspen console - keys" 2
keys C-l # a refresh asked while the read waits: still no freeze
keys "?"
wait_for "Aspen console - keys" 2
keys Escape
wait_gone "Aspen console - keys" 2

wait "$LOCKER"
LOCKER=
wait_for "Engines on this database: 1 " 10
screen | grep -Eq '^\* +[0-9]+ ' || fail "the console's own engine is not listed after the lock"
quit_and_check eng
echo "PASS: console_engines_pg_test"
