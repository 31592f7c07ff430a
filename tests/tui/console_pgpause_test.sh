#!/usr/bin/env bash
# tests/tui/console_pgpause_test.sh — the console on PostgreSQL when its server stops answering
# without closing the connection (issue 8): the test's own server is SIGSTOPped (as a paused VM or
# a network path that drops packets looks to a client) for 12 s, under a 3 s answer deadline
# (statement_timeout 1 s in --db: options=-c statement_timeout=1000). The console's engine used to
# wait on the silent server forever, so the header said "running" with nothing running. Now the
# header says "reconnecting", the Logs pane has the engine's line saying the server "has not
# answered for 3.0 s (server stopped or network path lost", and after SIGCONT the header says
# "running" again and a job submitted after it succeeds.
#
# Only this test's server is stopped: its postmaster (postmaster.pid in its data directory) and
# that postmaster's children.
#
#   console_pgpause_test.sh ASPEN_BINARY PG_SERVER_SH
set -u

ASPEN=${1:?usage: console_pgpause_test.sh ASPEN_BINARY PG_SERVER_SH}
PGS=${2:?usage: console_pgpause_test.sh ASPEN_BINARY PG_SERVER_SH}
TMP=$(mktemp -d /tmp/aspen-tui-pgpause.XXXXXX)
chmod 755 "$TMP" # the server may run as another user (as root: postgres)
. "$(dirname "$0")/tmux_lib.sh"
STOPPED=
resume() {
    local p
    for p in $STOPPED; do kill -CONT "$p" 2>/dev/null; done
    STOPPED=
}
cleanup() {
    resume
    kill_servers
    bash "$PGS" stop "$TMP/pg" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
need_kvm_and_tmux
bash "$PGS" start "$TMP/pg" >/dev/null || fail "starting the test's PostgreSQL server"
PLAIN=$(cat "$TMP/pg/conninfo")
# the same server as a URI (the console's launch quotes --db in single quotes), with the short
# deadline and a short connect_timeout
SOCKDIR=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$PLAIN")
PORT=$(cat "$TMP/pg/port")
DB="postgresql://aspen@/postgres?host=$SOCKDIR&port=$PORT&connect_timeout=2&options=-c%20statement_timeout%3D1000"

pause() {
    local data pm kid
    data=$(head -n 1 "$TMP/pg/state")
    pm=$(head -n 1 "$data/postmaster.pid")
    [ -n "$pm" ] && [ "$pm" -gt 1 ] || fail "no postmaster pid in $data/postmaster.pid"
    kill -STOP "$pm" || fail "SIGSTOP of the postmaster $pm"
    STOPPED=$pm
    for kid in $(ps -o pid= --ppid "$pm"); do
        kill -STOP "$kid" 2>/dev/null && STOPPED="$kid $STOPPED"
    done
}

"$ASPEN" submit --type sleep --payload '{"ms": 10}' --count 3 --db "$PLAIN" --create >/dev/null ||
    fail "submit sleep"
launch out 200 30 "$DB" --workers 1
wait_for "Aspen console \| running"
keys 1
wait_for "succeeded +3 |ok +3 " 30

pause
stopped_at=$(date +%s%N)
wait_for "Aspen console \| reconnecting" 30
keys 3
wait_for "has not answered for [0-9.]+ s \(server stopped or network path" 30
while (( ($(date +%s%N) - stopped_at) / 1000000 < 12000 )); do
    [ -s "$TMP/out.exit" ] && { cat "$TMP/out.err" >&2; fail "the console exited while the server was stopped"; }
    sleep 0.2
done
keys 1
wait_for "Aspen console \| reconnecting" 15
resume
wait_for "Aspen console \| running" 60
wait_for "succeeded +3 |ok +3 " 30
"$ASPEN" submit --type sleep --payload '{"ms": 10}' --db "$PLAIN" >/dev/null ||
    fail "submit after SIGCONT"
wait_for "succeeded +4 |ok +4 " 30
quit_and_check out
echo "PASS: console_pgpause_test"
