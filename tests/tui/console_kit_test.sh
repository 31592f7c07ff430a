#!/usr/bin/env bash
# tests/tui/console_kit_test.sh — what issue 11's trial of the guest developer kit found in the
# console's submit form and job detail, at 80x24 through tmux against the real build:
#   - a path typed into Guest/type is the guest (shown as typed, checked as typed: a file that is
#     no guest, a FIFO, a directory, a missing file are marked with the reason and never
#     submitted); Ctrl-S submits that file, never the guest highlighted before; text that matches
#     no guest is marked invalid, not the last match;
#   - the guest list is read again when the form opens: a guest copied into the guest directory
#     while the console runs is offered;
#   - rust-echo-worker and rust-data-processor get the same sample payloads as their C twins;
#   - the Memory field takes what aspen submit --memory takes (refuses what it refuses), its size
#     goes with the job, and S (a copy) brings it back;
#   - C on a job whose attempt ended in a job error says that is why there is no core;
#   - the detail's Debugging section says C writes the last attempt's core and gives the command
#     for the others, their wrapped rows indented under the item.
# Needs /dev/kvm and tmux: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_kit_test.sh ASPEN_BINARY DEBUGGEE}
DEBUGGEE=${2:?usage: console_kit_test.sh ASPEN_BINARY DEBUGGEE}
SRC=${ASPEN_GUEST_DIR:?ASPEN_GUEST_DIR: the built guests (run through ctest)}
TMP=$(mktemp -d /tmp/aspen-tui-kit.XXXXXX)
# a home of its own, for the ~/ path the form expands (the console inherits it through tmux)
HOME_T=$TMP/home
mkdir -p "$HOME_T"
export HOME=$HOME_T
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

# the console's own guest directory, so one can be added while it runs
G=$TMP/guests
mkdir -p "$G"
for g in echo-worker data-processor rust-echo-worker rust-data-processor; do
    cp "$SRC/$g" "$G/" || fail "no built guest $SRC/$g (make build)"
done
export ASPEN_GUEST_DIR=$G
# what a user types as a guest: a good one by path, and hostile ones
X=$TMP/x
mkdir -p "$X/dir"
cp "$SRC/echo-worker" "$X/greeter-dbg"
printf 'these are notes, not a guest\n' >"$X/notes.txt"
mkfifo "$X/fifo"

DB=$TMP/kit.db
"$ASPEN" submit data-processor --payload '{"records":5}' --max-attempts 1 --db "$DB" --create \
    >/dev/null || fail "submit the job error"
"$ASPEN" submit "$DEBUGGEE" --payload '"crash"' --max-attempts 2 --db "$DB" >/dev/null ||
    fail "submit the crash"
"$ASPEN" worker --until-idle --quiet --db "$DB" || fail "worker"
"$ASPEN" show 2 --db "$DB" | grep -q "attempts    2 of 2" || fail "job 2 did not run twice: $("$ASPEN" show 2 --db "$DB")"

njobs() { "$ASPEN" jobs --db "$DB" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
joined() { screen | sed -E 's/^ *[│x] +//; s/ +[│x] *$//' | tr '\n' ' ' | tr -s ' '; }
wait_joined() {
    local i
    for ((i = 0; i < 200; i++)); do joined | grep -qF -- "$1" && return 0; sleep 0.05; done
    fail "the screen does not say '$1': $(joined)"
}
narrow() {
    [ "$(screen | python3 -c 'import sys; print(sum(len(l.rstrip("\n")) > 80 for l in sys.stdin))')" = 0 ] ||
        fail "a line is wider than 80 columns"
}

launch kit 80 24 "$DB" --workers 0
wait_for "Aspen console" 20
wait_for " 2 debuggee +failed" 20

echo "== a typed path is the guest, checked as typed"
keys s
wait_for "Submit a job"
wait_for "< echo-worker >"
type_text "$X/greeter-dbg"
wait_for_text "$X/greeter-dbg"
wait_for "guest file \(VM\)"
screen | grep -q "< echo-worker >" && fail "the highlighted guest is still shown beside a typed path"
screen | grep -q "find:" && fail "a typed path is shown as a search"
narrow
keys C-s
wait_for "submitted job 3 "
"$ASPEN" show 3 --db "$DB" | grep -q "greeter-dbg" || fail "job 3 is not the typed guest: $("$ASPEN" show 3 --db "$DB")"
[ "$(njobs)" = 3 ] || fail "not one job submitted"

echo "== hostile paths are marked with the reason and never submitted"
keys s
wait_for "Submit a job"
type_text "$X/notes.txt"
wait_for "x!Guest/type"
wait_joined "$X/notes.txt is not an Aspen guest"
keys C-s
wait_for "x!Guest/type"
screen | grep -q "Submit a job" || fail "Ctrl-S closed the form with a bad guest"
keys C-u
type_text "$X/fifo" # opened without waiting for a writer: the console answers
wait_joined "$X/fifo is not a file (a device, FIFO or socket)"
keys C-u
type_text "$X/dir"
wait_joined "$X/dir is not a file (a directory)"
keys C-u
type_text "$X/missing"
wait_joined "$X/missing: No such file or directory"
keys C-u
type_text "/$(printf 'a%.0s' {1..4200})" # longer than any path: refused, never cut to another
wait_joined "a guest path is at most 4095 bytes"
keys C-s
[ "$(njobs)" = 3 ] || fail "a bad guest path was submitted"

echo "== text that matches no guest is not the last match"
keys C-u
type_text "rust-echo"
wait_for "< rust-echo-worker >"
type_text "zz"
wait_for "x!Guest/type"
wait_for "no such guest or type"
screen | grep -q "< rust-echo-worker >" && fail "a name that matches none still shows the last match"
keys C-s
[ "$(njobs)" = 3 ] || fail "text that matches no guest submitted one"
keys Right # back to the offered ones: valid again
wait_gone "x!Guest/type"
keys Escape
wait_gone "Submit a job"

echo "== the Rust guests get the C guests' sample payloads"
keys s
wait_for "Submit a job"
type_text "rust-echo-worker"
wait_for "< rust-echo-worker >"
wait_for '"message": "hello from the console"'
keys C-u
type_text "rust-data-processor"
wait_for "< rust-data-processor >"
wait_for '"city": "paris"'
keys Escape

echo "== a guest copied in while the console runs is offered"
cp "$SRC/echo-worker" "$G/late-guest"
keys s
wait_for "Submit a job"
type_text "late-guest"
wait_for "< late-guest > guest \(VM\)"
keys C-s
wait_for "submitted job 4 "
"$ASPEN" show 4 --db "$DB" | grep -q "late-guest" || fail "job 4 is not late-guest"

echo "== Memory, as aspen submit --memory"
keys s
wait_for "Submit a job"
wait_for "Memory +\(default\)"
narrow
keys BTab BTab # Guest -> [ Submit ] -> Memory
type_text "10x"
wait_for "x!Memory"
wait_joined "guest memory wants a size like 1M, 512K or 64MiB, not '10x'"
keys C-s
[ "$(njobs)" = 4 ] || fail "a bad memory size was submitted"
keys C-u
type_text "2G"
wait_joined "guest memory must be between 64 KiB and 1 GiB"
keys C-u
type_text "99999999999999999999999"
wait_for "x!Memory"
keys C-u
type_text "2M"
wait_gone "x!Memory"
keys C-s
wait_for "submitted job 5 "
"$ASPEN" show 5 --db "$DB" | grep -q "memory 2 MiB" || fail "job 5 lacks its 2M: $("$ASPEN" show 5 --db "$DB")"
keys :
type_text "job 5"
keys Enter
wait_for "Job 5"
keys S
wait_for "Submit a job"
wait_for "Memory +2M "
keys Escape
keys Escape

echo "== no core after a job error says why"
keys :
type_text "job 1"
keys Enter
wait_for "Job 1"
keys C
wait_joined "job 1 keeps no core: its attempt 1 ended in a job error"
keys Escape

echo "== which core C writes, the others' command, wrapped rows indented"
keys :
type_text "job 2"
keys Enter
wait_for "Job 2"
wait_for "1-18 of [0-9]+" 15
# down a page at a time until the section and both its cores are on the screen
debug() { screen | sed '$d' | sed -n '/^ Debugging/,/^ [A-Z][a-z]/p'; } # to the next section; not the footer
for ((i = 0; i < 10; i++)); do
    debug | grep -q "attempt 2 kept" && break
    keys NPage
    sleep 0.3
done
for ((i = 0; i < 100; i++)); do debug | grep -q "attempt 2 kept an ELF core" && break; sleep 0.05; done
d=$(debug | tr '\n' ' ' | tr -s ' ')
echo "$d" | grep -qF "attempt 1 kept an ELF core" || fail "attempt 1's core is not listed: $d"
echo "$d" | grep -qE "attempt 1 kept an ELF core \([0-9]+ KiB\): C writes attempt 2's, not this one; aspen core 2 --attempt 1 -o FILE --db '[^']*kit\.db' writes this one" ||
    fail "attempt 1's line does not say C writes attempt 2's and how to get it: $d"
echo "$d" | grep -qE "attempt 2 kept an ELF core \([0-9]+ KiB\): C writes it \(the last attempt's core\)" ||
    fail "attempt 2's line does not say C writes it: $d"
# every row of an item after its first starts under its text (col 5), never at the margin
debug | sed 1d | grep -Ev '^   attempt|^     [^ ]|^ *$|^ [A-Z]' | grep -q . &&
    fail "a wrapped row is not indented under its item: $(debug)"
debug | grep -qE '^     [^ ]' || fail "no wrapped row at 80 columns to check: $(debug)"
narrow
keys C
wait_for_text "core of job 2 attempt 2"
rm -f "$TMP/kit.cwd/"*
keys Escape
keys Escape
wait_for "ID. +TYPE|ID +GUEST|GUEST"

echo "== a path typed from ~ is the home directory's, as a shell gives it to aspen submit"
cp "$X/greeter-dbg" "$HOME_T/tilde-guest"
keys s
wait_for "Submit a job"
type_text "~/tilde-guest"
wait_for "guest file \(VM\)"
keys C-s
wait_for "submitted job 6 "
"$ASPEN" show 6 --db "$DB" | grep -q "tilde-guest" || fail "job 6 is not ~/tilde-guest: $("$ASPEN" show 6 --db "$DB")"
quit_and_check kit
echo "PASS: console kit (issue 11)"
