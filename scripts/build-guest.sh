#!/usr/bin/env bash
# scripts/build-guest.sh — build an Aspen guest binary from a directory of C SDK sources, a Rust
# crate or a plain C program (musl). The result is the static ELF the VM monitor (vm/) loads: see
# docs/ABI.md.
#
#   scripts/build-guest.sh NAME             guests/NAME/*.c  ->  target/guest-binaries/NAME
#   scripts/build-guest.sh PATH [-o OUT]    PATH/*.c         ->  OUT (default target/guest-binaries/$(basename PATH))
#   scripts/build-guest.sh PATH [-o OUT]    PATH/Cargo.toml  ->  OUT (default target/guest-binaries/PACKAGE):
#                                           a Rust guest (guests/rust/, docs/ABI.md "Rust guests"), built
#                                           offline with cargo (CARGO=..., default the cargo on the PATH);
#                                           PATH is left as it was (no Cargo.lock is left behind)
#   scripts/build-guest.sh PATH [-o OUT]    PATH/*.c a plain C program (main(), no <aspen.h>) -> OUT:
#                                           built with musl-gcc -static, unmodified, a static Linux
#                                           program that runs as a job (docs/ABI.md section 12)
#
# Which kind, in this order (docs/ABI.md section 12, "Which kind of guest a directory is"):
#   PATH/Cargo.toml exists                              -> a Rust guest (whatever else is there)
#   no PATH/*.c or PATH/*.S includes <aspen.h> or "aspen.h", and one of them has the word main
#   followed by '(' (anywhere, comments too)            -> a plain C program (musl-gcc -static)
#   otherwise                                           -> an SDK guest (gcc, guests/sdk)
# Only the top level's *.c and *.S files are read (not headers, not subdirectories).
# Options: -o OUT (output file), -q (quiet: no summary line), --musl (a plain C program whatever
# detection says), --sdk (an SDK guest whatever detection says), -h (help).
# Environment:
#   ASPEN_GUEST_DEBUG=1     keep symbols and add -g (default: strip the binary); a Rust guest is
#                           built with debug info, no LTO and opt-level 1 whatever its Cargo.toml
#                           says, so gdb can break on CRATE::function (docs/ABI.md section 13)
#   ASPEN_GUEST_WERROR=1    treat warnings as errors (the project's own guests are built this way)
#   ASPEN_GUEST_OPT=-O2     optimisation level (default -Os: small images load and share best)
#   ASPEN_GUEST_CFLAGS=...  extra compiler flags, e.g. -DNDEBUG
#   ASPEN_GUEST_PROGRESS_SECS=30  a step still running after this many seconds (a cargo build,
#                           the SDK) says so on stderr, then every twice as long (also with -q)
#   CC=gcc                  the compiler (system gcc; musl-gcc is not needed: the SDK is the libc)
# A guest directory may hold a file guest.flags with extra compiler flags for its own sources only
# (e.g. -O2 for a compute-bound guest); the SDK is always built with the default flags. Those flags
# must match guests/sdk/guest-flags.allow, the allow-list the engine's sandboxed `--source` builds
# enforce too (this script itself is for developers' own sources and runs unconfined:
# ASPEN_GUEST_CFLAGS is not checked).
#
# The SDK (guests/sdk) is compiled once per flag set into target/guest-build/ and reused; it is
# rebuilt when any of its sources, vm/include/abi.h or this script changes. Every guest links its own
# sources first, then the SDK, then libgcc (for compiler helpers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SDK="$ROOT/guests/sdk"
BUILD_ROOT="${ASPEN_GUEST_BUILD_DIR:-$ROOT/target/guest-build}"
OUT_DIR_DEFAULT="$ROOT/target/guest-binaries"

die() { ticker_stop; echo "build-guest: error: $*" >&2; exit 1; }

# ---- Progress of long steps ----------------------------------------------------------------------
# A cargo build takes seconds on an idle machine and many minutes on a loaded one, with nothing on
# the terminal (its output goes to a log, shown on failure): a step still running after
# PROGRESS_SECS says what it is doing, then again every twice as long. A step that ends sooner
# prints nothing, so the usual build stays as quiet as before. When stopped, the ticker takes its
# sleep with it, and neither holds our descriptors: an orphaned sleep would keep a caller that
# reads our output to its end ($(...), make's pipe) waiting, and would hold the per-directory
# build lock (fd 8) or the SDK's (fd 9), so the next build of the guest would wait for it. The
# ticker also ends by itself if we die unannounced.
PROGRESS_SECS="${ASPEN_GUEST_PROGRESS_SECS:-30}"
ticker_pid=""
ticker_said=0 # whether the last step printed a line (then its end is told as well)
ticker_start() { # WHAT (e.g. "building the Rust guest X with cargo")
  local what="$1" parent=$$
  ticker_t0=$SECONDS
  (
    exec 8>&- 9>&-
    sp=""
    trap '[[ -z "$sp" ]] || kill "$sp" 2>/dev/null; exit 0' TERM
    t=$PROGRESS_SECS
    while :; do
      # shellcheck disable=SC2217 # the redirections are there to hold none of our descriptors
      sleep "$t" </dev/null >/dev/null 2>&1 &
      sp=$!
      wait "$sp" || true # returns at once when TERM arrives, and the trap ends the sleep
      kill -0 "$parent" 2>/dev/null || exit 0
      echo "build-guest: still $what: $((SECONDS - ticker_t0)) s so far" >&2
      t=$((PROGRESS_SECS * 2))
    done
  ) &
  ticker_pid=$!
}
ticker_stop() { # sets ticker_said
  ticker_said=0
  [[ -n "${ticker_pid:-}" ]] || return 0
  ((SECONDS - ticker_t0 < PROGRESS_SECS)) || ticker_said=1
  kill "$ticker_pid" 2>/dev/null || true
  wait "$ticker_pid" 2>/dev/null || true
  ticker_pid=""
}
[[ "$PROGRESS_SECS" =~ ^[1-9][0-9]{0,4}$ ]] ||
  die "ASPEN_GUEST_PROGRESS_SECS=$PROGRESS_SECS: give whole seconds from 1 to 99999 (default 30)"

# A path as the caller can use it from where they ran the script: relative when it is under their
# working directory, absolute otherwise (a path relative to the repository would be wrong anywhere else).
shown() {
  local p="$1"
  [[ "$p" == /* ]] || { echo "$p"; return; } # a relative -o OUT is already the caller's
  if [[ "$p" == "$PWD"/* ]]; then echo "${p#"$PWD"/}"; else echo "$p"; fi
}

usage() {
  # The header comment, without the '# ' (it ends at the first line that is not a comment).
  awk 'NR > 1 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

out=""
quiet=0
musl=0
sdk_forced=0
target=""
while (($#)); do
  case "$1" in
    -o) [[ $# -ge 2 ]] || die "-o needs a file name"; out="$2"; shift 2 ;;
    -o*) out="${1#-o}"; shift ;;
    -q) quiet=1; shift ;;
    --musl) musl=1; shift ;;
    --sdk) sdk_forced=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see $0 -h)" ;;
    *) [[ -z "$target" ]] || die "one guest at a time (got '$target' and '$1')"; target="$1"; shift ;;
  esac
done
[[ -n "$target" ]] || { usage >&2; exit 2; }

# ---- Which guest ---------------------------------------------------------------------------------
if [[ "$target" != */* && "$target" != . && "$target" != .. && -d "$ROOT/guests/$target" ]]; then
  [[ "$target" != "sdk" ]] || die "guests/sdk is the SDK, not a guest"
  src_dir="$ROOT/guests/$target"
  name="$target"
elif [[ -d "$target" ]]; then
  src_dir="$(cd "$target" && pwd)"
  name="$(basename "$src_dir")"
else
  known=""
  for d in "$ROOT"/guests/*/; do
    d="$(basename "$d")"
    [[ "$d" == sdk ]] || known+="${known:+, }$d"
  done
  # a path is named as given; only a bare name is also looked for under guests/
  [[ "$target" != */* ]] ||
    die "there is no directory $target$([[ -e "$target" ]] && echo " (it is a file: give the directory that holds the guest's sources)")"
  die "unknown guest '$target': there is no directory guests/$target nor ./$target (guests here: ${known:-none})"
fi

# ---- A Rust guest (a directory with a Cargo.toml) ------------------------------------------------
# Built with cargo for the host target as a no_std, no_main static binary, linked like the C guests
# (the SDK's aspen.ld, no start files, no libc, not PIE); the crate guests/rust/aspen_jobs_guest gives
# it _start, execute, the ABI note, the allocator and the panic handler. Offline and with a private
# CARGO_HOME: a guest may depend on crates in this tree only, and the build never touches the network
# or ~/.cargo. Works with Debian bookworm's rustc 1.63 (its cargo is package 0.66, Rust 1.65's) as
# with newer ones.
build_rust() {
  local CARGO="${CARGO:-cargo}" cargo_path rustc minor pkg tdir flags f bin
  cargo_path=$(command -v "$CARGO" 2>/dev/null) ||
    die "cargo was not found (CARGO=$CARGO): install Rust with 'sudo apt-get install rustc cargo' (scripts/setup.sh does) to build the Rust guest in $src_dir"
  rustc="${RUSTC:-}"
  if [[ -z "$rustc" ]]; then
    if [[ -x "$(dirname "$cargo_path")/rustc" ]]; then rustc="$(dirname "$cargo_path")/rustc"; else rustc=rustc; fi
  fi
  command -v "$rustc" >/dev/null 2>&1 || die "rustc was not found next to $cargo_path: install it with 'sudo apt-get install rustc'"
  minor=$("$rustc" -vV | sed -n 's/^release: 1\.\([0-9]*\)\..*/\1/p')
  [[ -n "$minor" ]] || die "cannot tell the version of $rustc ('$rustc -vV' printed no 'release: 1.N')"
  ((minor >= 63)) || die "$rustc is Rust 1.$minor; Rust guests need 1.63 or newer"
  pkg=$(awk '/^\[/{p=($0=="[package]")} p && /^name *=/{gsub(/^name *= *"|".*$/,""); print; exit}' "$src_dir/Cargo.toml")
  [[ "$pkg" =~ ^[A-Za-z0-9_-]+$ ]] || die "$src_dir/Cargo.toml has no [package] name cargo can build"
  [[ -n "$out" ]] || out="$OUT_DIR_DEFAULT/$pkg"
  tdir="$BUILD_ROOT/rust-1.$minor-$(printf '%s' "$cargo_path" | cksum | cut -d' ' -f1)"
  mkdir -p "$tdir/cargo-home" "$(dirname "$out")"
  local ldscript="$SDK/aspen.ld"
  if [[ "${ASPEN_GUEST_DEBUG:-0}" == 1 ]]; then
    # The precompiled core and alloc have no frame pointers and no .debug_frame: gdb unwinds
    # through them (a panic's core: panic_fmt, then the guest's frames) only with their .eh_frame,
    # which aspen.ld discards (a guest never unwinds). A debug build keeps it, in the read-only
    # segment, with a copy of the script.
    ldscript="$tdir/aspen-debug.ld"
    sed -e 's/\*(\.eh_frame \.eh_frame_hdr /*(.eh_frame_hdr /' \
        -e 's|^\( *\.note\.aspen : .*\)$|\1\n    .eh_frame : { KEEP(*(.eh_frame)) } :rodata|' \
        "$SDK/aspen.ld" > "$ldscript.$$" && mv -f "$ldscript.$$" "$ldscript"
    grep -q 'KEEP(\*(\.eh_frame))' "$ldscript" ||
      die "cannot make the debug linker script from $SDK/aspen.ld (has its .eh_frame line changed?)"
  fi
  flags=(-C relocation-model=static -C target-feature=+crt-static -C target-cpu=x86-64
         -C link-arg=-fuse-ld=bfd -C link-arg=-nostartfiles -C link-arg=-nostdlib -C link-arg=-static -C link-arg=-no-pie
         -C "link-arg=-Wl,-T,$ldscript" -C link-arg=-Wl,--gc-sections -C link-arg=-Wl,--build-id=none
         -C link-arg=-Wl,-z,noexecstack -C link-arg=-Wl,-z,max-page-size=4096
         -C link-arg=-Wl,-z,common-page-size=4096 -C link-arg=-Wl,-u,_start -C link-arg=-Wl,-u,execute)
  # ASPEN_GUEST_DEBUG=1 overrides the guest's release profile, whatever its Cargo.toml says: debug
  # info (cargo >= 1.77 strips it when the profile has debug = false, so strip is turned off too), no
  # LTO (it inlines the handler into the SDK's entry, so `break CRATE::handler` would find nothing)
  # and opt-level 1 unless ASPEN_GUEST_OPT says otherwise (0 makes the JSON parser's frames big for
  # the 64 KiB stack), and frame pointers for a backtrace through any frame.
  local profile=()
  if [[ "${ASPEN_GUEST_DEBUG:-0}" == 1 ]]; then
    local opt=1
    case "${ASPEN_GUEST_OPT:-}" in
      "") ;;
      -O0|-O1|-O2|-O3|-Os|-Oz) opt="${ASPEN_GUEST_OPT#-O}" ;;
      *) die "ASPEN_GUEST_OPT=$ASPEN_GUEST_OPT: a Rust guest takes -O0, -O1, -O2, -O3, -Os or -Oz" ;;
    esac
    profile=(CARGO_PROFILE_RELEASE_DEBUG=2 CARGO_PROFILE_RELEASE_STRIP=none
             CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt"
             CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=false)
    flags+=(-C force-frame-pointers=yes)
  else
    flags+=(-C link-arg=-s)
  fi
  [[ "${ASPEN_GUEST_WERROR:-0}" != 1 ]] || flags+=(-D warnings)
  # Before 1.68 a no_std program using `alloc` must name an allocation-error handler, which is an
  # unstable feature there: the crate defines one under this cfg (saying what the later default says), and
  # RUSTC_BOOTSTRAP lets that stable compiler accept it. Newer compilers are told the cfg exists.
  local bootstrap=()
  if ((minor < 68)); then
    flags+=(--cfg aspen_old_alloc)
    bootstrap=(RUSTC_BOOTSTRAP=1)
  elif ((minor >= 80)); then
    flags+=(--check-cfg 'cfg(aspen_old_alloc)')
  fi
  local IFS=$'\x1f'
  local encoded="${flags[*]}"
  unset IFS
  # Debug and release builds of one guest go to target directories of their own, so switching
  # between them does not rebuild the other.
  local tgt="$tdir/target"
  [[ "${ASPEN_GUEST_DEBUG:-0}" != 1 ]] || tgt="$tdir/target-debug"
  local log="$tdir/$pkg.log"
  # The guest's directory is left as it was found. Without a Cargo.lock there, cargo writes one (a
  # newer cargo in version 4, which Debian's cargo 0.66, Rust 1.65's, cannot read:
  # CARGO=/usr/bin/cargo would then fail on it), so that one is moved out to the build directory
  # afterwards; a Cargo.lock the developer keeps is theirs and cargo uses it (cargo keeps its
  # version). Builds of one directory are serialised so one never removes the lock another is
  # resolving with.
  local lock_id
  lock_keep="" # global: the EXIT trap runs after this function has returned
  lock_id=$(printf '%s' "$src_dir" | cksum | cut -d' ' -f1)
  mkdir -p "$BUILD_ROOT/locks"
  if command -v flock >/dev/null 2>&1; then
    exec 8>"$BUILD_ROOT/locks/$lock_id.flock"
    flock 8
  fi
  if [[ ! -e "$src_dir/Cargo.lock" ]]; then
    lock_keep="$tdir/Cargo.lock.$pkg.$lock_id"
    trap 'if [[ -f "$src_dir/Cargo.lock" ]]; then mv -f "$src_dir/Cargo.lock" "$lock_keep" 2>/dev/null || rm -f "$src_dir/Cargo.lock"; fi' EXIT
  fi
  local what rc=0
  what="building the Rust guest $pkg ($(shown "$src_dir")) with cargo (offline, release, Rust 1.$minor)"
  ((quiet)) || echo "build-guest: $what…" >&2
  ticker_start "$what"
  env -u RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET \
       "${bootstrap[@]}" "${profile[@]}" CARGO_HOME="$tdir/cargo-home" RUSTC="$rustc" \
       CARGO_ENCODED_RUSTFLAGS="$encoded" \
       "$cargo_path" build --offline --release --quiet --manifest-path "$src_dir/Cargo.toml" \
       --target x86_64-unknown-linux-gnu --target-dir "$tgt" >"$log" 2>&1 || rc=$?
  ticker_stop
  ((!ticker_said)) || echo "build-guest: cargo finished the Rust guest $pkg in $((SECONDS - ticker_t0)) s" >&2
  if ((rc)); then
    cat "$log" >&2
    if grep -q "aspen_rust_execute" "$log"; then
      echo "build-guest: hint: define the job handler with define_job_handler!(fn) or define_json_handler!(fn) (see guests/rust/aspen_jobs_guest)" >&2
    fi
    # rustc's own advice there (-Zbuild-std) is for nightly; a guest needs only the profile line
    if grep -q "unwinding panics are not supported\|panic_unwind\|eh_personality" "$log"; then
      echo "build-guest: hint: guests abort on panic: add panic = \"abort\" under [profile.release] and [profile.dev] in $(shown "$src_dir")/Cargo.toml (docs/ABI.md section 11)" >&2
    fi
    die "building the Rust guest $pkg failed: see cargo's message above"
  fi
  [[ ! -s "$log" ]] || cat "$log" >&2
  bin="$tgt/x86_64-unknown-linux-gnu/release/$pkg"
  [[ -f "$bin" ]] || die "cargo built no binary $bin: is $src_dir/Cargo.toml a binary package named $pkg?"
  check_no_tls "$bin"
  cp -f "$bin" "$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
  if ((!quiet)); then
    echo "built $(shown "$out") ($(stat -c %s "$out") bytes, Rust 1.$minor$([[ "${ASPEN_GUEST_DEBUG:-0}" != 1 ]] || echo ", with debug info"))"
  fi
}

# A guest has no thread pointer (fs/gs base 0): code that reads %fs or %gs (a stack protector
# re-enabled by ASPEN_GUEST_CFLAGS, TLS in hand-written assembly) would fault on every job.
check_no_tls() {
  if command -v objdump >/dev/null 2>&1; then
    local tls
    tls=$(objdump -d --no-show-raw-insn "$1" | grep -m3 -E '%[fg]s:' || true)
    if [[ -n "$tls" ]]; then
      echo "$tls" >&2
      die "$name reads the %fs/%gs segment (thread-local storage or a stack protector), which guests do not have: build without -fstack-protector and __thread"
    fi
  fi
}

((!musl || !sdk_forced)) || die "--musl and --sdk ask for two different builds: give one"
if [[ -f "$src_dir/Cargo.toml" ]]; then
  # A Cargo.toml decides: C sources beside it are the crate's business (a build script's, say).
  ((!musl && !sdk_forced)) ||
    die "$(shown "$src_dir") holds a Cargo.toml, so it is built as a Rust guest: --musl and --sdk are for C sources (put them in a directory without a Cargo.toml)"
  build_rust
  exit 0
fi
[[ -n "$out" ]] || out="$OUT_DIR_DEFAULT/$name"

shopt -s nullglob
sources=("$src_dir"/*.c "$src_dir"/*.S)
shopt -u nullglob
((${#sources[@]})) || die "no C sources (*.c or *.S) in $src_dir"
# guest.flags: words (no globbing), '#' comment lines, each flag checked against the one allow-list
# the engine's sandboxed --source builds use too (guests/sdk/guest-flags.allow).
GUEST_FLAGS=()
if [[ -f "$src_dir/guest.flags" ]]; then
  allow_file="$SDK/guest-flags.allow"
  [[ -r "$allow_file" ]] || die "the compiler-flag allow-list $allow_file is missing"
  allow_pats=()
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    line="${line#"${line%%[![:space:]]*}"}"
    allow_pats+=("${line%%[[:space:]]*}") # what follows a pattern is for readers of the file
  done < "$allow_file"
  words=()
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*# ]] && continue
    read -ra w <<< "$line"
    words+=("${w[@]}")
  done < "$src_dir/guest.flags"
  # Matched in the C locale (as the engine does): ranges like [a-z] are ASCII only.
  flag_allowed() {
    local LC_ALL=C pat re
    [[ "$1" =~ ^[!-~]+$ && ${#1} -le 128 ]] || return 1
    for pat in "${allow_pats[@]}"; do
      re="^($pat)\$"
      [[ "$1" =~ $re ]] && return 0
    done
    return 1
  }
  # Why a flag was refused, by its kind: the same table and words as engine/build.c's
  # flag_reason, so both builders refuse with the same message.
  flag_reason() {
    case "$1" in
      -march=*) echo "the guest CPU contract stops at -march=x86-64-v3" ;;
      -m*) echo "machine options may break the guest ABI or CPU contract" ;;
      -I*|-L*|-l*|-B*|-i*|@*|--sysroot*|-specs*|-fplugin*|-wrapper*)
        echo "it names a host file, directory or program" ;;
      -Wl,*|-Wa,*|-Wp,*|-X*) echo "it passes options to the assembler, linker or preprocessor" ;;
      -fsanitize*|-fstack-protector*|-fpic*|-fPIC*|-fpie*|-fPIE*|-flto*|-pg*)
        echo "it needs run-time support guests do not have" ;;
      *) echo "it is not on the allow-list" ;;
    esac
  }
  flags_see='(allowed: guests/sdk/guest-flags.allow; see docs/OPERATING.md, "What a submitter can and cannot do")'
  for ((i = 0; i < ${#words[@]}; i++)); do
    flag="${words[i]}"
    if [[ ( "$flag" == -D || "$flag" == -U ) && $((i + 1)) -lt ${#words[@]} ]]; then
      i=$((i + 1))
      flag+="${words[i]}"
    fi
    if ! flag_allowed "$flag"; then
      LC_ALL=C
      [[ "$flag" =~ ^[!-~]+$ ]] ||
        die "guest.flags: a flag with a control or non-ASCII character is not allowed $flags_see"
      die "guest.flags: the compiler flag '${flag:0:64}' is not allowed: $(flag_reason "$flag") $flags_see"
    fi
    GUEST_FLAGS+=("$flag")
  done
fi

# ---- A plain C program (musl mode) ---------------------------------------------------------------
# Sources that define main() and include no <aspen.h> are an ordinary C program: built unmodified
# with musl-gcc -static (Debian's musl-tools), as guests/musl/musl.cmake builds minigzip. It carries
# no Aspen ABI note, and that is what tells the monitor to run it as a static Linux program: stdin
# the job's input, stdout its output, stderr lines its log (docs/ABI.md section 12).
# The test is textual (no preprocessor): --musl or --sdk decide when it guesses wrong, e.g. a main
# behind a macro, or an SDK guest that includes <aspen.h> only through a header of its own and
# says "main()" in a comment.
musl_why="forced by --musl"
if ((!musl && !sdk_forced)) && ! grep -qsE '#[[:space:]]*include[[:space:]]*[<"]aspen\.h[>"]' "${sources[@]}" &&
   grep -qsE '(^|[^A-Za-z0-9_])main[[:space:]]*\(' "${sources[@]}"; then
  musl=1
  musl_why="detected: main() and no <aspen.h> in its sources; --sdk for an SDK build"
fi
if ((musl)); then
  MUSL_GCC="${MUSL_GCC:-musl-gcc}"
  command -v "$MUSL_GCC" >/dev/null 2>&1 ||
    die "$src_dir holds a plain C program (main(), no <aspen.h>), built with musl-gcc -static: install it with 'sudo apt-get install musl-tools' (scripts/setup.sh does)"
  mflags=(-static "${ASPEN_GUEST_OPT:--O2}" -Wall -idirafter /usr/include)
  [[ "${ASPEN_GUEST_WERROR:-0}" != 1 ]] || mflags+=(-Werror -Wextra)
  if [[ "${ASPEN_GUEST_DEBUG:-0}" == 1 ]]; then mflags+=(-g); else mflags+=(-s); fi
  read -ra mextra <<< "${ASPEN_GUEST_CFLAGS:-}"
  mkdir -p "$(dirname "$out")"
  tmp_out="$out.tmp.$$"
  trap 'rm -f "$tmp_out" "$tmp_out.log"' EXIT
  csrc=()
  for f in "${sources[@]}"; do [[ "$f" == *.c ]] && csrc+=("$f"); done
  ((${#csrc[@]})) || die "no C sources (*.c) in $src_dir: a plain C program (musl mode) is built from its *.c files only"
  if ! "$MUSL_GCC" "${mflags[@]}" "${mextra[@]}" "${GUEST_FLAGS[@]}" -I "$src_dir" "${csrc[@]}" \
       -o "$tmp_out" 2>"$tmp_out.log"; then
    cat "$tmp_out.log" >&2
    die "building $name with musl-gcc -static failed: see the compiler's message above"
  fi
  [[ ! -s "$tmp_out.log" ]] || cat "$tmp_out.log" >&2
  mv -f "$tmp_out" "$out"
  if ((!quiet)); then
    echo "built $(shown "$out") ($(stat -c %s "$out") bytes, a static Linux program: musl-gcc -static, $musl_why)"
  fi
  exit 0
fi

# ---- Toolchain -----------------------------------------------------------------------------------
CC="${CC:-gcc}"
command -v "$CC" >/dev/null 2>&1 ||
  die "the C compiler '$CC' was not found: install it with 'sudo apt-get install gcc' (Debian package gcc, or build-essential)"
command -v ar >/dev/null 2>&1 ||
  die "'ar' was not found: install it with 'sudo apt-get install binutils'"
GCC_INC="$("$CC" -print-file-name=include)"
[[ -f "$GCC_INC/stddef.h" ]] ||
  die "$CC has no freestanding headers (stddef.h) in '$GCC_INC': is it a complete gcc? (sudo apt-get install gcc)"
[[ "$("$CC" -dumpmachine)" == x86_64-* ]] ||
  die "$CC targets $("$CC" -dumpmachine); Aspen guests are x86-64: use an x86_64 gcc"

OPT="${ASPEN_GUEST_OPT:--Os}"
CFLAGS=(-std=gnu17 -ffreestanding -nostdlib -nostdinc -isystem "$GCC_INC" -I "$SDK/include"
        -march=x86-64 -mtune=generic "$OPT"
        -fno-pie -fno-pic -fno-plt -fno-common -fno-stack-protector -fcf-protection=none
        -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-math-errno
        -fno-tree-loop-distribute-patterns -ffunction-sections -fdata-sections
        -Wall -Wextra -Werror=implicit-function-declaration -Werror=implicit-int)
# (implicit declarations are errors: in freestanding code an undeclared malloc returns an int, and
# the pointer loses its upper half; engine/build.c's sandboxed builds use the same flags)
if [[ "${ASPEN_GUEST_DEBUG:-0}" == 1 ]]; then
  CFLAGS+=(-g)
fi
# -Werror applies to the guest's own sources (the SDK always builds with it), so it does not
# need an SDK build of its own.
if [[ "${ASPEN_GUEST_WERROR:-0}" == 1 ]]; then
  GUEST_FLAGS+=(-Werror)
fi
# shellcheck disable=SC2206
EXTRA=(${ASPEN_GUEST_CFLAGS:-})
# shellcheck disable=SC2054 # the commas belong to -Wl options
LDFLAGS=(-static -no-pie -nostdlib -Wl,--gc-sections -Wl,--build-id=none -Wl,-z,noexecstack
         -Wl,-z,max-page-size=4096 -Wl,-z,common-page-size=4096 -Wl,-T,"$SDK/aspen.ld"
         -Wl,-u,_start -Wl,-u,execute)
[[ "${ASPEN_GUEST_DEBUG:-0}" == 1 ]] || LDFLAGS+=(-s)

# ---- The SDK, compiled once per flag set ---------------------------------------------------------
flags_id=$(printf '%s\n' "$CC" "${CFLAGS[@]}" "${EXTRA[@]}" | cksum | cut -d' ' -f1)
sdk_build="$BUILD_ROOT/sdk-$flags_id"
sdk_lib="$sdk_build/libaspen-sdk.a"
mkdir -p "$sdk_build" "$(dirname "$out")"

sdk_stale() {
  [[ -f "$sdk_lib" ]] || return 0
  local newer
  newer=$(find "$SDK" "$ROOT/vm/include/abi.h" "${BASH_SOURCE[0]}" -newer "$sdk_lib" -type f -print -quit 2>/dev/null)
  [[ -n "$newer" ]]
}

build_sdk() {
  local tmp objs=() f o
  tmp=$(mktemp -d "$sdk_build/tmp.XXXXXX")
  ticker_start "compiling the C SDK (guests/sdk, once per flag set) into $(shown "$sdk_build")"
  for f in "$SDK"/src/*.c "$SDK"/src/*.S; do
    o="$tmp/$(basename "${f%.*}").o"
    "$CC" "${CFLAGS[@]}" -Werror "${EXTRA[@]}" -c "$f" -o "$o" ||
      { rm -rf "$tmp"; die "compiling the SDK failed ($f): see the compiler's message above"; }
    objs+=("$o")
  done
  rm -f "$tmp/lib.a"
  ar rcs "$tmp/lib.a" "${objs[@]}"
  mv -f "$tmp/lib.a" "$sdk_lib"
  rm -rf "$tmp"
  ticker_stop
}

if sdk_stale; then
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$sdk_build/.lock"
    flock 9
    ! sdk_stale || build_sdk # another build may have done it while we waited
    flock -u 9
    exec 9>&-
  else
    build_sdk
  fi
fi

# ---- The guest -----------------------------------------------------------------------------------
tmp_out="$out.tmp.$$"
trap 'rm -f "$tmp_out" "$tmp_out.log"' EXIT
if ! "$CC" "${CFLAGS[@]}" "${EXTRA[@]}" "${GUEST_FLAGS[@]}" -I "$src_dir" "${sources[@]}" "$sdk_lib" -lgcc \
       "${LDFLAGS[@]}" -o "$tmp_out" 2>"$tmp_out.log"; then
  cat "$tmp_out.log" >&2
  if grep -q "aspen_guest_handler" "$tmp_out.log"; then
    echo "build-guest: hint: define the job handler with ASPEN_JOB_HANDLER(fn) or ASPEN_JSON_HANDLER(fn) (see guests/sdk/include/aspen.h)" >&2
  fi
  die "building $name failed: see the compiler's message above"
fi
# Warnings still go to the user.
[[ ! -s "$tmp_out.log" ]] || cat "$tmp_out.log" >&2
check_no_tls "$tmp_out"
mv -f "$tmp_out" "$out"

if ((!quiet)); then
  echo "built $(shown "$out") ($(stat -c %s "$out") bytes)"
fi
