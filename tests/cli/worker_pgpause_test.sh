#!/usr/bin/env bash
# tests/cli/worker_pgpause_test.sh — `aspen worker` on PostgreSQL when the server stops answering
# without closing the connection (its processes SIGSTOPped: a paused VM, a network path that drops
# packets without a reset). Every libpq call waited for such a server forever, so the worker hung
# with no word, and Ctrl-C could not stop it. Now each wait for an answer has a deadline
# (statement_timeout + 2 s; docs/STORE.md "Answer deadline"):
#
#   1. jobs running, the server stopped for 10 s under a 3 s deadline (options=-c
#      statement_timeout=1000 in --db): the worker says "reconnecting ... has not answered for 3 s
#      (server stopped or network path lost)", stays up, and once the server is continued it
#      finishes every job, each exactly once (one attempt, one success).
#   2. an idle worker under the default deadline (30 s + 2 s), the server stopped: Ctrl-C stops the
#      worker within a few seconds (the stop's calls give up on the silent server after 0.5 s, and
#      after that at once), where the deadline alone would have held it for 32 s per call.
#
# Only this test's own server is stopped and continued: its postmaster (the first line of
# postmaster.pid in its data directory) and that postmaster's children.
#
#   worker_pgpause_test.sh ASPEN_BINARY PG_SERVER_SH
set -u

ASPEN=${1:?usage: worker_pgpause_test.sh ASPEN_BINARY PG_SERVER_SH}
PGS=${2:?usage: worker_pgpause_test.sh ASPEN_BINARY PG_SERVER_SH}
TMP=$(mktemp -d /tmp/aspen-wpgpause.XXXXXX)
chmod 755 "$TMP" # the server may run as another user (as root: postgres)
WPID=
STOPPED=

resume() {
    local p
    for p in $STOPPED; do kill -CONT "$p" 2>/dev/null; done
    STOPPED=
}
cleanup() {
    resume
    [ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null
    bash "$PGS" stop "$TMP/pg" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

ERR=
fail() {
    resume
    echo "FAIL: $*" >&2
    [ -n "$ERR" ] && [ -f "$ERR" ] && { echo "---- worker stderr ($ERR) ----" >&2; cat "$ERR" >&2; }
    exit 1
}

[ -x "$ASPEN" ] || fail "no aspen binary at $ASPEN (build first)"
[ -e /dev/kvm ] || fail "/dev/kvm is missing: the worker runs jobs in KVM micro-VMs"
command -v psql >/dev/null || fail "psql is not installed (apt-get install postgresql-client)"
bash "$PGS" start "$TMP/pg" >/dev/null || fail "starting the test's PostgreSQL server"
BASE=$(cat "$TMP/pg/conninfo")
sql() { psql "$1" -qAt -c "$2" 2>/dev/null; }

# pause: SIGSTOP this test's postmaster (first: it forks no one then) and each of its children
pause() {
    local data pm
    data=$(head -n 1 "$TMP/pg/state")
    pm=$(head -n 1 "$data/postmaster.pid")
    [ -n "$pm" ] && [ "$pm" -gt 1 ] || fail "no postmaster pid in $data/postmaster.pid"
    kill -STOP "$pm" || fail "SIGSTOP of the postmaster $pm"
    STOPPED=$pm
    local kid
    for kid in $(ps -o pid= --ppid "$pm"); do
        kill -STOP "$kid" 2>/dev/null && STOPPED="$kid $STOPPED"
    done
}

# poll DB SQL WANT SECONDS WHAT: until the query prints WANT, the worker staying up meanwhile
poll() {
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        [ "$(sql "$1" "$2")" = "$3" ] && return 0
        [ -n "$WPID" ] && ! kill -0 "$WPID" 2>/dev/null && fail "the worker exited while waiting for $5"
        sleep 0.1
    done
    fail "waited $4 s for $5 (last: $(sql "$1" "$2"))"
}
# wait_log REGEX SECONDS: until the worker's stderr has a line matching, the worker staying up
wait_log() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        grep -Eq -- "$1" "$ERR" && return 0
        kill -0 "$WPID" 2>/dev/null || fail "the worker exited while waiting for /$1/ in its log"
        sleep 0.1
    done
    fail "waited $2 s for /$1/ in the worker's log"
}
newdb() { sql "$BASE" "CREATE DATABASE $1" >/dev/null; echo "${BASE/dbname=postgres/dbname=$1}"; }

# ---- 1. jobs running, the server stopped for 10 s, then continued -------------------------------
DB=$(newdb pause1) || fail "creating database pause1"
DBT="$DB options='-c statement_timeout=1000' connect_timeout=2"
ERR=$TMP/w1.err
"$ASPEN" submit --type sleep --payload '{"ms": 2000}' --count 6 --db "$DB" --create >/dev/null ||
    fail "submit"
# a 60 s lease: the 10 s stop must not expire it (then the jobs would rightly run again)
"$ASPEN" worker --workers 2 --lease 60000 --db "$DBT" >"$TMP/w1.out" 2>"$ERR" &
WPID=$!
poll "$DB" "SELECT count(*) FROM jobs WHERE state = 'running'" 2 60 "2 jobs to run"
pause
wait_log 'reconnecting to .*has not answered for [0-9.]+ s \(server stopped or network path lost' 20
sleep 3
kill -0 "$WPID" 2>/dev/null || fail "the worker exited while the server was stopped"
resume
poll "$DB" "SELECT count(*) FROM jobs WHERE state = 'succeeded'" 6 90 "every job to succeed"
wait_log 'reconnected to .*the database answers again' 30
[ "$(sql "$DB" "SELECT count(*) FROM attempts")" = 6 ] ||
    fail "a job ran more than once: $(sql "$DB" "SELECT job, number, outcome FROM attempts ORDER BY job, number")"
[ "$(sql "$DB" "SELECT count(*) FROM (SELECT job FROM attempts WHERE outcome = 'succeeded' GROUP BY job HAVING count(*) = 1) x")" = 6 ] ||
    fail "a job did not succeed exactly once"
kill -INT "$WPID"
for ((i = 0; i < 300; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$WPID" 2>/dev/null && fail "the worker did not stop on SIGINT with the server running"
wait "$WPID"
WPID=

# ---- 2. idle, default deadline, the server stopped: Ctrl-C exits promptly ----------------------
DB=$(newdb pause2) || fail "creating database pause2"
ERR=$TMP/w2.err
"$ASPEN" worker --workers 1 --db "$DB" --create >"$TMP/w2.out" 2>"$ERR" &
WPID=$!
wait_log '^aspen worker: engine [0-9]+ on ' 30
sleep 1
pause
sleep 3 # its heartbeat, claims and listener now wait on the silent server
kill -0 "$WPID" 2>/dev/null || fail "the worker exited while the server was stopped"
T0=$(date +%s%N)
kill -INT "$WPID"
for ((i = 0; i < 300; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.05; done
T1=$(date +%s%N)
if kill -0 "$WPID" 2>/dev/null; then
    command -v gdb >/dev/null &&
        gdb -p "$WPID" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#[0-9] )' | head -60 >&2
    fail "the worker still runs 15 s after SIGINT with the server stopped"
fi
wait "$WPID"
RC=$?
WPID=
MS=$(((T1 - T0) / 1000000))
echo "worker_pgpause_test: Ctrl-C with the server stopped: exited in $MS ms" >&2
[ "$RC" -lt 128 ] || fail "the worker died of a signal ($RC) instead of stopping"
grep -q '^aspen worker: done: ' "$ERR" || fail "no final 'done' line"
# about 1 s (0.5 s of silence, then each call of the stop a 50 ms peek); slack for a loaded host
[ "$MS" -le 4000 ] || fail "Ctrl-C took $MS ms to stop the worker with the server stopped"
resume

echo "PASS: worker_pgpause_test"
