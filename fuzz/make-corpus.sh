#!/usr/bin/env bash
# fuzz/make-corpus.sh — (re)creates the committed seed corpora in fuzz/corpus/TARGET/. Run it when
# a format changes (the guest-hostcall encoding, the ELF layout of the SDK); the files it writes
# are committed, so `make fuzz` and CI start from the same seeds. Needs gcc and the SDK only.
#   elf/       the fuzz guest, echo-worker and the assembly minimal guest (stripped), plus
#              truncated and corrupted copies that stop at each check of the validator
#   hostcall/  programs for fuzz/guest-hostcall (encoding in its main.c), one per decoder path
#   json/      the payloads of the seed guests and documents at the parser's edges
#   filter/    filter strings from docs/OPERATING.md, the console and the store tests
#   gdb/       client byte streams: a gdb session as gdb 13 opens it, and hostile packets
# Files named regress-* are findings of the fuzzers; this script leaves them alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
C="$ROOT/fuzz/corpus"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ---- elf -----------------------------------------------------------------------------------------
export ASPEN_GUEST_BUILD_DIR="$tmp/gb"
"$ROOT/scripts/build-guest.sh" -q "$ROOT/fuzz/guest-hostcall" -o "$C/elf/fuzz-hostcall-guest"
"$ROOT/scripts/build-guest.sh" -q echo-worker -o "$C/elf/echo-worker"
gcc -nostdlib -static -no-pie -s -Wl,-T,"$ROOT/tests/vm/minimal.ld" -Wl,--build-id=none \
    "$ROOT/tests/vm/minimal.S" -o "$C/elf/minimal"
m="$C/elf/minimal"
size=$(stat -c %s "$m")
head -c 64 "$m" >"$C/elf/minimal-header-only"                  # phdrs past the end
head -c $((size / 2)) "$m" >"$C/elf/minimal-half"                 # segments past the end
head -c 4 "$m" >"$C/elf/magic-only"
# patch FILE OFFSET HEXBYTES: a copy of minimal with bytes replaced
patch() {
  cp "$m" "$C/elf/$1"
  printf "$(sed 's/\(..\)/\\x\1/g' <<<"$3")" | dd of="$C/elf/$1" bs=1 seek="$2" conv=notrunc status=none
}
patch minimal-32bit 4 01                 # EI_CLASS
patch minimal-bigendian 5 02             # EI_DATA
patch minimal-aarch64 18 b700            # e_machine
patch minimal-dyn 16 0300                # e_type ET_DYN
patch minimal-phnum0 56 0000             # e_phnum
patch minimal-phnum-huge 56 ffff
patch minimal-entry-zero 24 0000000000000000
patch minimal-shoff-bad 40 ffffffffffffff7f
# the first program header's p_vaddr (phoff 64 + 16) into page 0, and its p_memsz (64 + 40) huge
patch minimal-vaddr-low 80 0000000000000000
patch minimal-memsz-huge 104 00000000ffffffff
patch minimal-flags-wx 68 07000000       # p_flags RWX
# the note's abi_version (found by its "Aspen" owner name) and execute address
off=$(grep -obUaP 'Aspen\x00' "$m" | head -1 | cut -d: -f1)
patch minimal-abi-v2 $((off + 8)) 02000000
patch minimal-no-execute $((off + 16)) 0000000000000000
patch minimal-note-owner "$off" 4173706f

# ---- hostcall ------------------------------------------------------------------------------------
# Value bases (the `sel` of a val): 0 zero, 1 block, 2 stack_low, 3 stack_high, 4 heap_start,
# 5 heap_end, 6 input, 7 end of input, 8 image base, 9 "fuzz_copy" in rodata, 10 ASPEN_USER_MAX,
# 11 2^63, 12 2^64-1, 13 scratch (.bss), 14 input_len, 15 raw u64.
le32() { local v=$(( $1 & 0xffffffff )); printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) $((v >> 24 & 255)); }
le64() { le32 $(( $1 & 0xffffffff )); le32 $(( ($1 >> 32) & 0xffffffff )); }
b() { printf '\\x%02x' $(( $1 & 255 )); }
val() { b "$1"; le32 "${2:-0}"; }                  # base + delta
raw() { b 15; le32 0; le64 "$1"; }                 # raw u64
call() { local fsel=$1 nargs=$2; shift 2; b 0; b "$fsel"; b "$nargs"; printf '%s' "$@"; }
arg() { b 1; b "$1"; echo -n "$2"; }
field() { b 2; b "$1"; echo -n "$2"; }
port() { b 3; b "$1"; b "$2"; if [[ $3 == \\* ]]; then echo -n "$3"; else b "$3"; fi; echo -n "$4"; }     # port%8, mode (0/1/2 size|4 in|8 string|16 count is a val), count, val
done_() { b 4; echo -n "$1$2$3$4$5"; }                   # status optr olen mptr mlen
poke() { b 5; echo -n "$1"; b "${#2}"; printf '%s' "$2"; }
ret() { b 7; }
seed() { local name=$1; shift; printf "$(echo -n "$*")" >"$C/hostcall/$name"; }
hello="$(poke "$(val 13)" hello)"
seed println-valid "$hello$(call 1 2 "$(val 13)" "$(val 0 5)")$(ret)"
seed println-input "$(call 1 2 "$(val 6)" "$(val 14)")$(ret)"
seed println-empty "$(call 1 2 "$(val 13)" "$(val 0)")$(ret)"
seed println-newlines "$(poke "$(val 13)" $'a\nb\n\tc\x1b')$(call 1 2 "$(val 13)" "$(val 0 8)")$(ret)"
seed println-outside "$(call 1 2 "$(val 10 4096)" "$(val 0 16)")"
seed println-huge-len "$(call 1 2 "$(val 13)" "$(raw $((1 << 40)))")"
seed println-wrap "$(call 1 2 "$(val 12 -4095)" "$(val 0 8192)")"
seed println-guard-gap "$(call 1 2 "$(val 2 -16)" "$(val 0 32)")"
seed println-to-heap-end "$(call 1 2 "$(val 5 -8)" "$(val 0 8)")$(call 1 2 "$(val 5 -8)" "$(val 0 9)")"
seed println-long "$(call 1 2 "$(val 4)" "$(val 0 17000)")$(ret)"
seed lookup-valid "$(call 0 2 "$(val 9)" "$(val 0 9)")$(ret)"
seed lookup-then-copy "$(call 0 2 "$(val 9)" "$(val 0 9)")$hello$(call 4 3 "$(val 13)" "$(val 0 5)" "$(val 4 64)")$(call 1 2 "$(val 4 64)" "$(val 0 5)")$(ret)"
seed copy-to-rodata "$(call 4 3 "$(val 13)" "$(val 0 4)" "$(val 9)")"
seed copy-from-outside "$(call 4 3 "$(val 10)" "$(val 0 4)" "$(val 13)")"
seed copy-onto-block "$(call 4 3 "$(val 4)" "$(val 0 168)" "$(val 1)")$(ret)"
seed copy-huge "$(call 4 3 "$(val 4)" "$(raw $((1 << 33)))" "$(val 13)")$(ret)"
seed host-fn-fails "$(call 12 0)$(ret)"
seed lookup-unknown "$hello$(call 0 2 "$(val 13)" "$(val 0 5)")$(ret)"
seed lookup-len0 "$(call 0 2 "$(val 9)" "$(val 0)")"
seed lookup-len128 "$(call 0 2 "$(val 9)" "$(val 0 128)")"
seed lookup-page0 "$(call 0 2 "$(val 0 8)" "$(val 0 5)")"
seed time "$(call 2 0)$(call 3 0)$(ret)"
seed fn-extra "$(call 4 0)"
seed fn-reserved "$(call 5 1 "$(val 0)")"
seed fn-max "$(call 6 0)"
seed fn-raw "$(call 7 0 "$(le32 999)")"
seed port-value-differs "$(call 2 $((0x80)) "$(val 0 1)")$(ret)"
seed args-preset "$(arg 0 "$(val 13)")$(arg 1 "$(val 0 5)")$hello$(call 1 0)$(ret)"
seed done-ok "$hello$(done_ "$(val 0)" "$(val 13)" "$(val 0 5)" "$(val 0)" "$(val 0)")"
seed done-ok-empty "$(done_ "$(val 0)" "$(val 0)" "$(val 0)" "$(val 0)" "$(val 0)")"
seed done-ok-input "$(done_ "$(val 0)" "$(val 6)" "$(val 14)" "$(val 0)" "$(val 0)")"
seed done-ok-outside "$(done_ "$(val 0)" "$(val 10)" "$(val 0 16)" "$(val 0)" "$(val 0)")"
seed done-ok-too-large "$(done_ "$(val 0)" "$(val 4)" "$(raw $((1 << 30)))" "$(val 0)" "$(val 0)")"
seed done-ok-past-heap "$(done_ "$(val 0)" "$(val 5 -4)" "$(val 0 8)" "$(val 0)" "$(val 0)")"
seed done-ok-across-block "$(done_ "$(val 0)" "$(val 3 -8)" "$(val 0 4200)" "$(val 0)" "$(val 0)")"
seed done-ok-wrap "$(done_ "$(val 0)" "$(val 12 -7)" "$(val 0 16)" "$(val 0)" "$(val 0)")"
seed done-error "$hello$(done_ "$(val 0 1)" "$(val 0)" "$(val 0)" "$(val 13)" "$(val 0 5)")"
seed done-error-outside "$(done_ "$(val 0 1)" "$(val 0)" "$(val 0)" "$(val 10)" "$(val 0 16)")"
seed done-error-empty "$(done_ "$(val 0 1)" "$(val 0)" "$(val 0)" "$(val 0)" "$(val 0)")"
seed done-error-long "$(done_ "$(val 0 1)" "$(val 0)" "$(val 0)" "$(val 4)" "$(val 0 9000)")"
seed done-error-huge "$(done_ "$(val 0 1)" "$(val 0)" "$(val 0)" "$(val 4)" "$(raw $((1 << 62)))")"
seed done-error-control "$(poke "$(val 13)" $'x\x1b[2Jy\r\x7f')$(done_ "$(val 0 1)" "$(val 0)" "$(val 0)" "$(val 13)" "$(val 0 8)")"
seed done-panic "$hello$(done_ "$(val 0 2)" "$(val 0)" "$(val 0)" "$(val 13)" "$(val 0 5)")"
seed done-status-unknown "$(done_ "$(val 0 7)" "$(val 0)" "$(val 0)" "$(val 0)" "$(val 0)")"
seed port-outb "$(port 0 0 0 "$(val 0 1)")"
seed port-outw-exit "$(port 4 1 0 "$(val 0 2)")"
seed port-outl-a1 "$(port 1 2 0 "$(val 0 1)")"
seed port-outl-a5 "$(port 5 2 0 "$(val 0 2)")"
seed port-exit-unknown "$(port 4 2 0 "$(val 0 3)")"
seed port-inl-call "$(port 0 6 0 "$(val 0)")"
seed port-inb-a7 "$(port 7 4 0 "$(val 0)")"
seed port-insw "$(port 2 13 255 "$(val 13)")"
seed port-insl-exit "$(port 4 14 4 "$(val 13)")"
seed port-insb-huge-count "$(port 0 $((4 | 8 | 16)) "$(raw $((1 << 40)))" "$(val 4)")"
seed port-insl-count-wraps "$(port 2 $((2 | 4 | 8 | 16)) "$(val 12)" "$(val 13)")"
seed port-outsb-huge-count "$(port 0 $((8 | 16)) "$(raw $((1 << 40)))" "$(val 4)")"
seed port-outsb-call "$(port 0 8 16 "$(val 13)")"
seed port-outsl-call "$(poke "$(val 13)" $'\x02')$(port 0 10 3 "$(val 13)")$(ret)"
# (scratch is zero at each job's start: poke only the non-zero bytes; bash strings hold no NUL)
seed port-outsl-call-times "$(poke "$(val 13)" $'\x02')$(poke "$(val 13 4)" $'\x03')$(port 0 10 2 "$(val 13)")$(ret)"
seed port-outsl-exit-done "$(poke "$(val 13)" $'\x02')$(poke "$(val 13 4)" $'\x02')$(port 4 10 2 "$(val 13)")$(ret)"
seed port-outsl-exit "$(port 4 10 1 "$(val 13)")"
seed ready-in-job "$(b 6)"
seed field-status-then-return "$(field 0 "$(val 0 2)")$(ret)"
seed field-output-then-return "$(field 1 "$(val 10)")$(field 2 "$(val 0 64)")$(ret)"
seed field-heap-end "$(field 10 "$(val 0)")$(field 7 "$(val 12)")$(ret)"
seed field-layout "$(field 9 "$(val 10)")$(field 11 "$(val 0)")$(field 13 "$(val 12)")$(field 14 "$(val 0)")$(done_ "$(val 0)" "$(val 13)" "$(val 0 5)" "$(val 0)" "$(val 0)")"
seed field-slot "$(field 200 "$(val 12)")$(field 21 "$(val 1)")$(ret)"
seed poke-rodata "$(poke "$(val 9)" x)"
seed poke-block "$(poke "$(val 1 64)" $'\x01')$(b 4)"
seed poke-heap-and-stack "$(poke "$(val 4)" heap)$(poke "$(val 2 64)" stack)$(ret)"
seed poke-null "$(poke "$(val 0 16)" x)"

# ---- json ----------------------------------------------------------------------------------------
j() { printf '%s' "$2" >"$C/json/$1"; }
j echo-payload '{"message": "hello", "n": 1}'
j data-processor '{"numbers": [3, 1, 4, 1, 5, 9, 2, 6], "operation": "stats"}'
j data-processor-words '{"text": "the quick brown fox jumps over the lazy dog", "operation": "wordcount"}'
j nested '{"a":{"b":{"c":[1,[2,[3,{"d":null}]]]}},"e":[true,false]}'
j escapes '"\"\\\/\b\f\n\r\t\u0041\u00e9\u4e2d\ud83d\ude00\u0000"'
j numbers '[0,-0,1.5,-1.5e10,1E+2,1e-2,1.7976931348623157e308,5e-324,9223372036854775807,-9223372036854775808,9223372036854775808,123456789012345678901234567890]'
j utf8 '"h\u00e9llo — ünïcödé 中文 😀"'
j dup-keys '{"a":1,"a":2,"":3}'
j nul-key '{"a\u0000b":1}'
j whitespace $' \t\n\r[ 1 ,\n 2 ]\n'
j empty-containers '[[],{},[{}],{"":[]}]'
j deep "$(printf '[%.0s' {1..64})$(printf ']%.0s' {1..64})"
j too-deep "$(printf '[%.0s' {1..65})$(printf ']%.0s' {1..65})"
j bad-surrogate '"\ud800x"'
j bad-utf8 "$(printf '"\xc0\xaf"')"
j bad-number '[01, 1., .5, +1, 1e]'
j trailing '{"a":1} x'
j unterminated '{"a":"b'
j literals '[null,true,false]'

# ---- filter --------------------------------------------------------------------------------------
f() { printf '%s' "$2" >"$C/filter/$1"; }
f state 'state:failed,running'
f state-one 'state:queued'
f type-binary 'type:vm_execute binary:echo-worker'
f tag 'tag:urgent'
f ids 'id:42 rerun-of:7'
f payload 'payload.user:alice'
f payload-nested 'payload.user.name:"Alice B"'
f payload-index 'payload.items[0].name:x'
f payload-bool 'payload.flag:true payload.n:5'
f payload-dollar 'payload.$.user:alice'
f order 'order:queue state:queued,scheduled'
f quoted-escape 'type:"a \"b\" c\\"'
f everything 'state:succeeded type:echo binary:echo-worker tag:a id:1 rerun-of:2 payload.a:1 payload.b:2 payload.c:3 payload.d:4 order:oldest'
f bad-term 'colour:red'
f no-colon 'failed'
f unterminated 'type:"abc'
f bad-path 'payload.a[:1'
f bad-path-json 'payload.a]]:1'
f five-fields 'payload.a:1 payload.b:2 payload.c:3 payload.d:4 payload.e:5'
f id-negative 'id:-1'
f empty-value 'type:'
# ---- gdb -----------------------------------------------------------------------------------------
# The first byte sets the size of the pieces the stream is fed in; then packets ($data#checksum).
mkdir -p "$C/gdb"
pk() { local d="$1" sum=0 i; for ((i = 0; i < ${#d}; i++)); do sum=$(((sum + $(printf '%d' "'${d:i:1}")) & 255)); done; printf '$%s#%02x' "$d" "$sum"; }
g() { local name="$1"; shift; { printf "$(printf '\\x%02x' "$1")"; shift; for p in "$@"; do pk "$p"; printf '+'; done; } >"$C/gdb/$name"; }
g session 7 'qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386' \
  vMustReplyEmpty QStartNoAckMode Hg0 'qXfer:features:read:target.xml:0,ffb' qTStatus '?' qfThreadInfo qsThreadInfo qAttached:1 g \
  'm400000,40' 'Z0,400100,1' 'm4000f0,20' 'M400100,1:90' 'm400100,1' 'vCont?' 'vCont;c:p1.-1' 'z0,400100,1' 'vCont;s:1;c' 'p10' 'P10=0001400000000000' k
g memory 63 'm0,1' 'mffffffffffffffff,1' 'mffffffffffffffff,ffffffffffffffff' 'm400000,ffffffffffffffff' 'm40fff0,100' 'M400000,2:abc' 'X400000,3:ab' 'X400000,0:' 'M400000,ffffffffffffffff:00' 'm00000000000000400000,1'
g breakpoints 1 'Z0,400000,1' 'Z0,400000,1' 'Z0,40ffff,1' 'Z0,410000,1' 'Z0,400001,2' 'Z1,400000,1' 'M3fffff,3:cccccc' 'm3fffff,3' 'z0,400000,1' 'z0,400000,1'
g registers 3 g 'G00' 'Gzz' 'p3b' 'p3a' 'pffffffffffffffffff' 'P12=08000000' 'P3a=0000000000000080' 'P11=02300000'
g resume 5 'c400000' 'C0b;400000' 'Sff' 'C100' 'vCont;C0b:1' 'vCont;t' 'vCont;' 'vCont;s:2;c' 'D;1' 'vKill;1'
printf '\x01$%s#00+$?#zz\x03$$$###}}}$m400000,4#' "$(head -c 20000 /dev/zero | tr '\0' M)" >"$C/gdb/framing"

echo "make-corpus: $(find "$C" -type f | wc -l) files in $C"
