#!/usr/bin/env bash
# tests/guests/build_guest_musl_test.sh — scripts/build-guest.sh's musl mode (issue 11): a directory
# holding a plain C program (main(), no <aspen.h>) is built with musl-gcc -static, unmodified, and
# runs as a job (stdin the input, stdout the output, stderr lines the log, the exit status the
# outcome, --arg its argv); --musl forces the mode; an SDK guest is still built with the SDK; a
# missing musl-gcc is named with the package to install. Needs /dev/kvm: fails, never skips.
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

# no musl-gcc: said what to install
out=$(MUSL_GCC=/nonexistent/musl-gcc "$B" "$TMP/upper" -o "$TMP/x" 2>&1) && fail "built without musl-gcc"
echo "$out" | grep -q "apt-get install musl-tools" || fail "no install hint: $out"
echo "PASS: build-guest.sh musl mode"
