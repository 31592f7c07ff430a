#!/usr/bin/env bash
# tests/guests/build_guest_musl_test.sh — scripts/build-guest.sh's musl mode (issue 11): a directory
# holding a plain C program (main(), no <aspen.h>) is built with musl-gcc -static, unmodified, and
# runs as a job (stdin the input, stdout the output, stderr lines the log, the exit status the
# outcome, --arg its argv); --musl forces the mode; an SDK guest is still built with the SDK, and
# --sdk forces that when the textual detection guesses wrong (docs/ABI.md section 12, "Which kind
# of guest a directory is"); contradictory flags and flags on a Rust crate are refused; a missing
# musl-gcc is named with the package to install. Needs /dev/kvm: fails, never skips.
set -u
ROOT=${1:?usage: build_guest_musl_test.sh SOURCE_DIR ASPEN}
ASPEN=${2:?usage: build_guest_musl_test.sh SOURCE_DIR ASPEN}
TMP=$(mktemp -d /tmp/aspen-musl-mode.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
B="$ROOT/scripts/build-guest.sh"

mkdir -p "$TMP/upper"
cat > "$TMP/upper/main.c" <<'C'
#include <ctype.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    int c;
    fprintf(stderr, "upper: %d args\n", argc);
    while ((c = getchar()) != EOF)
        putchar(toupper(c));
    return argc > 1 && strcmp(argv[1], "fail") == 0 ? 3 : 0;
}
C
out=$("$B" "$TMP/upper" -o "$TMP/upper.bin") || fail "build: $out"
echo "$out" | grep -q "a static Linux program: musl-gcc -static" || fail "no musl summary: $out"
got=$(printf 'hello' | "$ASPEN" run "$TMP/upper.bin" --input - 2>"$TMP/err") || fail "run: $(cat "$TMP/err")"
[ "$got" = "HELLO" ] || fail "output '$got'"
grep -q "upper: 1 args" "$TMP/err" || fail "no log line: $(cat "$TMP/err")"
if printf 'x' | "$ASPEN" run "$TMP/upper.bin" --input - --arg fail >/dev/null 2>"$TMP/err"; then
  fail "a program exiting 3 succeeded"
fi
grep -q "exited with status 3" "$TMP/err" || fail "exit status not reported: $(cat "$TMP/err")"

# --musl forces it (a program whose main is hidden behind a macro)
mkdir -p "$TMP/hidden"
printf '#include <stdio.h>\n#define ENTRY ma##in\nint ENTRY(void) { puts("hidden"); return 0; }\n' > "$TMP/hidden/p.c"
"$B" "$TMP/hidden" -o "$TMP/hidden.bin" >/dev/null 2>&1 && fail "a program with no visible main built as an SDK guest"
"$B" --musl -q "$TMP/hidden" -o "$TMP/hidden.bin" || fail "--musl build"
[ "$("$ASPEN" run "$TMP/hidden.bin" --input /dev/null 2>/dev/null)" = "hidden" ] || fail "--musl program output"

# an SDK guest stays an SDK guest
out=$("$B" "$ROOT/guests/echo-worker" -o "$TMP/echo.bin") || fail "SDK build: $out"
echo "$out" | grep -q "musl-gcc" && fail "the SDK guest was built as a Linux program: $out"
got=$("$ASPEN" run "$TMP/echo.bin" --payload '{"message":"m"}' 2>/dev/null) || fail "SDK guest run"
[ "$got" = 'Echo: {"message":"m"}' ] || fail "SDK guest output '$got'"

# the summary says why it was built as a Linux program, and how to have the other build
out=$("$B" "$TMP/upper" -o "$TMP/upper.bin") || fail "build: $out"
echo "$out" | grep -q "detected: main() and no <aspen.h> in its sources; --sdk for an SDK build)$" ||
  fail "the summary does not say why: $out"
out=$("$B" --musl "$TMP/upper" -o "$TMP/upper.bin") || fail "--musl build: $out"
echo "$out" | grep -q "musl-gcc -static, forced by --musl)$" || fail "forced summary: $out"

# --sdk: an SDK guest whose <aspen.h> comes through its own header and whose comment says main()
# looks like a plain program to the textual test; --sdk builds it with the SDK
mkdir -p "$TMP/sdkhdr"
printf '#include <aspen.h>
' > "$TMP/sdkhdr/guest.h"
cat > "$TMP/sdkhdr/main.c" <<'C'
#include "guest.h"
/* an SDK guest has no main(): the handler below is its entry */
static int shout(const uint8_t *in, size_t len, aspen_buf *out)
{
    (void)in;
    return aspen_buf_appendf(out, "got %zu", len);
}
ASPEN_JOB_HANDLER(shout);
C
"$B" -q "$TMP/sdkhdr" -o "$TMP/sdkhdr.bin" >/dev/null 2>&1 &&
  fail "the detection changed: the header-only SDK guest built as a Linux program (update docs/ABI.md)"
out=$("$B" --sdk "$TMP/sdkhdr" -o "$TMP/sdkhdr.bin" 2>&1) || fail "--sdk build: $out"
echo "$out" | grep -q "musl-gcc" && fail "--sdk built with musl-gcc: $out"
got=$("$ASPEN" run "$TMP/sdkhdr.bin" --payload '"abc"' 2>/dev/null) || fail "--sdk guest run"
[ "$got" = "got 5" ] || fail "--sdk guest output '$got'"
# contradictions are refused, with what to do
out=$("$B" --sdk --musl "$TMP/upper" -o "$TMP/x" 2>&1) && fail "--sdk --musl built"
echo "$out" | grep -q "give one" || fail "--sdk --musl: $out"
for f in --musl --sdk; do
  out=$("$B" "$f" "$ROOT/guests/rust/echo-worker" -o "$TMP/x" 2>&1) && fail "$f on a Rust crate built"
  echo "$out" | grep -q "holds a Cargo.toml, so it is built as a Rust guest: --musl and --sdk are for C sources" ||
    fail "$f on a Rust crate: $out"
done
[ ! -e "$TMP/x" ] || fail "a refused build left $TMP/x"

# no musl-gcc: said what to install
out=$(MUSL_GCC=/nonexistent/musl-gcc "$B" "$TMP/upper" -o "$TMP/x" 2>&1) && fail "built without musl-gcc"
echo "$out" | grep -q "apt-get install musl-tools" || fail "no install hint: $out"
echo "PASS: build-guest.sh musl mode"
