#!/usr/bin/env bash
# tests/tui/console_logfeed_test.sh — the Logs pane follows every engine on the database (issue 8):
# two `aspen worker` processes beside a console; the lines their jobs print reach the console's
# Logs pane through the store's log feed within 3 s of the job's completion on the worker, each once,
# marked with the host and pid of the engine that ran it (the one `aspen show` names), at 80x24
# too; the console's own engine's lines come once and unmarked (they are its events, and the feed
# leaves them out).
#
#   console_logfeed_test.sh ASPEN_BINARY [sqlite|pg]
#   (pg: ASPEN_PG_DIR names the tests' private server, fixture pg)
set -u

ASPEN=${1:?usage: console_logfeed_test.sh ASPEN_BINARY [sqlite|pg]}
BACKEND=${2:-sqlite}
TMP=$(mktemp -d /tmp/aspen-tui-logfeed.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
W1= W2=
stop_workers() {
    local p
    for p in $W1 $W2; do kill -9 "$p" 2>/dev/null; done
    W1= W2=
}
trap 'stop_workers; pg_cleanup' EXIT
need_kvm_and_tmux
if [ "$BACKEND" = pg ]; then
    pg_create_db aspen_tui_logfeed_$$
else
    DB=$TMP/f.db
fi
A() { "$ASPEN" "$@" --db "$DB"; }

# The console's only worker is kept busy by a long sleep (its timeout longer than the test, so it
# is not retried on a worker), so the echo jobs below run on the other processes; it is cancelled
# later and the console runs jobs of its own.
A submit --type sleep --payload '{"ms": 120000}' --timeout 300000 --max-attempts 1 --create >/dev/null || fail "submit the sleep"
launch logs 160 60 "$DB" --workers 1
wait_for "Aspen console"
keys 3
wait_for "Logs of all jobs, live"
SLEEP=$(A jobs | awk 'NR == 2 {print $1}')
# its line (an event of the console's own engine) says its handler runs: a job only reserved
# could still be handed back to the queue and taken by a worker
wait_for "\[job $SLEEP\] sleep: 120000 ms" 20

"$ASPEN" worker --workers 1 --quiet --db "$DB" >"$TMP/w1.log" 2>&1 &
W1=$!
"$ASPEN" worker --workers 1 --quiet --db "$DB" >"$TMP/w2.log" 2>&1 &
W2=$!
FAR_PIDS="$W1 $W2" # for the checks after they are gone
for ((i = 0; i < 300; i++)); do
    [ "$(A engines --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 3 ] && break
    sleep 0.05
done
# One job while everything is idle: its line is on screen within 3 s of its completion on the
# worker (the job's finished_at, the worker's clock on this same host): the feed is read once a
# second on SQLite, at the NOTIFY of the commit on PostgreSQL. Timed from the completion, not from
# the submit, so a loaded machine's slow process starts and worker wake-ups do not count.
J=$(A submit --type echo --payload '"first"' | awk '{print $1}')
[ -n "$J" ] || fail "submit the first echo"
wait_for "\[job $J [^]]+\] echo: " 10
seen_ms=$(date +%s%3N)
fin_ms=$(A show "$J" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["finished_at_ms"])')
ms=$((seen_ms - fin_ms))
echo "first far line on screen ${ms} ms after the job finished on the worker"
[ "$ms" -le 3000 ] || fail "the other engine's line took ${ms} ms from its completion to the Logs pane (over 3 s)"

# Twenty more, in one go: each line once, marked with the engine that ran it.
FAR="$J"
for ((i = 0; i < 20; i++)); do
    FAR="$FAR $(A submit --type echo --payload "\"far $i\"" | awk '{print $1}')"
done
for j in $FAR; do wait_for "\[job $j [^]]+\] echo: " 15; done

# The mark each far job's line must carry: host:pid of the engine that ran it (aspen show names
# it; aspen engines lists its host and pid while it is registered), host cut to 16 with "~".
A engines --json >"$TMP/engines.json"
for j in $FAR; do A show "$j" --json >"$TMP/show.$j.json" || fail "aspen show $j"; done
python3 - "$TMP" "$FAR_PIDS" $FAR >"$TMP/marks" <<'PY' || fail "working out the marks"
import json, sys
tmp, pids, jobs = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
engines = {str(e["id"]): e for e in json.load(open(tmp + "/engines.json"))}
for j in jobs:
    eng = str(json.load(open("%s/show.%s.json" % (tmp, j)))["attempt_list"][-1]["engine"])
    e = engines.get(eng)
    if e is None:
        sys.exit("job %s ran on engine %s, which aspen engines does not list" % (j, eng))
    if str(e["pid"]) not in pids:
        sys.exit("job %s ran on pid %s, not on a worker (%s)" % (j, e["pid"], " ".join(pids)))
    host = e["host"]
    print(j, (host[:16] + "~" if len(host) > 16 else host) + ":" + str(e["pid"]))
PY
# each far job's line on screen once, with its mark, and no other line of that job
check_far() {
    local seen j want n
    seen=$(screen)
    while read -r j want; do
        n=$(grep -cF "[job $j $want] echo: " <<<"$seen")
        [ "$n" = 1 ] || fail "job $j's line is shown $n times marked [job $j $want] (expected once)"
        n=$(grep -cE "\[job $j[] ]" <<<"$seen")
        [ "$n" = 1 ] || fail "job $j has $n lines in the pane (expected 1)"
    done <"$TMP/marks"
}
check_far

# At 80x24 the mark stays on the line (the host is cut to 16 columns, the line after it).
LAST=${FAR##* }
T resize-window -t c -x 80 -y 24
wait_for "^\[job $LAST [^]]+:[0-9]+\] echo: " 10
T resize-window -t c -x 160 -y 60
wait_for "\[job $J [^]]+\] echo: " 10

# The workers go; the console's own worker is freed and runs five jobs: their lines come once,
# with no mark (the feed leaves the console's own lines out; they are its events).
stop_workers
A cancel "$SLEEP" >/dev/null || fail "cancel the sleep"
OWN=
for ((i = 0; i < 5; i++)); do
    OWN="$OWN $(A submit --type echo --payload "\"own $i\"" | awk '{print $1}')"
done
for j in $OWN; do wait_for "\[job $j\] echo: " 15; done
# Proof that the feed has read past those lines, by a bounded wait rather than a sleep: the
# console's worker busy again, one more worker runs a marker job; the feed returns lines in commit
# order, so once the marker shows, the console's own lines were read (and left out) before it.
SLEEP2=$(A submit --type sleep --payload '{"ms": 120000}' --timeout 300000 --max-attempts 1 | awk '{print $1}')
wait_for "\[job $SLEEP2\] sleep: 120000 ms" 15
"$ASPEN" worker --workers 1 --quiet --db "$DB" >"$TMP/w3.log" 2>&1 &
W1=$!
M=$(A submit --type echo --payload '"marker"' | awk '{print $1}')
wait_for "\[job $M [^]]+:$W1\] echo: " 15
seen=$(screen)
for j in $OWN $SLEEP $SLEEP2 $M; do
    n=$(grep -cE "\[job $j[] ]" <<<"$seen")
    [ "$n" = 1 ] || fail "job $j has $n lines in the pane (expected 1)"
done
stop_workers
A cancel "$SLEEP2" >/dev/null || fail "cancel the second sleep"
check_far
quit_and_check logs
echo "PASS: console_logfeed_test ($BACKEND)"
