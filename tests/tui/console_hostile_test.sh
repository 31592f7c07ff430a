#!/usr/bin/env bash
# tests/tui/console_hostile_test.sh — job fields that try to drive the terminal, in the console.
#
#   console_hostile_test.sh ASPEN_BINARY TEST_CLI_OUTPUT_BINARY
#
# tests/cli/test_cli_output --make-db writes two databases: jobs an engine ran whose result, error
# and log lines carry an OSC title sequence ("\x1b]0;pwned\x07"), a clear-screen CSI, CR, U+202E,
# C1 CSI as UTF-8 and as the raw byte 0x9b, bidi isolates and bytes that are not UTF-8, with a
# bidi override in the payload and tags; and a job written straight into a store whose type and
# guest name are that text. The console must show all of it escaped in the jobs table, the detail
# and the logs pane (at 120x40 and 80x24): the pane title never becomes "pwned", the screen is
# never cleared, and the escapes are there to read. Needs /dev/kvm and tmux: fails, never skips.
set -u

ASPEN=${1:?usage: console_hostile_test.sh ASPEN_BINARY TEST_CLI_OUTPUT_BINARY}
MAKER=${2:?usage: console_hostile_test.sh ASPEN_BINARY TEST_CLI_OUTPUT_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-hostile.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

read -r OK_ID FAIL_ID RAW_ID < <("$MAKER" --make-db "$TMP") || fail "test_cli_output --make-db failed"
[ -n "$RAW_ID" ] || fail "test_cli_output --make-db printed no job ids"
SHOWN='\x1b]0;pwned\x07|\x1b[2J|\r|\u202e|\u009b|\x9b|\xff\xfe|\u2066|\u061c'

untouched() {
    local title
    title=$(T display -p -t c '#{pane_title}')
    [ "$title" != pwned ] || fail "a job's text set the terminal's title"
    screen | grep -q "Aspen console |" || fail "the header is gone (was the screen cleared?)"
}

echo "== 120x40: table, detail, logs of jobs with hostile result, error and log lines"
launch run 120 40 "$TMP/run.db" --workers 1 --grace 200
wait_for "Aspen console \| running" 20
wait_for "^ +$FAIL_ID +hostile_fail "
wait_for_text '\x1b]0;pwned\x07|\x1b[2J|\r|\u202e' # the error column, cut to fit
untouched
keys : && type_text "job $OK_ID" && keys Enter
wait_for "Job $OK_ID +succeeded"
wait_for_text "  $SHOWN" # the output, whole
wait_for_text "(not UTF-8 text: bytes shown as \\xNN)"
wait_for_text '"m": "\u202eabc"'
wait_for_text '["ok","\u202ertl","\u009bc1"]'
wait_for_text "#1 $SHOWN" # its log line
untouched
keys l
wait_for "Logs of job $OK_ID"
wait_for_text "$SHOWN"
keys Escape # back where l came from: the detail (issue 9: it landed in all jobs' logs)
wait_for "Job $OK_ID +succeeded"
keys Escape
wait_gone "Job $OK_ID +succeeded"
wait_for "^ +$FAIL_ID +hostile_fail "
keys : && type_text "job $FAIL_ID" && keys Enter
wait_for "Job $FAIL_ID +failed"
wait_for_text "  $SHOWN" # the error
wait_for_text "about to fail: $SHOWN"
untouched
keys Escape
quit_and_check run

echo "== 80x24: a job whose type and guest name are hostile, failed by the console's engine"
launch raw 80 24 "$TMP/raw.db" --workers 1 --grace 200
wait_for "Aspen console \| running" 20
# the guest column (type is not shown at 80 columns), escaped and cut to its 16 columns with the
# cut marker (trial 11)
wait_for_text '\x1b]0;pwned\x0…'
wait_for "failed"
untouched
keys Enter
wait_for "Job $RAW_ID +failed"
# the escaped value is one word of 73 columns: it goes whole onto the row under its label (the
# detail wraps at words), where the old wrap cut it at 80 columns
wait_for "^   type *$"
wait_for "^   guest *$"
wait_for_text " ${SHOWN}"
[ "$(screen | grep -cF -- " ${SHOWN}")" -ge 2 ] || fail "the type and the guest are not both shown whole"
wait_for_text '["ok", "\xff\xfe", "\u202e"]'
untouched
keys Escape
quit_and_check raw

echo "PASS: console hostile text tests"
