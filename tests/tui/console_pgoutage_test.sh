#!/usr/bin/env bash
# tests/tui/console_pgoutage_test.sh — the console on PostgreSQL through a server restart (issue
# 8), at 80x24: its private server is stopped as an administrator's restart does (pg_ctl -m fast)
# and kept down for 10 s while the Jobs, Engines and Metrics panes are shown — the console used to
# crash ~18 s in (the Metrics pane's header read freed an uninitialised pointer on its error path)
# and libpq's "FATAL: terminating connection" text was drawn raw over the screen. Now the console
# stays up, its header says "reconnecting", nothing but the console's own text is on the screen,
# and after the server is back the header says "running" again, the jobs are listed, and a job
# submitted after the restart shows up and succeeds. The Engines and Metrics panes, which read on
# handles of their own, say "reconnecting in N s: reason" while it is down and drop it once back. Quitting leaves no sanitizer report (make
# test runs the Sanitize build) and stderr holds nothing of libpq's.
#
# The server is the test's own (tests/store/pg_server.sh in its scratch directory), not the
# fixture's, which other tests use meanwhile.
#
#   console_pgoutage_test.sh ASPEN_BINARY PG_SERVER_SH
set -u

ASPEN=${1:?usage: console_pgoutage_test.sh ASPEN_BINARY PG_SERVER_SH}
PGS=${2:?usage: console_pgoutage_test.sh ASPEN_BINARY PG_SERVER_SH}
TMP=$(mktemp -d /tmp/aspen-tui-pgout.XXXXXX)
chmod 755 "$TMP" # the server may run as another user (as root: postgres)
. "$(dirname "$0")/tmux_lib.sh"
cleanup() {
    kill_servers
    bash "$PGS" stop "$TMP/pg" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
need_kvm_and_tmux
bash "$PGS" start "$TMP/pg" >/dev/null || fail "starting the test's PostgreSQL server"
DB=$(cat "$TMP/pg/conninfo")

"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 3 --db "$DB" --create >/dev/null ||
    fail "submit sleep"
launch out 80 24 "$DB" --workers 1
wait_for "Aspen console \| running"
keys 1
wait_for "succeeded +3 |ok +3 " 30

# the screen must hold only the console's own lines: its title on top, no libpq text anywhere
screen_is_clean() {
    local s
    s=$(screen)
    head -n 1 <<<"$s" | grep -q "^ Aspen console" || fail "the header is gone from the top line"
    grep -Eq "FATAL|terminating connection|server closed the connection" <<<"$s" &&
        fail "libpq's text is drawn on the screen"
    return 0
}

bash "$PGS" down "$TMP/pg" || fail "stopping the server (pg_ctl -m fast)"
down_at=$(date +%s%N)
wait_for "Aspen console \| reconnecting" 30
screen_is_clean
# 10 s down, going through the panes whose reads failed: Jobs, Engines, Metrics, Jobs
for pane in 4 7 1; do
    keys "$pane"
    wait_for "Aspen console \| reconnecting" 5
    # the Engines and Metrics panes read on their own handles: their error line says they retry
    # (one backoff shared with the Queues pane) and when, before the reason
    [ "$pane" = 1 ] || wait_for "reconnecting (in [0-9]+ s|now): " 15
    screen_is_clean
done
while (( ($(date +%s%N) - down_at) / 1000000 < 10000 )); do
    [ -s "$TMP/out.exit" ] && { cat "$TMP/out.err" >&2; fail "the console exited while the server was down"; }
    sleep 0.2
done
wait_for "Aspen console \| reconnecting 1[0-9]s" 10 # the header counts the outage
screen_is_clean
# the panes' error lines are cut to a row; each new error is kept whole in the Logs pane (trial 11)
keys 3
wait_for "^\[console\] (Engines|Metrics) pane: " 15
screen_is_clean
keys 1

bash "$PGS" up "$TMP/pg" || fail "starting the server again"
wait_for "Aspen console \| running" 60
screen_is_clean
wait_for "succeeded +3 |ok +3 " 30
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --db "$DB" >/dev/null ||
    fail "submit after the restart"
wait_for "succeeded +4 |ok +4 " 30
keys 4
wait_for "Engines on this database: " 15
wait_gone "reconnecting (in [0-9]+ s|now): " 40 # the pane's own handle is back too
keys 7
wait_gone "reconnecting (in [0-9]+ s|now): " 40
keys 1
screen_is_clean
quit_and_check out
grep -Eq "FATAL|terminating connection" "$TMP/out.err" && fail "libpq's text on the console's stderr: $(cat "$TMP/out.err")"
echo "PASS: console_pgoutage_test"
