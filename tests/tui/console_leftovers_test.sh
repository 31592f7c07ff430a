#!/usr/bin/env bash
# tests/tui/console_leftovers_test.sh — what was left of issue 9, driven through tmux against the
# real build at 80x24 (and the question at 200x50):
#   - :sort duration while a worker process finishes jobs: G lands on the true last row (the oldest
#     job not finished: a queued job that finishes moves up the list, and the cursor's row then
#     came from the middle) and the counter says N/N, read after read, until the last one finished;
#   - :limit in the Jobs pane says where it works (it did nothing and said nothing); :logs 999999
#     says there is no job 999999 and goes back;
#   - the question (d) owns its rows: nothing of the table beside it, nothing of it left after n,
#     its keys once (80x24, 200x50, and c at 100x30 over guests named in double-width CJK);
#   - the submit form's keys are shown once; its Timeout takes what aspen submit --timeout takes
#     (30s, 1h, a bare number of milliseconds) and refuses the rest saying so;
#   - :export of 100,000 jobs says how far it is while the keys work, then where the file went and
#     how many rows (each job once).
# PART (second argument) is "console" (all but the export) or "export" (its 100,000 jobs take a
# while to submit on a loaded machine: a test of its own, with its own time limit).
# Every check polls `tmux capture-pane` until it holds or a deadline passes. Needs /dev/kvm and
# tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_leftovers_test.sh ASPEN_BINARY console|export}
PART=${2:?usage: console_leftovers_test.sh ASPEN_BINARY console|export}
TMP=$(mktemp -d /tmp/aspen-tui-leftovers.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
WORKER=
trap '[ -n "$WORKER" ] && kill "$WORKER" 2>/dev/null; kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

# the last job row on screen: "ID STATE" (80 columns: ID, GUEST "type:T" for an in-process job,
# STATE, ...)
# (a row not loaded yet is drawn "  ..." and reads as empty: the last job row above it is not the
# table's last row)
row_of() { grep -E '^ +[0-9]+ +(type:[a-z]+|-) +[a-z]+ |^ +\.\.\. *$' | tail -1 | awk '$1 != "..." {print $1, $3}'; }
last_row() { screen | row_of; }
# wait_joined TEXT [SECONDS]: the screen's lines joined by blanks hold TEXT (a message wrapped at
# 80 columns, a path on a line of its own)
wait_joined() {
    local i
    for ((i = 0; i < ${2:-15} * 20; i++)); do
        screen | sed 's/ *$//' | tr '\n' ' ' | grep -Fq -- "$1" && return 0
        sleep 0.05
    done
    fail "waited ${2:-15}s for '$1' (lines joined)"
}
# the true last row under :sort duration (descending): the first of the ascending sort
true_last() { "$ASPEN" jobs --db "$DB" --sort duration --limit 1 | awk 'NR == 2 {print $1}'; }

if [ "$PART" = console ]; then
DB=$TMP/sort.db
"$ASPEN" submit --type echo --count 1000 --db "$DB" --create >/dev/null || fail "submit echo"
"$ASPEN" worker --until-idle --quiet --workers 2 --db "$DB" || fail "worker"
# 1001..1300: 150 ms each, for the worker started below
"$ASPEN" submit --type sleep --payload '{"ms":150}' --count 300 --db "$DB" >/dev/null || fail "submit sleep"

echo "== :sort duration and G while a worker finishes jobs"
launch sort 80 24 "$DB" --workers 0
wait_for "Aspen console" 20
wait_for " 1/1300( |$)"
keys :
type_text "sort duration"
keys Enter
wait_for "sorted by duration over every matching job"
"$ASPEN" worker --until-idle --quiet --workers 1 --db "$DB" &
WORKER=$!
# the worker has finished some: the list is moving
done_sleeps() { "$ASPEN" jobs --db "$DB" --filter "succeeded type:sleep" --all --json | grep -c '"id"'; }
for ((i = 0; i < 600; i++)); do
    [ "$(done_sleeps)" -ge 5 ] && break
    sleep 0.1
done
keys G
wait_for " 1300/1300( |$)"
# read after read while jobs finish: the bottom row is the oldest job not yet finished (queued or
# running; the oldest by id, the sort's tie order), never a finished one from the middle; what the
# screen showed is at most that old when asked after, since the oldest unfinished only grows
rounds=0
for ((i = 0; i < 400 && rounds < 6; i++)); do
    kill -0 "$WORKER" 2>/dev/null || break
    scr=$(screen)
    row=$(row_of <<<"$scr")
    grep -Eq ' 1300/1300( |$)' <<<"$scr" || fail "the counter is not 1300/1300 after G while jobs finish"
    read -r id state <<<"$row"
    # the rows of the page G moved to may still be loading (placeholders) in this frame: look
    # again (the loop is bounded, and fewer than 3 good reads fails below)
    if [ -z "$id" ]; then
        sleep 0.05
        continue
    fi
    after=$(true_last)
    if [ "$state" = succeeded ]; then
        # the worker may have finished the last ones since: then every row is a finished one
        kill -0 "$WORKER" 2>/dev/null && [ "$after" -ge 1001 ] &&
            "$ASPEN" jobs --db "$DB" --filter "id:$after" | grep -Eq "^$after +(queued|running)" &&
            fail "G's row is job $id ($state) while job $after is not finished yet"
    else
        [ "$id" -le "$after" ] || { echo "---- the screen read ----" >&2; echo "$scr" >&2
            fail "G's row is job $id but job $after was not finished after it"; }
        rounds=$((rounds + 1))
    fi
    sleep 0.5
done
[ "$rounds" -ge 3 ] || fail "only $rounds reads of G's row while the worker ran (it finished too soon?)"
# a move away and G again, still while jobs finish
keys k k
wait_for " 1298/1300( |$)"
keys G
wait_for " 1300/1300( |$)"
wait "$WORKER" || fail "the worker failed"
WORKER=
# every job finished: the last row is the store's shortest job, exactly
want=$(true_last)
for ((i = 0; i < 200; i++)); do
    [ "$(last_row)" = "$want succeeded" ] && break
    sleep 0.1
done
[ "$(last_row)" = "$want succeeded" ] || fail "the last row is '$(last_row)', the store's is job $want"
wait_for " 1300/1300( |$)"

echo "== :limit where it does not apply, :logs of no job"
keys :
type_text "limit 5"
keys Enter
wait_for ":limit works in the Queues pane \(6\), not here"
wait_for "^  ID.? +GUEST +STATE"
keys :
type_text "logs 999999"
keys Enter
wait_for "no job 999999 \(deleted, or never submitted\)"
wait_for "^  ID.? +GUEST +STATE"
screen | grep -q "Logs of job 999999" && fail ":logs 999999 stayed on the logs of no job"

echo "== the question owns its rows, leaves nothing behind, says its keys once"
check_question() { # SIZE [KEY QUESTION]: d (Delete job) unless another key and its question
    local key=${2:-d} question=${3:-Delete job}
    keys g
    wait_for " 1/[0-9]+( |$)"
    # the counter moves at once, the top rows land with their fetch: a key before them has no
    # row to act on (seen under load: d asked nothing)
    local i
    for ((i = 0; i < 300; i++)); do
        T capture-pane -p -e -t c | grep -a $'^\e\\[1;7m' | sed 's/\x1b\[[0-9;]*m//g' |
            grep -Eq '^ *[0-9]+ ' && break
        sleep 0.05
    done
    keys "$key"
    wait_for "$question"
    local scr
    scr=$(screen)
    # every row of the box (its edges drawn as x, its corners l k m j in the capture): blanks
    # outside it
    sed -n '/lq Confirm q*k *$/,/^ *mq*j *$/p' <<<"$scr" >"$TMP/box"
    [ "$(wc -l <"$TMP/box")" -ge 5 ] || fail "no whole box for the question at $1: $scr"
    grep -Ev '^ *(lq Confirm q*k|x.*x|mq*j) *$' "$TMP/box" && fail "text beside the question at $1"
    [ "$(grep -o 'y yes  n no' <<<"$scr" | wc -l)" = 1 ] || fail "the question's keys are not shown once at $1"
    keys n
    wait_gone "$question"
    scr=$(screen)
    grep -Eq "Confirm|$question|^ *x .* x *\$|^ *mqqq" <<<"$scr" && fail "the question left text behind at $1: $scr"
    return 0
}
check_question 80x24
T resize-window -t c -x 200 -y 50
wait_for "Aspen console"
check_question 200x50
T resize-window -t c -x 80 -y 24

echo "== the form: keys once, a timeout as aspen submit takes it"
keys s
wait_for "Submit a job"
wait_for "Timeout +30s "
[ "$(screen | grep -o '\^S submit' | wc -l)" = 1 ] || fail "the form's keys are not shown once"
keys Tab Tab
type_text abc
wait_for "x!Timeout +abc"
wait_for_text "timeout: milliseconds (a bare number) or a duration such as 500ms"
keys C-u
type_text 25h
wait_for_text "from 1ms to 24h, not '25h'"
keys C-u
type_text 1h
wait_for "payload is valid JSON"
keys C-s
wait_for "submitted job 1301 "
"$ASPEN" jobs --db "$DB" --filter id:1301 --json | grep -q '"timeout_ms": 3600000' || fail "the form's 1h is not 3600000 ms"
keys s
wait_for "Submit a job"
keys Tab Tab
type_text 1500
keys C-s
wait_for "submitted job 1302 "
"$ASPEN" jobs --db "$DB" --filter id:1302 --json | grep -q '"timeout_ms": 1500' ||
    fail "the form's bare 1500 is not 1500 ms (as aspen submit --timeout 1500)"

echo "== the question over rows of double-width text, at 100x30"
# guests named in CJK (two columns a character) under the box's edges: a character the box cuts
# must not leave half of itself, or the box, on the screen after it closes
cp "$ASPEN_GUEST_DIR/echo-worker" "$TMP/漢字漢字漢字漢字漢字漢字" || fail "copy the echo-worker ELF"
"$ASPEN" submit "$TMP/漢字漢字漢字漢字漢字漢字" --payload '{"message":"wide"}' --count 30 --db "$DB" >/dev/null ||
    fail "submit the wide-named guest"
keys :
type_text "sort id"
keys Enter
T resize-window -t c -x 100 -y 30
wait_for "漢字漢字"
check_question 100x30 c "Cancel job 1332"
T resize-window -t c -x 80 -y 24
quit_and_check sort
fi

if [ "$PART" = export ]; then
echo "== :export of 100,000 jobs: progress, the keys work, where and how many"
BIG=$TMP/big.db
"$ASPEN" submit --type echo --count 100000 --db "$BIG" --create >/dev/null || fail "submit 100000"
launch big 80 24 "$BIG" --workers 0
wait_for "Aspen console" 20
wait_for " 1/100000( |$)" 30
keys :
type_text "export big.jsonl"
keys Enter
wait_for "exporting the jobs matching '\(no filter\)' to big.jsonl: [0-9]+ of 100000"
keys j
wait_for " 2/100000( |$)"
wait_joined "exported 100000 jobs matching '(no filter)' to $TMP/big.cwd/big.jsonl" 120
[ "$(wc -l <"$TMP/big.cwd/big.jsonl")" = 100000 ] || fail "the export has $(wc -l <"$TMP/big.cwd/big.jsonl") lines"
[ "$(grep -Eo '^\{"id": ?[0-9]+' "$TMP/big.cwd/big.jsonl" | sort -u | wc -l)" = 100000 ] ||
    fail "the export does not hold 100000 different jobs"
mv "$TMP/big.cwd/big.jsonl" "$TMP/"
quit_and_check big
fi
echo "PASS ($PART)"
