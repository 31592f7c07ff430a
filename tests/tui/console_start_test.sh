#!/usr/bin/env bash
# tests/tui/console_start_test.sh — the console opened on a database with work in flight (issue 7:
# it crashed on 4 of 5 starts when jobs were queued, because an engine event reached the UI before
# its async handle existed, and every crash stranded the claimed jobs and charged them an attempt).
#
#   console_start_test.sh ASPEN_BINARY
#
# Ten starts in a row on each of: 1 queued job, 50 queued jobs, 5,000 queued jobs, and jobs left
# `running` by an `aspen worker` killed with -9 mid-run (a fresh worker on fresh jobs, killed
# before every start). Starts
# alternate between 120x40 and 80x24, and between quitting at the very first frame and quitting
# once the jobs table has rows. After every quit: exit status 0, nothing from a sanitizer or a
# crash on stderr, no core file, the terminal restored (tmux_lib.sh's quit_and_check), and the jobs
# correct — none failed, none left running by the console (only the killed worker's, until its
# lease runs out), and no attempt charged for a job that did not finish. At the end `aspen worker
# --until-idle` runs them all to success. Last, a second SIGTERM and a SIGINT while the console
# stops must not kill it half-way: it exits 0 and the running job is back in the queue, uncharged.
# Needs /dev/kvm and tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_start_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-start.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
WORKER_PID=
trap 'kill_servers; [ -n "$WORKER_PID" ] && kill -9 "$WORKER_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

STARTS=10
SLEEP='{"ms": 1500}' # longer than a console session: jobs are still running at every quit

# counts DB: "STATE TRIES" pairs with their counts, e.g. "49 queued 0/3"
counts() { "$ASPEN" jobs --db "$1" --limit 1000000 | tail -n +2 | awk '{print $2, $5}' | sort | uniq -c; }
n_state() { "$ASPEN" jobs --db "$1" --create --state "$2" --limit 1000000 | tail -n +2 | grep -cv '^(no jobs match)$'; }
# owners DB: the engine ids owning running jobs, one a line
owners() { "$ASPEN" jobs --db "$1" --state running --json --limit 1000000 | grep -o '"owner": [0-9]*' | awk '{print $2}' | sort -u; }

# open_and_quit NAME ITERATION DB: one start and quit, checked
open_and_quit() {
    local name=$1 it=$2 db=$3 cols=120 rows=40
    ((it % 2)) && { cols=80; rows=24; }
    launch "$name" "$cols" "$rows" "$db" --workers 2 --grace 200
    if ((it % 4 < 2)); then
        wait_for "Aspen console \|" 20 # the first frame: engine events are already flowing
    else
        wait_for "Aspen console \| running" 20
        wait_for "^ +[0-9]+ +(type:)?(sleep|echo|-) " 20 # rows loaded (80 columns: no TYPE column, the type in GUEST)
    fi
    quit_and_check "$name"
    T kill-server 2>/dev/null
}

# check_jobs DB ALLOWED_OWNERS: after a quit. ALLOWED_OWNERS: engines (killed) whose running jobs
# may stay running; "" for none. STRICT=1: every job is queued with 0 tries or succeeded with 1.
check_jobs() {
    local db=$1 allowed=$2 strict=${3:-1} o bad
    [ "$(n_state "$db" failed)" = 0 ] || fail "failed jobs after a quit: $(counts "$db")"
    for o in $(owners "$db"); do
        echo "$allowed" | grep -qx "$o" || fail "job(s) left running by engine $o after the console quit: $(counts "$db")"
    done
    if [ "$strict" = 1 ]; then
        bad=$(counts "$db" | grep -Ev ' (queued 0/3|succeeded 1/3)$')
        [ -z "$bad" ] || fail "a quit left jobs in a wrong state or charged attempts: $bad"
    fi
}

# drain DB: workers until every job succeeded (a killed worker's jobs come back when its lease ends)
drain() {
    local db=$1 i
    for ((i = 0; i < 30; i++)); do
        "$ASPEN" worker --db "$db" --workers 50 --until-idle --quiet >/dev/null 2>"$TMP/drain.err" ||
            { cat "$TMP/drain.err" >&2; fail "aspen worker --until-idle failed"; }
        [ "$(counts "$db" | grep -cv ' succeeded ')" = 0 ] && return 0
        sleep 1
    done
    fail "jobs did not all finish: $(counts "$db")"
}

# top_up DB N TYPE PAYLOAD: submit jobs until N are queued (one transaction, aspen submit --count)
top_up() {
    local db=$1 n=$2 type=$3 payload=$4 have
    have=$(n_state "$db" queued)
    if ((have < n)); then
        "$ASPEN" submit --db "$db" --type "$type" --payload "$payload" --count $((n - have)) >/dev/null ||
            fail "aspen submit --count failed"
    fi
}

t0=$SECONDS
for n in 1 50; do
    echo "== $n queued job(s), $STARTS starts ($((SECONDS - t0)) s)"
    db=$TMP/q$n.db
    top_up "$db" "$n" sleep "$SLEEP"
    for ((it = 0; it < STARTS; it++)); do
        open_and_quit "q$n" "$it" "$db"
        check_jobs "$db" ""
        top_up "$db" "$n" sleep "$SLEEP"
    done
    drain "$db"
    check_jobs "$db" ""
done

echo "== 5000 queued jobs, $STARTS starts ($((SECONDS - t0)) s)"
db=$TMP/q5000.db
for ((it = 0; it < STARTS; it++)); do
    top_up "$db" 5000 echo '{"n": 1}'
    open_and_quit q5000 "$it" "$db"
    check_jobs "$db" ""
done
drain "$db"
check_jobs "$db" ""

echo "== jobs left running by a killed worker, $STARTS starts ($((SECONDS - t0)) s)"
db=$TMP/killed.db
dead=
for ((it = 0; it < STARTS; it++)); do
    # fresh jobs each time: the earlier workers' claims stay theirs until their leases run out
    "$ASPEN" submit --db "$db" --create --type sleep --payload "$SLEEP" --max-attempts 100 --count 4 >/dev/null ||
        fail "aspen submit failed"
    "$ASPEN" worker --db "$db" --workers 2 --quiet >/dev/null 2>"$TMP/worker.err" &
    WORKER_PID=$!
    t1=$SECONDS # a worker under ASan on a loaded machine may take seconds to claim
    until [ -n "$(owners "$db" | grep -vxF "$dead")" ] || ((SECONDS - t1 >= 30)); do sleep 0.05; done
    new=$(owners "$db" | grep -vxF "$dead")
    [ -n "$new" ] || { cat "$TMP/worker.err" >&2; fail "the worker never started a job within 30 s"; }
    kill -9 "$WORKER_PID"
    wait "$WORKER_PID" 2>/dev/null
    WORKER_PID=
    dead=$(printf '%s\n%s\n' "$dead" "$new" | grep -v '^$' | sort -u)
    [ -n "$(owners "$db")" ] || fail "no job was left running by the killed worker"
    open_and_quit killed "$it" "$db"
    check_jobs "$db" "$dead" 0 # a killed worker's jobs may be charged (recovered attempts)
done
drain "$db"

echo "== SIGTERM, then SIGTERM and SIGINT again while the engine stops ($((SECONDS - t0)) s)"
db=$TMP/term.db
"$ASPEN" submit --db "$db" --create --type sleep --payload '{"ms": 60000}' >/dev/null || fail "aspen submit failed"
launch term 80 24 "$db" --workers 1 --grace 1500
wait_for "^ +1 +(type:sleep|-) +running " 20
pid=$(pgrep -P "$(T list-panes -t c -F '#{pane_pid}')" -x aspen)
[ -n "$pid" ] || fail "no console process under the tmux pane"
kill -TERM "$pid"
wait_for "Stopping: 1 running job" 5
kill -TERM "$pid"
kill -INT "$pid"
RUNNING=
t1=$SECONDS # the stop's grace (1.5 s) and then the exit: bounded at 30 s, a loaded machine is slow
until [ -s "$TMP/term.exit" ] || ((SECONDS - t1 >= 30)); do sleep 0.05; done
[ "$(cat "$TMP/term.exit" 2>/dev/null)" = 0 ] || fail "the console exited with $(cat "$TMP/term.exit" 2>/dev/null) after a second signal during its stop"
bad=$(counts "$db" | grep -v ' queued 0/3$')
[ -z "$bad" ] || fail "the running job was not handed back uncharged: $bad"

echo "PASS: console start tests ($((SECONDS - t0)) s)"
