#!/usr/bin/env bash
# tests/tui/console_engines_pg_test.sh — the console on a PostgreSQL database keeps answering the
# keyboard while the database is slow to answer the Engines pane (issue 8): another session holds
# the engines table locked (ACCESS EXCLUSIVE, as a long migration or a stuck host would) until the
# test lets go; meanwhile the pane is shown, its read waits on the lock, and `?` opens the help and
# `esc` closes it while that read still waits, because the engines list (and other hosts' log
# lines) is read on the thread pool, never on the UI thread. When the lock goes, the pane lists the
# console's own engine again.
#
#   console_engines_pg_test.sh ASPEN_BINARY   (ASPEN_PG_DIR: the tests' private server, fixture pg)
set -u

ASPEN=${1:?usage: console_engines_pg_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-engines-pg.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap pg_cleanup EXIT
need_kvm_and_tmux
pg_create_db aspen_tui_engines_$$

launch eng 120 40 "$DB application_name=$CONSOLE_APP" --workers 1
wait_for "Aspen console"
keys 4
wait_for "Engines on this database: 1 "

# Another session takes the engines table until pg_unlock_table: every read of it waits meanwhile.
pg_lock_table engines
pg_wait_waiting engines # the console's once-a-second read of the engines waits on the lock

help_opens_fast engines
keys C-l # a refresh asked while the read waits: still no freeze
help_opens_fast engines

pg_unlock_table
wait_for "Engines on this database: 1 " 10
screen | grep -Eq '^\* +[0-9]+ ' || fail "the console's own engine is not listed after the lock"
quit_and_check eng
echo "PASS: console_engines_pg_test"
