#!/usr/bin/env bash
# tests/tui/console_narrow_test.sh — what a new user's trial found cut or silent at 80x24 (issue 9):
# the Schedules pane's header and its NEXT RUN column fit 80 columns (the zone, last run and run
# count of the schedule under the cursor move to the footer line), and `:sort bogus` says the
# column is unknown, lists the columns, and offers the near miss for a typo.
#
#   console_narrow_test.sh ASPEN_BINARY
set -u

ASPEN=${1:?usage: console_narrow_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-narrow.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

DB=$TMP/n.db
"$ASPEN" cron add a-rather-long-schedule-name '*/5 * * * *' --type echo --tz Europe/Berlin --db "$DB" --create \
    >/dev/null || fail "cron add"
launch narrow 80 24 "$DB" --workers 1
wait_for "Aspen console"
keys 5
wait_for "Schedules: 1 \(0 paused\)"
# the whole header line and the column heads are on screen, not cut at the right edge
wait_for "Schedules: 1 \(0 paused\) \| enqueued by engine [0-9]+ \(this console\)" 10
screen | grep -Eq '^  NAME +SCHEDULE +STATE +NEXT RUN +LAST JOB' || fail "the column heads at 80 columns"
# the row: its name cut with the marker, its next run with date, time and how far off, in view
screen | grep -Eq 'a-rather-long… +\*/5 \* \* \* \* +active +[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} \(in [0-9]+[smh]\)' ||
    fail "the schedule's next run is not in view at 80 columns"
# what the row dropped is in the footer line for the schedule under the cursor
wait_for "a-rather-long-schedule-name: tz Europe/Berlin, last run -, 0 runs" 5
screen | awk 'length($0) > 80 { exit 1 }' || fail "a line wider than 80 columns"

# :sort with a column that does not exist says so, with the columns; a typo gets "did you mean"
keys :
type_text "sort bogus"
keys Enter
# (at 80 columns the message wraps onto a second line rather than being cut)
wait_for_text "unknown sort column 'bogus' (columns: id state guest priority" 5
screen | tr '\n' ' ' | grep -Fq "attempts age duration queue)" || fail "the sort refusal's list of columns is cut"
keys :
type_text "sort gust"
keys Enter
wait_for_text "unknown sort column 'gust', did you mean guest?" 5
quit_and_check narrow
echo "PASS: console_narrow_test"
