#!/usr/bin/env bash
# tests/tui/console_engines_test.sh — the console's Engines pane (4) on a database shared with a
# second process (issue 8): an `aspen worker` started beside the console is listed with its pid,
# its busy workers and the job and guest each one runs, read from its heartbeat in the store; the
# console's own engine is marked "*"; an engine whose heartbeat stopped long ago is marked STALE,
# and its hostile host name (terminal escapes, very long) is shown escaped, never raw; the logs pane
# shows the log lines of a job the other process runs (read from the store); when the
# worker has finished and left it is gone from the pane. SQLite: the same store API is what
# PostgreSQL hosts read (test_store_heartbeat runs on both).
#
#   console_engines_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_engines_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-engines.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
WORKER_PID=
trap 'kill_servers; [ -n "$WORKER_PID" ] && kill -9 "$WORKER_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/e.db
# 15 s each: the worker's slots are read below while its jobs run (pane, then aspen engines), and 6 s
# was a window an ASan worker's start and a loaded machine's slow screens could use up. A timeout
# far above it: the sleep handler counts 5 ms steps, and on a loaded machine 15 s of them took
# over the default 30 s.
"$ASPEN" submit --type sleep --payload '{"ms": 15000}' --timeout 300000 --count 3 --db "$DB" --create >/dev/null ||
    fail "submit"
"$ASPEN" pause --db "$DB" >/dev/null || fail "pause" # the console's own engine must not take them
launch eng 120 40 "$DB" --workers 1
wait_for "Aspen console"
keys 4
wait_for "Engines on this database: 1 "
screen | grep -Eq '^\* +[0-9]+ ' || fail "the console's own engine is not marked *"

# A second process on the same database: resume, and the worker (2 workers) takes two of the three
# jobs or one (the console's own worker may take one first).
# --queues default (the jobs' queue): the pane says which queues each engine serves (trial 23)
"$ASPEN" worker --workers 2 --until-idle --quiet --queues default --db "$DB" >"$TMP/worker.log" 2>&1 &
WORKER_PID=$!
sleep 0.3
"$ASPEN" resume --db "$DB" >/dev/null || fail "resume"
wait_for "Engines on this database: 2 " 20
wait_for " $WORKER_PID +[0-9:]+ +2 +[12] " 20 # PID, started, 2 workers, 1 or 2 busy
wait_for "worker [01] +job [123] +sleep" 20
wait_for "serves queue default" 10
wait_for "serves every queue" 10 # the console's own engine

# The logs pane tails the log lines of the jobs running on the other host (through the store): the
# sleep handler's first line of a job the worker runs, with its job id and the host:pid it runs on.
WJOB=$("$ASPEN" engines --json --db "$DB" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["pid"] == '"$WORKER_PID"' and e["slots"]:
        print(e["slots"][0]["job"]); break')
[ -n "$WJOB" ] || fail "no job of the worker in aspen engines"
keys 3
wait_for "\[job $WJOB [^]]+:$WORKER_PID\] sleep: 15000 ms" 10
keys 4

# A host that stopped beating an hour ago, with a hostile name.
python3 - "$DB" <<'PY' || fail "inserting the stale engine"
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
host = "evil\x1b]0;owned\x07\x1b[2J\r\nhost" + "x" * 300
db.execute("INSERT INTO engines (pid, host, started_at, lease_until, heartbeat_at, workers, version)"
           " VALUES (31337, ?, ?, ?, ?, 1, '0.1.0')", (host, now - 3600000, now + 3600000, now - 3600000))
db.commit()
PY
wait_for "Engines on this database: 3 \(1 stale" 10
wait_for "31337 .*STALE" 10
screen | grep -F "31337" | grep -Fq 'evil\x1b]0;owned' || fail "the hostile host name is not shown escaped"
T capture-pane -p -e -t c | grep -a "31337" | grep -qa $'\x1b\]0;owned' && fail "a raw OSC from a host name reached the terminal"

# The worker finishes its jobs and leaves: gone from the pane.
wait "$WORKER_PID" || fail "the worker exited with $?"
WORKER_PID=
wait_for "Engines on this database: 2 " 30
wait_gone "worker [01] +job" 30
[ "$("$ASPEN" jobs --db "$DB" --state succeeded | tail -n +2 | wc -l)" = 3 ] || fail "the three jobs did not succeed"
quit_and_check eng
echo "PASS: console_engines_test"
