#!/usr/bin/env bash
# tests/cli/logs_follow_test.sh — `aspen logs --follow` with no job follows every job's new lines
# from every worker on the database (issue 8): two `aspen worker` processes run twenty echo jobs;
# a text follower and a --json follower each show every job's line once, marked with the host and
# pid of the engine that ran it (the engine `aspen show` names); a follower whose database is a
# mistyped path is refused with what to do; a follower whose reader goes away (a closed pipe) ends.
#
#   logs_follow_test.sh ASPEN_BINARY [sqlite|pg]
#   (pg: ASPEN_PG_DIR names the tests' private server, fixture pg)
set -u

ASPEN=${1:?usage: logs_follow_test.sh ASPEN_BINARY [sqlite|pg]}
BACKEND=${2:-sqlite}
TMP=$(mktemp -d /tmp/aspen-logs-follow.XXXXXX)
PIDS=()
SERVER= PG_DBNAME=
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    if [ -n "$PG_DBNAME" ]; then
        psql "$SERVER" -qAt -c "DROP DATABASE IF EXISTS $PG_DBNAME WITH (FORCE)" >/dev/null 2>&1
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$TMP"/*.err; do [ -s "$f" ] && { echo "---- $f" >&2; cat "$f" >&2; }; done
    exit 1
}
if [ "$BACKEND" = pg ]; then
    [ -n "${ASPEN_PG_DIR:-}" ] && [ -s "$ASPEN_PG_DIR/conninfo" ] ||
        fail "no PostgreSQL test server (ASPEN_PG_DIR/conninfo): run through ctest (fixture pg)"
    SERVER=$(cat "$ASPEN_PG_DIR/conninfo")
    PG_DBNAME=aspen_logs_follow_$$
    psql "$SERVER" -qAt -c "CREATE DATABASE $PG_DBNAME" >/dev/null || fail "creating the database"
    DB="$SERVER dbname=$PG_DBNAME"
else
    DB=$TMP/f.db
fi
A() { "$ASPEN" "$@" --db "$DB"; }

A jobs --create >/dev/null || fail "creating the database"
# no job and no --follow: a usage error that says what to give
A logs >"$TMP/usage.out" 2>&1
[ $? = 2 ] || fail "aspen logs with no ID did not exit 2"
grep -q -- "--follow for every job's new lines" "$TMP/usage.out" || fail "no hint: $(cat "$TMP/usage.out")"
# a mistyped database: refused at once, nothing created
"$ASPEN" logs --follow --db "$TMP/nope.db" >/dev/null 2>"$TMP/nope.out"
[ $? = 1 ] || fail "a follower on a missing database did not exit 1"
grep -q "error:" "$TMP/nope.out" || fail "no error for the missing database: $(cat "$TMP/nope.out")"
[ ! -e "$TMP/nope.db" ] || fail "a follower created the missing database"

"$ASPEN" worker --workers 1 --quiet --db "$DB" >/dev/null 2>"$TMP/w1.err" &
W1=$!
PIDS+=("$W1")
"$ASPEN" worker --workers 1 --quiet --db "$DB" >/dev/null 2>"$TMP/w2.err" &
W2=$!
PIDS+=("$W2")
"$ASPEN" logs --follow --json --db "$DB" >"$TMP/f.jsonl" 2>"$TMP/fj.err" &
PIDS+=($!)
"$ASPEN" logs --follow --db "$DB" >"$TMP/f.txt" 2>"$TMP/ft.err" &
PIDS+=($!)

# The followers start at the end of the feed: probe jobs until one's line reached both, so the
# jobs below come after both cursors (a bounded wait, not a sleep).
ready=
for ((try = 0; try < 20 && !ready; try++)); do
    P=$(A submit --type echo --payload '"probe"' | awk '{print $1}')
    for ((i = 0; i < 40; i++)); do
        if grep -q "\"job\":$P," "$TMP/f.jsonl" && grep -q "job $P #" "$TMP/f.txt"; then
            ready=1
            break
        fi
        sleep 0.05
    done
done
[ -n "$ready" ] || fail "no probe job's line reached the followers"

JOBS=
for ((i = 0; i < 20; i++)); do JOBS="$JOBS $(A submit --type echo --payload "\"job $i\"" | awk '{print $1}')"; done
for j in $JOBS; do
    for ((i = 0; i < 400; i++)); do
        grep -q "\"job\":$j," "$TMP/f.jsonl" && grep -q "job $j #" "$TMP/f.txt" && break
        sleep 0.05
    done
done
A engines --json >"$TMP/engines.json" || fail "aspen engines"
for j in $JOBS; do A show "$j" --json >"$TMP/show.$j.json" || fail "aspen show $j"; done
python3 - "$TMP" "$W1" "$W2" $JOBS <<'PY' || fail "the followers' lines"
import json, sys
tmp, w1, w2, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(j) for j in sys.argv[4:]]
engines = {e["id"]: e for e in json.load(open(tmp + "/engines.json"))}
lines = [json.loads(l) for l in open(tmp + "/f.jsonl")]
text = open(tmp + "/f.txt", encoding="utf-8", errors="replace").read().splitlines()
for j in jobs:
    eng = json.load(open("%s/show.%d.json" % (tmp, j)))["attempt_list"][-1]["engine"]
    e = engines[eng]
    assert e["pid"] in (w1, w2), "job %d ran on pid %d, not a worker" % (j, e["pid"])
    mine = [l for l in lines if l["job"] == j]
    assert len(mine) == 1, "job %d: %d JSON lines (expected 1): %r" % (j, len(mine), mine)
    l = mine[0]
    assert l["engine"] == eng and l["host"] == e["host"] and l["pid"] == e["pid"], (j, l, e)
    assert l["attempt"] == 1 and l["line"].startswith("echo: "), l
    want = "  job %d #1  %s:%d  echo: " % (j, e["host"], e["pid"])
    mine = [t for t in text if (" job %d #" % j) in t]
    assert len(mine) == 1 and want in mine[0], "job %d: text lines %r, want %r" % (j, mine, want)
print("ok: %d jobs, each line once on both followers, marked with the engine that ran it" % len(jobs))
PY

# A hostile host name (another machine's words) on a line: escaped in the text, exact in --json,
# never raw on the terminal. SQLite only: the rows are written by hand (an engine cannot be told
# its host name), the way a host with such a name would have written them.
if [ "$BACKEND" = sqlite ]; then
    X=$(A submit --type echo --payload '"later"' --delay 3600000 | awk '{print $1}')
    python3 - "$DB" "$X" <<'PY' || fail "writing the hostile engine's line"
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
now = int(time.time() * 1000)
host = "evil\x1b]0;owned\x07\x1b[2Jhost"
with db:
    cur = db.execute("INSERT INTO engines (pid, host, started_at, lease_until, heartbeat_at, workers, version)"
                     " VALUES (31337, ?, ?, ?, ?, 1, '0.1.0')", (host, now, now + 3600000, now))
    db.execute("UPDATE jobs SET owner = ? WHERE id = ?", (cur.lastrowid, int(sys.argv[2])))
    # the feed's counter, as a write of lines moves it (store/sqlite: ST_LOG_TX_BUMP)
    db.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'log.feed_tx'")
    db.execute("INSERT INTO logs (job, seq, attempt, time_ms, line, tx) VALUES (?, 1, 1, ?, 'hostile',"
               " (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'log.feed_tx'))",
               (int(sys.argv[2]), now))
PY
    for ((i = 0; i < 200; i++)); do
        grep -q "job $X #1" "$TMP/f.txt" && grep -q "\"job\":$X," "$TMP/f.jsonl" && break
        sleep 0.05
    done
    grep -F "job $X #1" "$TMP/f.txt" | grep -Fq 'evil\x1b]0;owned\x07\x1b[2Jhost:31337  hostile' ||
        fail "the hostile host is not shown escaped: $(grep -F "job $X #" "$TMP/f.txt")"
    grep -qa $'\x1b' "$TMP/f.txt" && fail "a raw escape from a host name reached the text output"
    python3 - "$TMP/f.jsonl" "$X" <<'PY' || fail "the hostile host in --json"
import json, sys
l = [json.loads(x) for x in open(sys.argv[1]) if json.loads(x)["job"] == int(sys.argv[2])]
assert len(l) == 1 and l[0]["host"] == "evil\x1b]0;owned\x07\x1b[2Jhost" and l[0]["pid"] == 31337, l
PY
fi

# a reader that goes away: the follower ends instead of writing into a closed pipe for ever
mkfifo "$TMP/fifo"
"$ASPEN" logs --follow --db "$DB" >"$TMP/fifo" 2>"$TMP/pipe.err" &
FPID=$!
PIDS+=("$FPID")
head -c 1 <"$TMP/fifo" >/dev/null &
for ((try = 0; try < 100; try++)); do
    A submit --type echo --payload '"close"' >/dev/null
    kill -0 "$FPID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$FPID" 2>/dev/null && fail "a follower whose reader went away is still running"
echo "PASS: logs_follow_test ($BACKEND)"
