#!/usr/bin/env bash
# tests/cli/bench_cleanup_test.sh — `aspen bench engine` without --db removes its temporary
# database directory ($TMPDIR/aspen-bench-*) however it ends: after a run, and when stopped by
# SIGINT or SIGTERM while it runs (it then still dies of the signal). Before, a stopped bench left
# the directory and its database behind in /var/tmp (issue 7).
#
#   bench_cleanup_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: bench_cleanup_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-bench-cleanup.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -s "$TMP/err" ] && cat "$TMP/err" >&2
    exit 1
}

# a whole run
mkdir -p "$TMP/a"
TMPDIR=$TMP/a "$ASPEN" bench engine --jobs 50 --workers 1 --json >"$TMP/out" 2>"$TMP/err" ||
    fail "bench engine failed"
grep -q '"benchmark":"engine"' "$TMP/out" || fail "bench engine printed no result"
left=$(ls -A "$TMP/a")
[ -z "$left" ] || fail "a finished bench left $left in its TMPDIR"

for sig in INT TERM; do
    d=$TMP/$sig
    mkdir -p "$d"
    # a background job of a script starts with SIGINT ignored (and keeps it so): reset it, as a
    # terminal's ^C would find it
    TMPDIR=$d env --default-signal=INT "$ASPEN" bench engine --jobs 2000000 --workers 1 --json \
        >"$TMP/out" 2>"$TMP/err" &
    PID=$!
    # wait (bounded) until its database exists: then it is running
    for _ in $(seq 1 300); do
        ls "$d"/aspen-bench-*/bench.db >/dev/null 2>&1 && break
        kill -0 "$PID" 2>/dev/null || fail "bench engine ended before it was stopped"
        sleep 0.1
    done
    ls "$d"/aspen-bench-*/bench.db >/dev/null 2>&1 || fail "no database appeared in 30 s"
    kill -"$sig" "$PID"
    wait "$PID"
    rc=$?
    PID=
    want=$((128 + $(kill -l "$sig")))
    [ "$rc" -eq "$want" ] || fail "SIG$sig: exit status $rc, want $want (death by the signal)"
    left=$(ls -A "$d")
    [ -z "$left" ] || fail "a bench stopped by SIG$sig left $left in its TMPDIR"
done
echo "ok"
