#!/usr/bin/env bash
# tests/cli/worker_pgoutage_test.sh — `aspen worker` on PostgreSQL rides out a server restart
# (issue 8): with jobs queued and running, its private server is stopped as an administrator's
# restart does (pg_ctl -m fast) for 10 s and started again. The worker must not exit (it did:
# "could not reconnect for 5 s", then "done", exit 1); it says "reconnecting to ..." once and
# "reconnected" once, in single lines of its own (never libpq's multi-line FATAL text), and goes on
# until every job has succeeded exactly once: checked in SQL (one succeeded job row with its
# output per job, one succeeded attempt row per job, no job left behind), then stops cleanly on
# SIGTERM with status 0.
#
# The server is the test's own (tests/store/pg_server.sh in its scratch directory), not the
# fixture's, which other tests use meanwhile.
#
#   worker_pgoutage_test.sh ASPEN_BINARY PG_SERVER_SH
set -u

ASPEN=${1:?usage: worker_pgoutage_test.sh ASPEN_BINARY PG_SERVER_SH}
PGS=${2:?usage: worker_pgoutage_test.sh ASPEN_BINARY PG_SERVER_SH}
TMP=$(mktemp -d /tmp/aspen-wpgout.XXXXXX)
chmod 755 "$TMP" # the server may run as another user (as root: postgres)
WPID=

cleanup() {
    [ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null
    bash "$PGS" stop "$TMP/pg" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    [ -f "$TMP/worker.err" ] && { echo "---- worker stderr ----" >&2; cat "$TMP/worker.err" >&2; }
    exit 1
}

[ -x "$ASPEN" ] || fail "no aspen binary at $ASPEN (build first)"
[ -e /dev/kvm ] || fail "/dev/kvm is missing: the worker runs jobs in KVM micro-VMs"
command -v psql >/dev/null || fail "psql is not installed (apt-get install postgresql-client)"
bash "$PGS" start "$TMP/pg" >/dev/null || fail "starting the test's PostgreSQL server"
DB=$(cat "$TMP/pg/conninfo")
sql() { psql "$DB" -qAt -c "$1" 2>/dev/null; }

# poll CONDITION_SQL WANT SECONDS WHAT: until the query prints WANT (the worker must stay up)
poll() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(sql "$1")" = "$2" ] && return 0
        [ -n "$WPID" ] && ! kill -0 "$WPID" 2>/dev/null && fail "the worker exited while waiting for $4"
        sleep 0.1
    done
    # what is left, and who holds it (a reservation of a live engine that forgot it stays here)
    echo "jobs by state: $(sql "SELECT state || ' ' || count(*) FROM jobs GROUP BY state" | tr '\n' ' ')" >&2
    echo "reservations: $(sql "SELECT job || ' by engine ' || engine FROM claims LIMIT 10" | tr '\n' ' ')" >&2
    fail "waited $3 s for $4 (last: $(sql "$1"))"
}
# wait_log REGEX SECONDS: until the worker's stderr has a line matching
wait_log() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        grep -Eq -- "$1" "$TMP/worker.err" && return 0
        kill -0 "$WPID" 2>/dev/null || fail "the worker exited while waiting for /$1/ in its log"
        sleep 0.1
    done
    fail "waited $2 s for /$1/ in the worker's log"
}

# Jobs that take a while in all (2 workers): some run, some wait, while the server is away.
N_ECHO=150 N_SLEEP=60
"$ASPEN" submit echo-worker --payload '{"message":"m"}' --count $N_ECHO --db "$DB" --create \
    >/dev/null || fail "submit echo-worker"
"$ASPEN" submit --type sleep --payload '{"ms": 200}' --count $N_SLEEP --db "$DB" >/dev/null ||
    fail "submit sleep"
N=$((N_ECHO + N_SLEEP))

"$ASPEN" worker --workers 2 --db "$DB" >"$TMP/worker.out" 2>"$TMP/worker.err" &
WPID=$!
poll "SELECT count(*) >= 20 FROM jobs WHERE state = 'succeeded'" t 60 "20 jobs to succeed"
[ "$(sql "SELECT count(*) < $N FROM jobs WHERE state = 'succeeded'")" = t ] ||
    fail "every job finished before the server went away: nothing tested"

bash "$PGS" down "$TMP/pg" || fail "stopping the server (pg_ctl -m fast)"
down_at=$(date +%s%N)
wait_log "reconnecting to .*attempt [0-9]+, next in [0-9.]+s" 30
# the server stays away 10 s; the worker must be alive all along
while (( ($(date +%s%N) - down_at) / 1000000 < 10000 )); do
    kill -0 "$WPID" 2>/dev/null || fail "the worker exited while the server was down"
    sleep 0.2
done
bash "$PGS" up "$TMP/pg" || fail "starting the server again"

poll "SELECT count(*) FROM jobs WHERE state = 'succeeded'" $N 180 "all $N jobs to succeed"
wait_log "reconnected to " 30
kill -0 "$WPID" 2>/dev/null || fail "the worker is gone after the restart"

# Exactly once: each job one succeeded row with its result, one succeeded attempt; no job in
# another state; every attempt row belongs to a job (none lost, none duplicated).
[ "$(sql "SELECT count(*) FROM jobs WHERE state <> 'succeeded'")" = 0 ] || fail "jobs not succeeded: $(sql "SELECT id, state FROM jobs WHERE state <> 'succeeded'")"
[ "$(sql "SELECT count(*) FROM jobs WHERE type = 'echo-worker' AND (result IS NULL OR length(result) = 0)")" = 0 ] ||
    fail "echo-worker jobs without their result"
[ "$(sql "SELECT count(*) FROM (SELECT job FROM attempts WHERE outcome = 'succeeded' GROUP BY job HAVING count(*) = 1) x")" = $N ] ||
    fail "not every job has exactly one succeeded attempt: $(sql "SELECT job, count(*) FROM attempts WHERE outcome = 'succeeded' GROUP BY job HAVING count(*) <> 1")"
[ "$(sql "SELECT count(*) FROM jobs j WHERE j.attempts <> (SELECT count(*) FROM attempts a WHERE a.job = j.id)")" = 0 ] ||
    fail "a job's attempt count differs from its attempt rows"

kill -TERM "$WPID"
wait "$WPID"
rc=$?
WPID=
[ $rc = 0 ] || fail "the worker exited with $rc after SIGTERM"

# What it said: "reconnecting" once and "reconnected" once per outage; each stderr line its own
# ("aspen worker: ..."), none of libpq's (FATAL:, "This probably means ...", a lone line).
[ "$(grep -c 'reconnecting to ' "$TMP/worker.err")" = 1 ] || fail "'reconnecting to' not said exactly once"
[ "$(grep -c 'reconnected to ' "$TMP/worker.err")" = 1 ] || fail "'reconnected to' not said exactly once"
grep -v '^aspen worker: ' "$TMP/worker.err" | grep -q . && fail "lines on stderr that are not the worker's own: $(grep -v '^aspen worker: ' "$TMP/worker.err" | head -3)"
grep -q '^FATAL\|^This probably' "$TMP/worker.err" && fail "libpq's own text on stderr"
grep -q 'aspen worker: done: ' "$TMP/worker.err" || fail "no final 'done' line"
echo "PASS: worker_pgoutage_test"
