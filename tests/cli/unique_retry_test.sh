#!/usr/bin/env bash
# tests/cli/unique_retry_test.sh — retry and rerun keep a unique job unique, through the real
# `aspen` program (issue 10, trial 10): job 1 of key K fails, job 2 of K is queued; `aspen retry 1`
# is refused naming job 2 and what to do, `aspen retry --failed` retries the other failed jobs and
# names the one it left; `aspen rerun 1` answers with job 2 as a duplicate (stdout its id, exit 0,
# --json "duplicate": true) and `--no-unique` makes a job without the rule; `aspen show` (and
# --json) shows the rule; once retried to "attempt 2 of 2", a rerun starts with the submitted
# max attempts (1); and 8 processes retrying and rerunning job 1 at once leave one live job of K.
# In-process handlers (type sleep, {"fail": true} fails), no guest.
#
#   unique_retry_test.sh ASPEN_BINARY [sqlite|pg]
#   (pg: ASPEN_PG_DIR names the tests' private server, fixture pg)
set -u

ASPEN=${1:?usage: unique_retry_test.sh ASPEN_BINARY [sqlite|pg]}
BACKEND=${2:-sqlite}
TMP=$(mktemp -d /tmp/aspen-unique-retry.XXXXXX)
SERVER= PG_DBNAME=
cleanup() {
    if [ -n "$PG_DBNAME" ]; then
        psql "$SERVER" -qAt -c "DROP DATABASE IF EXISTS $PG_DBNAME WITH (FORCE)" >/dev/null 2>&1
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
if [ "$BACKEND" = pg ]; then
    [ -n "${ASPEN_PG_DIR:-}" ] && [ -s "$ASPEN_PG_DIR/conninfo" ] ||
        fail "no PostgreSQL test server (ASPEN_PG_DIR/conninfo): run through ctest (fixture pg)"
    SERVER=$(cat "$ASPEN_PG_DIR/conninfo")
    PG_DBNAME=aspen_unique_retry_$$
    psql "$SERVER" -qAt -c "CREATE DATABASE $PG_DBNAME" >/dev/null || fail "creating the database"
    DB="$SERVER dbname=$PG_DBNAME"
else
    DB=$TMP/u.db
fi
A() { "$ASPEN" "$@" --db "$DB"; }
field() { # field ID KEY: a field of aspen show --json
    A show "$1" --json | python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(json.dumps(v) if isinstance(v,(dict,list)) or v is None else v)' "$2"
}
live_k() { # the jobs that wait or run: by the race below every job of another key is cancelled
    A jobs --all --json | python3 -c '
import json, sys
print(sum(1 for j in json.load(sys.stdin) if j["state"] in ("queued", "scheduled", "running")))'
}
FAIL='{"ms":0,"fail":true}'

A jobs --create >/dev/null || fail "creating the database"
J1=$(A submit --type sleep --payload "$FAIL" --max-attempts 1 --unique-key K --unique-for 1h) ||
    fail "submit job 1"
A worker --until-idle --quiet >/dev/null 2>&1 || fail "running job 1"
[ "$(field "$J1" state)" = failed ] || fail "job 1 did not fail"
A pause >/dev/null || fail "pause" # nothing runs from here: queued jobs stay queued
J2=$(A submit --type sleep --payload "$FAIL" --max-attempts 1 --unique-key K 2>"$TMP/e") ||
    fail "submit job 2: $(cat "$TMP/e")"
[ "$J2" != "$J1" ] || fail "job 2 was a duplicate of the failed job 1"

# the rule is shown: text and --json
A show "$J1" >"$TMP/show" || fail "show"
grep -Eq "^  unique +key K   for 1h   counts queued,scheduled,running$" "$TMP/show" ||
    fail "show has no unique line: $(cat "$TMP/show")"
[ "$(field "$J1" unique)" = '{"key": "K", "period_ms": 3600000, "states": ["queued", "scheduled", "running"]}' ] ||
    fail "show --json unique: $(field "$J1" unique)"
P=$(A submit --type sleep --payload '{"ms":0}')
[ "$(field "$P" unique)" = null ] || fail "a job without a rule shows one: $(field "$P" unique)"
A cancel "$P" >/dev/null || fail "cancel $P"

# retry 1: refused, job 1 stays failed with its 1 attempt
out=$(A retry "$J1" 2>&1)
rc=$?
[ $rc = 1 ] || fail "retry 1 while job 2 holds K exited $rc: $out"
echo "$out" | grep -q "error: job $J1 not retried: job $J2 (queued) holds its unique key 'K'; cancel job $J2 first (aspen cancel $J2 --db " ||
    fail "retry 1's refusal: $out"
echo "$out" | grep -q "or aspen rerun $J1 --no-unique --db " || fail "retry 1 does not say --no-unique: $out"
[ "$(field "$J1" state)" = failed ] || fail "retry 1 changed job 1"
[ "$(field "$J1" max_attempts)" = 1 ] || fail "retry 1 raised max attempts"

# retry --failed: another failed job (no key) is retried, job 1 named as left
J3=$(A submit --type sleep --payload "$FAIL" --max-attempts 1) || fail "submit job 3"
A resume >/dev/null
A cancel "$J2" >/dev/null # (so the worker runs only job 3; job 2 comes back below)
A worker --until-idle --quiet >/dev/null 2>&1 || fail "running job 3"
A pause >/dev/null
J2=$(A submit --type sleep --payload "$FAIL" --max-attempts 1 --unique-key K) || fail "submit job 2 again"
A retry --failed >"$TMP/o" 2>"$TMP/e" || fail "retry --failed exited $?: $(cat "$TMP/e")"
grep -qx "1 failed job queued again" "$TMP/o" || fail "retry --failed said: $(cat "$TMP/o")"
grep -q "aspen: 1 failed job not retried: another job holds its unique key" "$TMP/e" ||
    fail "retry --failed does not say what it left: $(cat "$TMP/e")"
grep -q "  job $J1 not retried: job $J2 (queued) holds its unique key 'K'" "$TMP/e" ||
    fail "retry --failed does not name the holder: $(cat "$TMP/e")"
[ "$(field "$J3" state)" = queued ] || fail "retry --failed did not retry job 3"
[ "$(field "$J1" state)" = failed ] || fail "retry --failed retried job 1"

# rerun 1: the holder, as a duplicate; no job made
n0=$(A jobs --all --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
id=$(A rerun "$J1" 2>"$TMP/e") || fail "rerun 1 exited $?: $(cat "$TMP/e")"
[ "$id" = "$J2" ] || fail "rerun 1 printed $id, not the holder $J2"
grep -q "aspen: duplicate: job $J2 already exists for unique key K (queued, submitted " "$TMP/e" ||
    fail "rerun 1's note: $(cat "$TMP/e")"
grep -q "not rerunning job $J1 (aspen rerun $J1 --no-unique --db " "$TMP/e" || fail "rerun 1's note: $(cat "$TMP/e")"
A rerun "$J1" --json 2>/dev/null >"$TMP/j" || fail "rerun --json"
python3 - "$TMP/j" "$J2" <<'PY' || fail "rerun --json: $(cat "$TMP/j")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["id"] == int(sys.argv[2]) and o["duplicate"] is True and o["state"] == "queued", o
assert o["unique_key"] == "K" and "duplicate: job" in o["message"], o
PY
n1=$(A jobs --all --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n1" = "$n0" ] || fail "a duplicate rerun made a job ($n0 -> $n1)"
# --no-unique: a new job, no rule
J4=$(A rerun "$J1" --no-unique) || fail "rerun --no-unique"
[ "$J4" != "$J2" ] || fail "rerun --no-unique answered with the holder"
[ "$(field "$J4" unique)" = null ] || fail "rerun --no-unique kept the rule"
[ "$(field "$J4" rerun_of)" = "$J1" ] || fail "rerun --no-unique is not a rerun of job 1"
A cancel "$J4" >/dev/null

# the key free: retry 1 (attempt 2 of 2), fail it again; a rerun starts at 1 attempt, with the rule
A cancel "$J2" >/dev/null || fail "cancel job 2"
out=$(A retry "$J1") || fail "retry 1 once the key is free: $out"
echo "$out" | grep -q "(attempt 2 of 2)" || fail "retry 1 said: $out"
A cancel "$J3" >/dev/null
A resume >/dev/null
A worker --until-idle --quiet >/dev/null 2>&1 || fail "running job 1 again"
A pause >/dev/null
[ "$(field "$J1" state)" = failed ] || fail "job 1 did not fail again"
J5=$(A rerun "$J1" 2>"$TMP/e") || fail "rerun 1: $(cat "$TMP/e")"
[ "$(field "$J5" max_attempts)" = 1 ] || fail "the rerun copied the retry's max attempts: $(field "$J5" max_attempts)"
[ "$(field "$J5" unique)" = '{"key": "K", "period_ms": 3600000, "states": ["queued", "scheduled", "running"]}' ] ||
    fail "the rerun did not keep the rule: $(field "$J5" unique)"
A cancel "$J5" >/dev/null

# 8 processes at once, retrying and rerunning job 1: one live job of K at the end
[ "$(live_k)" = 0 ] || fail "live jobs before the race: $(live_k)"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    if [ $((i % 2)) = 0 ]; then
        A retry "$J1" >"$TMP/r$i.out" 2>"$TMP/r$i.err" &
    else
        A rerun "$J1" >"$TMP/r$i.out" 2>"$TMP/r$i.err" &
    fi
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
# a retry that lost says who won; nothing failed otherwise
for i in 1 2 3 4 5 6 7 8; do
    if grep -q "^error:" "$TMP/r$i.err" && ! grep -Eq "not retried: job [0-9]+ \((queued)\) holds its unique key 'K'|job $J1 is already queued" "$TMP/r$i.err"; then
        fail "process $i: $(cat "$TMP/r$i.err")"
    fi
done
[ "$(live_k)" = 1 ] || fail "after 8 concurrent retries and reruns: $(live_k) live jobs of K"
echo "PASS: unique_retry_test ($BACKEND)"
