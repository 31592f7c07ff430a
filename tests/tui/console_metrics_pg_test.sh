#!/usr/bin/env bash
# tests/tui/console_metrics_pg_test.sh — the Metrics pane (7, issue 9) on a PostgreSQL database:
# the history of a worker process that exited shows the same numbers as `aspen metrics --json`
# (the total, every type / guest row, the header's 5-minute p50/p95); then another session holds
# the metrics table locked (ACCESS EXCLUSIVE) while the pane's read waits on it, and the keyboard
# still answers before the lock goes — `?` opens the help, `w` changes the window on screen —
# because the pane reads on the thread pool; when the lock goes the 24h window's numbers come in.
#
#   console_metrics_pg_test.sh ASPEN_BINARY   (ASPEN_PG_DIR: the tests' private server, fixture pg)
set -u

ASPEN=${1:?usage: console_metrics_pg_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-metrics-pg.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
. "$(dirname "$0")/metrics_lib.sh"
trap pg_cleanup EXIT
need_kvm_and_tmux
pg_create_db aspen_tui_metrics_$$

run_history_jobs
launch pg 80 24 "$DB application_name=$CONSOLE_APP" --workers 0
wait_for "Aspen console"
# the header names the database at 80 columns on PostgreSQL too (host/db, or the database's
# name, cut with '~' when even that is too long): it named none, where SQLite shows db aspen.db
wait_for "^ Aspen console .* db aspen_tui_metr"
keys 7
wait_for "Metrics, last 1h, every engine: all types"
check_numbers

pg_lock_table metrics
pg_wait_waiting metrics # the pane's read (every 2 s while shown) waits on the lock
keys w
wait_for "Metrics, last 24h" 30 # the window is the console's own state: drawn before the read ends
pg_still_waiting metrics "the 24h window was drawn"
help_opens_fast metrics
pg_unlock_table
wait_for "one column = 20m" 10
wait_for "^> all +18 +1 " 10
quit_and_check pg
echo "PASS: console_metrics_pg_test"
