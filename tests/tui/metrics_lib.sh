# tests/tui/metrics_lib.sh — what the Metrics pane's tmux tests share (sourced after tmux_lib.sh,
# with ASPEN and DB set): the run time format of the console, values from `aspen metrics --json`,
# and the check that the pane's table and the header show the same numbers as the CLI.

# fmt_us US: a run time as the console prints it (tui_fmt_us: 85us, 1.3ms, 12ms, 1.2s, 12s)
fmt_us() {
    python3 -c '
import sys
us = int(sys.argv[1]); ms = us // 1000
if us == 0: print("<1ms")  # in-process: a handlers time is counted in whole ms
elif us < 1000: print("%dus" % us)
elif us < 10000: print("%d.%dms" % (ms, us % 1000 // 100))
elif ms < 1000: print("%dms" % ms)
elif ms < 10000: print("%d.%ds" % (ms // 1000, ms % 1000 // 100))
elif ms < 60000: print("%ds" % (ms // 1000))
else: sys.exit("run time %d us: too long for this test" % us)' "$1"
}

# m_json SINCE PY_EXPR: one value from aspen metrics --json (d is the document)
m_json() {
    "$ASPEN" metrics --since "$1" --json --db "$DB" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$2"
}

# row_regex LABEL JSON_POINT_EXPR: the table row's finished, failed and p50/p95/p99 as the pane
# prints them, from the JSON point (the total or one of "guests")
row_regex() {
    local label=$1 expr=$2 fin failed p50 p95 p99
    fin=$(m_json 1h "$expr[\"finished\"]")
    failed=$(m_json 1h "$expr[\"failed\"]")
    p50=$(fmt_us "$(m_json 1h "$expr[\"run_us\"][\"p50\"]")")
    p95=$(fmt_us "$(m_json 1h "$expr[\"run_us\"][\"p95\"]")")
    p99=$(fmt_us "$(m_json 1h "$expr[\"run_us\"][\"p99\"]")")
    echo "$label +$fin +$failed +(<?[0-9.]+k?) +$p50 +$p95 +$p99 *\$"
}

check_numbers() { # the total, every type / guest row and the header against aspen metrics --json
    local n i label
    wait_for "$(row_regex '^> all' 'd["total"]')"
    n=$(m_json 1h 'len(d["guests"])')
    [ "$n" = 3 ] || fail "wanted 3 type / guest rows in aspen metrics --json, got $n"
    for ((i = 0; i < n; i++)); do
        label=$(m_json 1h "(lambda g: g['type'] + (' / ' + g['guest'] if g['guest'] else ''))(d['guests'][$i])")
        wait_for "$(row_regex "^  $label" "d[\"guests\"][$i]")"
    done
    local h50 h95
    h50=$(fmt_us "$(m_json 5m 'd["total"]["run_us"]["p50"]')")
    h95=$(fmt_us "$(m_json 5m 'd["total"]["run_us"]["p95"]')")
    wait_for "p50 $h50 p95 $h95 \((last )?5m"
}

# run_history_jobs: 12 echo-worker guests, a test-fail (one attempt) and 5 in-process sleeps of
# 20 ms, run by an `aspen worker --until-idle` process that exits; the history holds 18 attempts.
run_history_jobs() {
    "$ASPEN" submit echo-worker --payload '{"message":"m"}' --count 12 --db "$DB" --create >/dev/null ||
        fail "submit echo-worker"
    "$ASPEN" submit test-fail --max-attempts 1 --db "$DB" >/dev/null || fail "submit test-fail"
    "$ASPEN" submit --type sleep --payload '{"ms": 20}' --count 5 --db "$DB" >/dev/null ||
        fail "submit sleep"
    "$ASPEN" worker --until-idle --quiet --db "$DB" >"$TMP/worker.out" 2>&1 ||
        { cat "$TMP/worker.out" >&2; fail "aspen worker --until-idle"; }
    [ "$(m_json 1h 'd["total"]["finished"]')" = 18 ] || fail "the history does not hold the 18 attempts"
    [ "$(m_json 1h 'd["total"]["failed"]')" = 1 ] || fail "the history does not hold the failure"
}
