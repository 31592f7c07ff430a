#!/usr/bin/env bash
# tests/guests/build_guest_kit_test.sh — scripts/build-guest.sh as a new user meets it, following
# docs/ABI.md and the README only (the new-user trial's findings):
#   - a Rust guest whose Cargo.toml has only `panic = "abort"` (docs/ABI.md section 11; no lto)
#     links and runs, with the cargo on the PATH and with Debian's /usr/bin/cargo when that is
#     another toolchain, one after the other on the same directory;
#   - no Cargo.lock is left in the guest's directory (a newer cargo's version-4 lock made the older
#     cargo fail), and a Cargo.lock the developer keeps is kept unchanged;
#   - ASPEN_GUEST_DEBUG=1 gives a Rust binary with .debug_* sections and the handler as a function
#     of its own (not inlined by LTO);
#   - the "built PATH" line is valid from the caller's directory (run from elsewhere), also for `.`;
#   - an implicit function declaration (malloc without a header) is an error in an SDK guest.
# Needs /dev/kvm: fails, never skips.
set -u
ROOT=${1:?usage: build_guest_kit_test.sh SOURCE_DIR ASPEN}
ASPEN=${2:?usage: build_guest_kit_test.sh SOURCE_DIR ASPEN}
TMP=$(mktemp -d /tmp/aspen-guestkit.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
B="$ROOT/scripts/build-guest.sh"

# (the tree's own build directory: the crate compiled once for all the builds below)

# The minimal guest: the Cargo.toml docs/ABI.md shows, the dependency by absolute path as a user's
# own directory outside the tree has it.
mkdir -p "$TMP/rguest/src"
cp "$ROOT/tests/vm/guests/rust-debuggee/src/main.rs" "$TMP/rguest/src/main.rs"
cat > "$TMP/rguest/Cargo.toml" <<TOML
[package]
name = "rguest"
version = "0.1.0"
edition = "2021"

[dependencies]
aspen_jobs_guest = { path = "$ROOT/guests/rust/aspen_jobs_guest" }

[profile.release]
panic = "abort"

[profile.dev]
panic = "abort"
TOML
sed -i 's/rust_debuggee/rguest/g' "$TMP/rguest/src/main.rs"

cargos=("$(command -v cargo || true)")
if [[ -x /usr/bin/cargo && "$(readlink -f /usr/bin/cargo)" != "$(readlink -f "${cargos[0]:-none}")" ]]; then
  cargos+=(/usr/bin/cargo)
fi
[[ -n "${cargos[0]}" ]] || fail "no cargo on the PATH (scripts/setup.sh installs one)"
mkdir -p "$TMP/elsewhere"
for c in "${cargos[@]}"; do
  # from another directory, by a relative path: the line names the output as the caller sees it
  out=$(cd "$TMP/elsewhere" && CARGO="$c" "$B" ../rguest -o out.elf 2>&1) || fail "$c: build: $out"
  echo "$out" | grep -q "^built out.elf (" || fail "$c: summary line '$out'"
  [[ -f "$TMP/elsewhere/out.elf" ]] || fail "$c: no $TMP/elsewhere/out.elf"
  [[ ! -e "$TMP/rguest/Cargo.lock" ]] || fail "$c: a Cargo.lock was left in the guest's directory"
  got=$(printf scores | "$ASPEN" run "$TMP/elsewhere/out.elf" --input - 2>"$TMP/err") ||
    fail "$c: run: $(cat "$TMP/err")"
  [[ "$got" == 84 ]] || fail "$c: output '$got'"
  # a panic is still reported with its message and place
  if printf panic | "$ASPEN" run "$TMP/elsewhere/out.elf" --input - >/dev/null 2>"$TMP/err"; then
    fail "$c: a panic succeeded"
  fi
  grep -q "deliberate panic at depth 3 at src/main.rs:" "$TMP/err" || fail "$c: panic: $(cat "$TMP/err")"
done

# the default output, from the guest's own directory given as `.`: an absolute path when it is not
# under the caller's directory (target/guest-binaries of the tree)
out=$(cd "$TMP/rguest" && "$B" . 2>&1) || fail "build .: $out"
echo "$out" | grep -q "^built $ROOT/target/guest-binaries/rguest (" || fail "build . said '$out'"
[[ ! -e "$TMP/rguest/Cargo.lock" ]] || fail "build . left a Cargo.lock"
rm -f "$ROOT/target/guest-binaries/rguest"

# a Cargo.lock the developer keeps stays, byte for byte
(cd "$TMP/rguest" && CARGO_HOME="$TMP/cargo-home" cargo generate-lockfile --offline -q) ||
  fail "cargo generate-lockfile"
sum=$(cksum < "$TMP/rguest/Cargo.lock")
out=$("$B" "$TMP/rguest" -o "$TMP/kept.elf" 2>&1) || fail "build with a lock: $out"
[[ -f "$TMP/rguest/Cargo.lock" && "$(cksum < "$TMP/rguest/Cargo.lock")" == "$sum" ]] ||
  fail "the developer's Cargo.lock was changed or removed"
rm -f "$TMP/rguest/Cargo.lock"

# ASPEN_GUEST_DEBUG=1: debug info, and the handler is a function gdb can break on
out=$(ASPEN_GUEST_DEBUG=1 "$B" "$TMP/rguest" -o "$TMP/debug.elf" 2>&1) || fail "debug build: $out"
echo "$out" | grep -q "with debug info" || fail "debug summary '$out'"
readelf -S "$TMP/debug.elf" | grep -q '\.debug_info' || fail "no .debug_info in the debug build"
readelf -S "$TMP/debug.elf" | grep -q '\.debug_line' || fail "no .debug_line in the debug build"
nm "$TMP/debug.elf" | grep -q '6rguest7process' || fail "rguest::process is not a function: $(nm "$TMP/debug.elf" | grep rguest)"
readelf -S "$TMP/kept.elf" | grep -q '\.debug_' && fail "the release build has debug sections"
out=$(ASPEN_GUEST_DEBUG=1 ASPEN_GUEST_OPT=-O7 "$B" "$TMP/rguest" -o "$TMP/x.elf" 2>&1) &&
  fail "ASPEN_GUEST_OPT=-O7 was taken"
echo "$out" | grep -q "a Rust guest takes -O0, -O1, -O2, -O3, -Os or -Oz" || fail "-O7: '$out'"

# C: an implicit declaration is an error (an undeclared malloc would return a cut pointer)
mkdir -p "$TMP/implicit"
cat > "$TMP/implicit/main.c" <<'C'
#include <aspen.h>
static int handle(const uint8_t *in, size_t len, aspen_buf *out)
{
    char *p = malloc(len + 1); /* no <stdlib.h>: implicitly declared */
    (void)in; (void)p; (void)out;
    return 0;
}
ASPEN_JOB_HANDLER(handle);
C
if out=$("$B" "$TMP/implicit" -o "$TMP/implicit.elf" 2>&1); then
  fail "an implicit declaration of malloc built: $out"
fi
echo "$out" | grep -q "error: implicit declaration of function .malloc." || fail "implicit: '$out'"

# C, from another directory: the summary names a path valid there
out=$(cd "$TMP/elsewhere" && "$B" "$ROOT/guests/echo-worker" -o sub/echo.elf 2>&1) || fail "C build: $out"
echo "$out" | grep -q "^built sub/echo.elf (" || fail "C summary '$out'"
out=$(cd "$TMP" && "$B" "$ROOT/guests/echo-worker" -o "$TMP/elsewhere/e2.elf" 2>&1) || fail "C build: $out"
echo "$out" | grep -q "^built elsewhere/e2.elf (" || fail "C summary (absolute under cwd) '$out'"
echo "build_guest_kit_test: ok"
