#!/usr/bin/env bash
# tests/tui/console_core_test.sh — a failed job's core from the console (issue 11), through tmux
# against the real build: the detail of a job whose attempt faulted (the debuggee, built with
# symbols) lists the core under "Debugging"; C writes it (with the guest ELF beside it) into the
# console's directory and the status line shows the gdb command, which opens it at crash_here
# without gdb's "may not match" (the ELF's name is at most 15 bytes, as the core keeps it);
# :core FILE writes it where asked; C on a job that kept no core says why (a success; a --source
# job whose build failed: the guest never ran). Needs /dev/kvm, tmux
# and gdb: fails, never skips, without them.
set -u

ASPEN=${1:?usage: console_core_test.sh ASPEN_BINARY DEBUGGEE}
DEBUGGEE=${2:?usage: console_core_test.sh ASPEN_BINARY DEBUGGEE}
TMP=$(mktemp -d /tmp/aspen-tui-core.XXXXXX)
. "$(dirname "$0")/tmux_lib.sh"
trap 'kill_servers; rm -rf "$TMP"' EXIT
need_kvm_and_tmux
command -v gdb >/dev/null || fail "gdb is not installed (apt-get install gdb)"

DB=$TMP/core.db
"$ASPEN" submit "$DEBUGGEE" --payload '"crash"' --max-attempts 1 --db "$DB" --create >/dev/null || fail "submit"
"$ASPEN" submit echo-worker --payload '{"message":"hi"}' --db "$DB" >/dev/null || fail "submit echo"
# a --source job whose build fails: its attempt never entered the guest
mkdir -p "$TMP/broken"
printf '#include <aspen.h>\nstatic int h(const uint8_t *in, size_t len, aspen_buf *out)\n{ return undeclared_here; }\nASPEN_JOB_HANDLER(h);\n' >"$TMP/broken/main.c"
"$ASPEN" submit --source "$TMP/broken" --max-attempts 1 --db "$DB" >/dev/null || fail "submit broken source"
"$ASPEN" worker --until-idle --quiet --db "$DB" || fail "worker"

launch core 160 40 "$DB" --workers 1
wait_for "Aspen console" 20
wait_for " 1 vm_execute +debuggee +failed"
keys :
type_text "job 1"
keys Enter
wait_for "^ *Debugging"
wait_for "attempt 1 kept an ELF core \([0-9]+ KiB\): C writes it"
keys C
CWD=$TMP/core.cwd
wait_for_text "core of job 1 attempt 1"
# the ELF's name is one gdb matches to the core: at most 15 bytes (the core keeps no more of the
# program's name), so gdb does not warn "core file may not match specified executable file"
wait_for_text "written: gdb $CWD/job-1-1 $CWD/aspen-core-1-1"
[ -s "$CWD/aspen-core-1-1" ] || fail "no core file in the console's directory"
[ -s "$CWD/job-1-1" ] || fail "no guest ELF beside the core"
out=$(timeout 600 gdb -nx -batch -ex bt "$CWD/job-1-1" "$CWD/aspen-core-1-1" 2>&1)
echo "$out" | grep -q "in crash_here" || fail "gdb shows no crash_here: $out"
echo "$out" | grep -q "SIGSEGV" || fail "gdb shows no SIGSEGV: $out"
echo "$out" | grep -qi "may not match" && fail "gdb warns the core does not match its ELF: $out"
mv "$CWD/aspen-core-1-1" "$CWD/job-1-1" "$TMP/"

keys :
type_text "core $TMP/named"
keys Enter
wait_for_text "written: gdb $TMP/named.elf $TMP/named"
[ -s "$TMP/named" ] || fail ":core FILE wrote nothing"
out=$(timeout 600 gdb -nx -batch -ex bt "$TMP/named.elf" "$TMP/named" 2>&1)
echo "$out" | grep -q "in crash_here" || fail "gdb shows no crash_here for :core FILE: $out"
echo "$out" | grep -qi "may not match" && fail "gdb warns :core FILE's core does not match: $out"
# a FILE whose FILE.elf would be over 15 bytes: the ELF is named job-ID-ATTEMPT beside it
keys :
type_text "core $TMP/a-long-core-file-name"
keys Enter
wait_for_text "written: gdb $TMP/job-1-1 $TMP/a-long-core-file-name"
out=$(timeout 600 gdb -nx -batch -ex bt "$TMP/job-1-1" "$TMP/a-long-core-file-name" 2>&1)
echo "$out" | grep -q "in crash_here" || fail "gdb shows no crash_here for a long FILE: $out"
echo "$out" | grep -qi "may not match" && fail "gdb warns a long FILE's core does not match: $out"

keys Escape
keys :
type_text "job 2"
keys Enter
wait_for "Job 2"
keys C
wait_for "job 2 keeps no core: its attempt 1 succeeded; cores are kept for faults"
keys Escape
# the build failed: no core because the guest never ran, not the generic "only a failed attempt
# of a micro-VM job keeps one" (which read as if a core had been lost)
keys :
type_text "job 3"
keys Enter
wait_for "Job 3"
keys C
wait_for "job 3 keeps no core: its attempt 1 failed building its guest from source, so the guest"
wait_for "never ran"
screen | grep -q "only a failed attempt" && fail "C on a failed build gave the generic reason"
keys Escape
# aspen core says the same, with the --db of this database
out=$("$ASPEN" core 3 -o "$TMP/c3" --db "$DB" 2>&1) && fail "aspen core of a failed build succeeded"
echo "$out" | grep -qF "job 3 keeps no core: its attempt 1 failed building its guest from source, so the guest never ran and there is no guest memory to dump (aspen show 3 --db '$DB' has the compiler's message)" \
    || fail "aspen core of a failed build: $out"
keys Escape
keys Escape
wait_for "ID. +TYPE +GUEST"
quit_and_check core
echo "PASS: console cores"
