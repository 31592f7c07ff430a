#!/usr/bin/env bash
# tests/tui/console_unique_test.sh — the submit form's Unique field at 80x24 (issue 10): the
# uniqueness rule as `aspen submit --unique...` takes it (a key, * for one derived from the guest
# and payload, or fields=a,b; then for=PERIOD and states=S,...). A bad period, an unknown state, a
# bad field path, an over-long pasted key and a rule without a key are refused in the form, the
# field in focus, nothing submitted; a paste with a newline goes into the one-line field as a
# blank; a duplicate submit from the form says it returned the existing job's id and writes
# nothing; the CLI sees the form's key; a key with terminal escapes in it is stored as given and
# drawn harmlessly.
#
#   console_unique_test.sh ASPEN_BINARY   (with ASPEN_PG_DIR set: on a new PostgreSQL database)
set -u

ASPEN=${1:?usage: console_unique_test.sh ASPEN_BINARY}
TMP=$(mktemp -d /tmp/aspen-tui-unique.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; pg_drop_db; rm -rf "$TMP"' EXIT
need_kvm_and_tmux

if [ -n "${ASPEN_PG_DIR:-}" ]; then # the PostgreSQL run (tui_console_unique_pg)
    pg_create_db aspen_tui_unique_$$
else
    DB=$TMP/u.db
fi
"$ASPEN" pause --db "$DB" --create >/dev/null || fail "pause" # nothing runs: the jobs stay queued
paste() { # a bracketed paste
    T set-buffer -b p -- "$1"
    T paste-buffer -p -b p -t c
}
njobs() { "$ASPEN" jobs --json --db "$DB" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# form_unique: a fresh form with the Unique field in focus
form_unique() {
    keys s
    wait_for "Submit a job"
    wait_for "Unique +\(none\) KEY or \* or fields=a,b"
    keys Tab Tab Tab Tab Tab Tab Tab Tab
}
# submitted: waits for "submitted job N" and prints N (PostgreSQL's ids need not be consecutive)
submitted() {
    wait_for "submitted job [0-9]+ "
    screen | grep -oE "submitted job [0-9]+ " | head -1 | awk '{print $3}'
}
refused() { # refused REGEX: the form says why, stays open, nothing was submitted
    keys C-s
    wait_for "$1"
    screen | grep -q "Submit a job" || fail "the form closed on a refused rule"
    [ "$(njobs)" = "$2" ] || fail "a refused rule submitted a job"
}

launch u 80 24 "$DB" --workers 1
wait_for "Aspen console"
form_unique
type_text "order-42 for=10x"
refused "unique for=: " 0
keys C-u
type_text "order-42 states=queud"
refused "unique states=: .*queued" 0
keys C-u
type_text "fields=a..b"
refused "unique: " 0
keys C-u
type_text "for=10m"
refused "unique: for= and states= need a key" 0
keys C-u
type_text "order-42 * "
refused "unique: give the key one way" 0
keys C-u
paste "$(head -c 600 /dev/zero | tr '\0' k)"
refused "unique: the key is 600 bytes; at most 512" 0

# a paste with a newline: one line, the newline a blank ("order-42 for=10m")
keys C-u
paste $'order-42\nfor=10m'
wait_for "Unique +order-42 for=10m"
keys C-s
J1=$(submitted)
[ "$(njobs)" = 1 ] || fail "the first unique submit did not write one job"

# the same key again: the existing job's id, nothing written
form_unique
type_text "order-42 for=10m"
keys C-s
wait_for "not submitted: job $J1 already exists for unique key order-42 \(queued"
[ "$(njobs)" = 1 ] || fail "a duplicate submit from the form wrote a job"
# the CLI finds the form's job under the same key
out=$("$ASPEN" submit --type echo --unique-key order-42 --db "$DB" 2>&1) || fail "cli duplicate: $out"
echo "$out" | grep -q "job $J1 already exists for unique key order-42" || fail "the CLI does not see the form's key: $out"

# derived from the guest and payload (*): a second submit of the same job is a duplicate; states=
# limits what counts
form_unique
type_text "*"
keys C-s
J2=$(submitted)
form_unique
type_text "* states=queued,running"
keys C-s
wait_for "not submitted: job $J2 already exists for unique key" # (the hash wraps onto the next line)
wait_for "^sha256:[0-9a-f]{64} \(queued"
[ "$(njobs)" = 2 ] || fail "a derived duplicate wrote a job"
# a key that only succeeded jobs would match: none is, so this one is written
form_unique
type_text "order-42 states=succeeded"
keys C-s
submitted >/dev/null
# count 3 under one key: one job, the other two duplicates of it
form_unique
type_text "batch-1"
keys BTab BTab BTab # Count
type_text "3"
keys C-s
wait_for "submitted job [0-9]+ .*2 of the 3 were duplicates"
[ "$(njobs)" = 4 ] || fail "count 3 under one key wrote more than one job"
# hostile: a pasted key with an escape sequence and a bell. The line editor drops control
# characters from every field, so the key is evil[2J-key; the duplicate's message is drawn
# through the sanitiser (the screen is neither cleared nor recoloured), and the CLI finds the job
# under that key
form_unique
paste $'evil\e[2J\a-key'
wait_for "Unique +evil\[2J-key"
keys C-s
J5=$(submitted)
form_unique
paste $'evil\e[2J\a-key'
keys C-s
wait_for "not submitted: job $J5 already exists for unique key evil\[2J-key"
screen | grep -q "Aspen console" || fail "the key cleared the screen"
[ "$(njobs)" = 5 ] || fail "the hostile key's duplicate wrote a job"
out=$("$ASPEN" submit --type echo --unique-key 'evil[2J-key' --db "$DB" 2>&1) || fail "cli: $out"
echo "$out" | grep -q "job $J5 already exists" || fail "the CLI does not find the form's key: $out"
quit_and_check u
echo "PASS: console_unique_test"
