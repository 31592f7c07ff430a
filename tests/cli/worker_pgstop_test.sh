#!/usr/bin/env bash
# tests/cli/worker_pgstop_test.sh — `aspen worker` on PostgreSQL stops on SIGTERM/SIGINT while its
# server is down, says what it could not record, and loses no job.
#
# It did not: every store call of the stop (scheduler lease, dispatcher, listener, unclaim, the
# last group commit, unregister) waited out the store's 5 s reconnect backoff, one after another,
# and a worker ignored SIGTERM for 20-25 s after "stopping (letting running jobs finish)"; after
# pg_ctl -m immediate it even exited on its own ("error: counting jobs: ... (SQLSTATE none)":
# libpq's own error for the lost server was not taken for an outage). Now a stopping engine's
# store calls try to reconnect once, without backoff ("not retried: stopping"), and the worker
# says what it could not write. The bound is the jobs' --grace plus one connect attempt per call
# (milliseconds with the server down, at most libpq's connect_timeout each for a host that does
# not answer); the deadline below is generous and only says "it exits", never how fast.
#
#   1. jobs running, server stopped as an administrator does (pg_ctl -m fast), SIGTERM: the
#      worker exits, says it could not give back the interrupted jobs and could not unregister
#      (without retrying), prints its "done" line; after the server is back the jobs are still
#      there (running under the dead lease) and a new worker runs each exactly once.
#   2. idle worker, server crashed (pg_ctl -m immediate): the worker stays up and reconnects with
#      backoff; SIGINT during the backoff stops it.
#   3. a second SIGINT while the stop waits for a running job exits at once (status 130), naming
#      the lease that will bring the job back.
#
# The server is the test's own (tests/store/pg_server.sh in its scratch directory).
#
#   worker_pgstop_test.sh ASPEN_BINARY PG_SERVER_SH
set -u

ASPEN=${1:?usage: worker_pgstop_test.sh ASPEN_BINARY PG_SERVER_SH}
PGS=${2:?usage: worker_pgstop_test.sh ASPEN_BINARY PG_SERVER_SH}
TMP=$(mktemp -d /tmp/aspen-wpgstop.XXXXXX)
chmod 755 "$TMP" # the server may run as another user (as root: postgres)
WPID=

cleanup() {
    [ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null
    bash "$PGS" stop "$TMP/pg" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

ERR=
fail() {
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
# wait_exit SECONDS WHAT: the worker must be gone within the deadline; sets RC
wait_exit() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        kill -0 "$WPID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$WPID" 2>/dev/null; then
        command -v gdb >/dev/null &&
            gdb -p "$WPID" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#[0-9] )' | head -60 >&2
        fail "the worker still runs $1 s after $2"
    fi
    wait "$WPID"
    RC=$?
    WPID=
}
newdb() { sql "$BASE" "CREATE DATABASE $1" >/dev/null; echo "${BASE/dbname=postgres/dbname=$1}"; }

# ---- 1. jobs running, pg_ctl -m fast, SIGTERM --------------------------------------------------
DB=$(newdb stop1) || fail "creating database stop1"
ERR=$TMP/w1.err
# 4 s jobs under --grace 1000: the two running at SIGTERM are interrupted, the rest never start
"$ASPEN" submit --type sleep --payload '{"ms": 4000}' --count 4 --db "$DB" --create >/dev/null ||
    fail "submit"
"$ASPEN" worker --workers 2 --grace 1000 --db "$DB" >"$TMP/w1.out" 2>"$ERR" &
WPID=$!
poll "$DB" "SELECT count(*) FROM jobs WHERE state = 'running'" 2 60 "2 jobs to run"
bash "$PGS" down "$TMP/pg" || fail "stopping the server (pg_ctl -m fast)"
kill -TERM "$WPID"
wait_exit 30 "SIGTERM with the server down"
[ "$RC" -lt 128 ] || fail "the worker died of a signal ($RC) instead of stopping"
grep -q '^aspen worker: stopping (letting running jobs finish' "$ERR" || fail "no 'stopping' line"
# (given back one by one after their group; or, were a start mark still in the group, with it)
grep -Eq 'could not give back [12] jobs interrupted at stop|could not record what [12] jobs did \(0 results, [12] interrupted' "$ERR" ||
    fail "it did not say it could not give back the interrupted jobs"
grep -q 'could not unregister the engine, the database is unreachable' "$ERR" ||
    fail "it did not say it could not unregister"
# the proof that the stop's calls gave up instead of retrying for 5 s each
grep -q 'not retried: stopping' "$ERR" || fail "the stop's store calls still waited out the reconnect backoff"
grep -q 'could not reconnect for 5 s' "$ERR" && fail "a store call of the stop retried for 5 s"
grep -q '^aspen worker: done: ' "$ERR" || fail "no final 'done' line"
bash "$PGS" up "$TMP/pg" || fail "starting the server again"
# nothing lost: the interrupted jobs are still running under the dead engine's lease, the rest queued
[ "$(sql "$DB" "SELECT count(*) FROM jobs WHERE state IN ('running', 'queued')")" = 4 ] ||
    fail "jobs lost or finished by the stop: $(sql "$DB" "SELECT id, state FROM jobs")"
ERR=$TMP/w1b.err
timeout 120 "$ASPEN" worker --workers 2 --until-idle --quiet --db "$DB" 2>"$ERR" ||
    fail "the second worker did not run the jobs left"
[ "$(sql "$DB" "SELECT count(*) FROM jobs WHERE state = 'succeeded'")" = 4 ] ||
    fail "not every job succeeded after recovery: $(sql "$DB" "SELECT id, state FROM jobs")"
[ "$(sql "$DB" "SELECT count(*) FROM (SELECT job FROM attempts WHERE outcome = 'succeeded' GROUP BY job HAVING count(*) = 1) x")" = 4 ] ||
    fail "a job did not succeed exactly once"

# ---- 2. idle, pg_ctl -m immediate, SIGINT during the reconnect backoff ------------------------
DB=$(newdb stop2) || fail "creating database stop2"
ERR=$TMP/w2.err
"$ASPEN" worker --workers 1 --db "$DB" --create >"$TMP/w2.out" 2>"$ERR" &
WPID=$!
wait_log '^aspen worker: engine [0-9]+ on ' 30
bash "$PGS" crash "$TMP/pg" || fail "stopping the server (pg_ctl -m immediate)"
# it must ride the crash out (it exited here with libpq's error), reconnecting with backoff
wait_log 'reconnecting to .*attempt [0-9]+, next in' 30
sleep 1
kill -0 "$WPID" 2>/dev/null || fail "the worker exited after the server crashed"
grep -q 'SQLSTATE none' "$ERR" && fail "libpq's lost-connection error taken for an ordinary one"
kill -INT "$WPID"
wait_exit 30 "SIGINT during the reconnect backoff"
[ "$RC" -lt 128 ] || fail "the worker died of a signal ($RC) instead of stopping"
grep -q '^aspen worker: stopping (letting running jobs finish; Ctrl-C again exits at once)' "$ERR" ||
    fail "no 'stopping' line naming Ctrl-C"
grep -q '^aspen worker: done: ' "$ERR" || fail "no final 'done' line"
bash "$PGS" up "$TMP/pg" || fail "starting the server again"

# ---- 3. a second SIGINT exits at once ----------------------------------------------------------
DB=$(newdb stop3) || fail "creating database stop3"
ERR=$TMP/w3.err
"$ASPEN" submit --type sleep --payload '{"ms": 60000}' --db "$DB" --create >/dev/null || fail "submit"
"$ASPEN" worker --workers 1 --grace 60000 --db "$DB" >"$TMP/w3.out" 2>"$ERR" &
WPID=$!
poll "$DB" "SELECT count(*) FROM jobs WHERE state = 'running'" 1 60 "the job to run"
bash "$PGS" down "$TMP/pg" || fail "stopping the server (pg_ctl -m fast)"
kill -INT "$WPID"
wait_log '^aspen worker: stopping ' 30 # the stop now waits for the job's 60 s of grace
kill -INT "$WPID"
wait_exit 30 "the second SIGINT"
[ "$RC" = 130 ] || fail "the second SIGINT exited with $RC, not 130"
grep -Eq '^aspen worker: Ctrl-C again: exiting now .*stay leased to engine [0-9]+' "$ERR" ||
    fail "no message saying the second Ctrl-C exits and what stays leased"
bash "$PGS" up "$TMP/pg" || fail "starting the server again"
[ "$(sql "$DB" "SELECT state FROM jobs")" = running ] ||
    fail "the job is not left running under the lease: $(sql "$DB" "SELECT state FROM jobs")"

echo "PASS: worker_pgstop_test"
