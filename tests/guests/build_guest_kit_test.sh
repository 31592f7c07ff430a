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
#   - an implicit function declaration (malloc without a header) is an error in an SDK guest;
#   - a long cargo build says what it is doing ("still building the Rust guest ..."), once per
#     interval and not more, also with -q, and its ticker is gone when the build ends (the caller's
#     $(...) gets its end of file at once); a quick -q build prints nothing.
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
# Progress: a cargo that takes 6 s longer than it should (a loaded machine), with a 5 s interval.
real_cargo=$(command -v cargo)
mkdir -p "$TMP/slow"
cat > "$TMP/slow/cargo" <<SH
#!/bin/sh
sleep 6
"$real_cargo" "\$@"
rc=\$?
echo \$((\$(date +%s%N) / 1000000)) > "$TMP/cargo-end"
exit \$rc
SH
chmod +x "$TMP/slow/cargo"
ln -s "$(dirname "$real_cargo")/rustc" "$TMP/slow/rustc"
t0=$SECONDS
out=$(ASPEN_GUEST_BUILD_DIR="$TMP/gb" ASPEN_GUEST_PROGRESS_SECS=5 CARGO="$TMP/slow/cargo" \
      "$B" -q "$TMP/rguest" -o "$TMP/slow.elf" 2>&1) || fail "slow build: $out"
end=$(($(date +%s%N) / 1000000))
took=$((SECONDS - t0))
[[ -f "$TMP/slow.elf" ]] || fail "the slow build wrote no binary"
n=$(echo "$out" | grep -c "^build-guest: still building the Rust guest rguest (.*) with cargo (offline, release, Rust 1\.[0-9]*): [0-9]* s so far$")
((n >= 1)) || fail "no progress line in a ${took} s build: '$out'"
# at 5 s, then every 10 s: never more than that
((n <= took / 10 + 1)) || fail "$n progress lines in $took s (flooding): '$out'"
echo "$out" | grep -q "^build-guest: cargo finished the Rust guest rguest in [0-9]* s$" ||
  fail "the end of the long build is not told: '$out'"
[[ "$(echo "$out" | grep -vc '^build-guest: ')" == 0 ]] || fail "other output from -q: '$out'"
# the ticker sleeps 10 s after its first line: had it kept our stderr, $(...) would have waited
gap=$((end - $(cat "$TMP/cargo-end")))
((gap < 1500)) || fail "the build ended ${gap} ms after cargo (a ticker left behind?)"
# nor does anything left of the ticker hold the guest directory's build lock: the next build of the
# same guest starts at once (an orphaned sleep holding it made every rebuild wait ~30 s)
locks=("$TMP"/gb/locks/*.flock)
[[ -f "${locks[0]}" ]] || fail "no build lock under $TMP/gb/locks"
for l in "${locks[@]}"; do
  flock -n "$l" true || fail "$l is still held after the build ended"
done
t1=$(($(date +%s%N) / 1000000))
out=$(ASPEN_GUEST_BUILD_DIR="$TMP/gb" ASPEN_GUEST_PROGRESS_SECS=5 CARGO="$real_cargo" \
      "$B" -q "$TMP/rguest" -o "$TMP/slow2.elf" 2>&1) || fail "rebuild: $out"
t2=$(($(date +%s%N) / 1000000))
out=$(ASPEN_GUEST_BUILD_DIR="$TMP/gb" ASPEN_GUEST_PROGRESS_SECS=5 CARGO="$real_cargo" \
      "$B" -q "$TMP/rguest" -o "$TMP/slow2.elf" 2>&1) || fail "rebuild: $out"
t3=$(($(date +%s%N) / 1000000))
echo "progress: slow build $took s, cold rebuild with the real cargo $((t2 - t1)) ms, warm $((t3 - t2)) ms"
((t3 - t2 < 4000)) || fail "a warm rebuild took $((t3 - t2)) ms (waiting for a lock?)"
# a build that ends within the interval says nothing with -q
out=$(ASPEN_GUEST_PROGRESS_SECS=99999 "$B" -q "$TMP/rguest" -o "$TMP/quick.elf" 2>&1) || fail "quick build: $out"
[[ -z "$out" ]] || fail "a quick -q build printed '$out'"
out=$(ASPEN_GUEST_PROGRESS_SECS=soon "$B" -q "$TMP/rguest" -o "$TMP/quick.elf" 2>&1) &&
  fail "ASPEN_GUEST_PROGRESS_SECS=soon was taken"
echo "$out" | grep -q "ASPEN_GUEST_PROGRESS_SECS=soon: give whole seconds" || fail "bad interval: '$out'"

# A Cargo.toml without panic = "abort": rustc's error suggests a nightly flag; the script must say
# what the guest's manifest lacks.
mkdir -p "$TMP/unwind/src"
cp "$TMP/rguest/src/main.rs" "$TMP/unwind/src/main.rs"
sed -e 's/^name = "rguest"/name = "unwind"/' -e '/^\[profile/,$d' "$TMP/rguest/Cargo.toml" \
  > "$TMP/unwind/Cargo.toml"
out=$("$B" -q "$TMP/unwind" -o "$TMP/unwind.elf" 2>&1) && fail "a guest without panic = abort built"
echo "$out" | grep -q 'add panic = "abort" under \[profile.release\]' ||
  fail "no panic = abort hint: $out"

echo "build_guest_kit_test: ok"
