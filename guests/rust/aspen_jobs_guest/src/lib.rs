//! aspen_jobs_guest — write Aspen guests in Rust with the seed's API (docs/ABI.md, "Rust guests").
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use aspen_jobs_guest::*;
//! fn echo(input: &[u8]) -> Vec<u8> { let mut v = b"Echo: ".to_vec(); v.extend_from_slice(input); v }
//! define_job_handler!(echo);
//! ```
//!
//! What the crate provides, and why each piece is here rather than in a dependency: the guest has no
//! kernel and no libc, so the entry points (`_start`, `execute`), the ABI note, the global allocator
//! over the guest heap, the panic handler and the handful of C memory functions LLVM calls are all
//! defined below; JSON (`Value`, `json!`, parsing, writing) is in `json.rs` because serde is not
//! available offline. Everything builds with stable Rust 1.63 (Debian's) and newer.
#![no_std]
#![cfg_attr(aspen_old_alloc, feature(alloc_error_handler))]

extern crate alloc;

mod json;
pub use json::*;

pub use alloc::borrow::ToOwned;
pub use alloc::boxed::Box;
pub use alloc::collections::BTreeMap;
pub use alloc::string::{String, ToString};
pub use alloc::vec::Vec;
pub use alloc::{format, vec};

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::fmt::{self, Write};

// ---- The call block (vm/include/abi.h, struct aspen_abi_block) ------------------------------------------
#[repr(C)]
pub struct Block {
    pub magic: u32,
    pub abi_version: u32,
    pub mem_size: u64,
    pub stack_low: u64,
    pub stack_high: u64,
    pub heap_start: u64,
    pub heap_end: u64,
    pub input_ptr: u64,
    pub input_len: u64,
    pub status: u32,
    pub reserved0: u32,
    pub output_ptr: u64,
    pub output_len: u64,
    pub message_ptr: u64,
    pub message_len: u64,
    pub call_fn: u32,
    pub reserved1: u32,
    pub call_args: [u64; 6],
    pub call_ret: i64,
}
const _: () = assert!(core::mem::size_of::<Block>() == 168);

const PORT_CALL: u16 = 0xA0;
const PORT_EXIT: u16 = 0xA4;
const EXIT_READY: u32 = 1;
const EXIT_DONE: u32 = 2;
pub const STATUS_OK: u32 = 0;
pub const STATUS_ERROR: u32 = 1;
pub const STATUS_PANIC: u32 = 2;
const FN_PRINTLN: u32 = 1;
const FN_GET_TIME: u32 = 2;
const FN_GET_TIME_NS: u32 = 3;
const MAX_MESSAGE: usize = 4096;

/// State that lives in the image's writable pages: the host restores them from the READY snapshot
/// before every job, so each job starts with the allocator exactly as start-up left it.
struct Globals {
    block: *mut Block,
    heap: Heap,
    message: [u8; MAX_MESSAGE],
    panicking: bool,
}
struct GlobalCell(UnsafeCell<Globals>);
// One vCPU, no threads, no interrupts: nothing runs concurrently with anything.
unsafe impl Sync for GlobalCell {}
static G: GlobalCell = GlobalCell(UnsafeCell::new(Globals {
    block: core::ptr::null_mut(),
    heap: Heap::EMPTY,
    message: [0; MAX_MESSAGE],
    panicking: false,
}));
#[inline(always)]
fn g() -> *mut Globals {
    G.0.get()
}

// ---- Entry points and the ABI note ---------------------------------------------------------------
// _start and execute are trampolines as in the C SDK's start.S: whatever the host left, the Rust
// code gets a 16-byte aligned stack, DF clear, the frame chain ending here and the default MXCSR.
// The note names `execute`, which calls aspen_rust_execute, defined by define_job_handler! or
// define_json_handler! in the guest (so a guest without a handler fails to link, saying so).
core::arch::global_asm!(
    // CFI into .debug_frame: aspen.ld discards .eh_frame (no unwinding), debug builds keep this
    ".cfi_sections .debug_frame",
    ".section .text.aspen_entry, \"ax\", @progbits",
    ".globl _start",
    ".type _start, @function",
    "_start:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "xorl %ebp, %ebp",
    "andq $-16, %rsp",
    "cld",
    "ldmxcsr aspen_rust_mxcsr(%rip)",
    "call aspen_rust_startup",
    "ud2",
    ".cfi_endproc",
    ".size _start, . - _start",
    ".globl execute",
    ".type execute, @function",
    "execute:",
    // The outermost frame: no return address above it, so gdb's backtrace ends here instead of
    // showing a "?? ()" frame read from the call block's page.
    ".cfi_startproc",
    ".cfi_undefined rip",
    "xorl %ebp, %ebp",
    "andq $-16, %rsp",
    "cld",
    "ldmxcsr aspen_rust_mxcsr(%rip)",
    "call aspen_rust_execute",
    "ud2",
    ".cfi_endproc",
    ".size execute, . - execute",
    ".section .rodata.aspen_entry, \"a\", @progbits",
    ".balign 4",
    "aspen_rust_mxcsr:",
    ".long 0x1f80",
    ".section .note.aspen, \"a\", @note",
    ".balign 4",
    ".long 6, 16, 0x31505341",
    ".asciz \"Aspen\"",
    ".balign 4",
    ".long 1, 0",
    ".quad execute",
    ".text",
    options(att_syntax)
);

#[inline(always)]
unsafe fn outl(port: u16, value: u32) {
    core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack, preserves_flags));
}

fn exit_done() -> ! {
    loop {
        // SAFETY: the DONE exit ends the job; the host never resumes after it.
        unsafe { outl(PORT_EXIT, EXIT_DONE) }
    }
}

/// The ELF entry, once per VM: set up the heap over [heap_start, heap_end) and report READY.
#[no_mangle]
pub unsafe extern "C" fn aspen_rust_startup(block: *mut Block) -> ! {
    let gl = &mut *g();
    gl.block = block;
    let b = &*block;
    gl.heap.init(b.heap_start as usize, b.heap_end as usize);
    loop {
        outl(PORT_EXIT, EXIT_READY);
    }
}

/// Used by the handler macros at the start of each job: the heap ends where the input begins.
#[doc(hidden)]
pub unsafe fn __job_begin(block: *mut Block, input: *const u8, len: usize) -> &'static mut [u8] {
    let gl = &mut *g();
    gl.block = block;
    gl.heap.set_limit((*block).input_ptr as usize);
    if len == 0 {
        return &mut [];
    }
    core::slice::from_raw_parts_mut(input as *mut u8, len)
}

/// Ends the job with `bytes` as its output.
#[doc(hidden)]
pub fn __finish_ok(out: Vec<u8>) -> ! {
    let out = core::mem::ManuallyDrop::new(out);
    unsafe {
        let b = &mut *(*g()).block;
        b.status = STATUS_OK;
        b.output_ptr = out.as_ptr() as u64;
        b.output_len = out.len() as u64;
    }
    exit_done()
}

/// Ends the job as failed (status ERROR) with `msg`, copied into static memory so it is reported
/// even when the heap is exhausted.
#[doc(hidden)]
pub fn __finish_error(msg: &str) -> ! {
    finish_message(STATUS_ERROR, format_args!("{}", msg))
}

fn finish_message(status: u32, args: fmt::Arguments) -> ! {
    unsafe {
        let gl = &mut *g();
        let mut w = MsgWriter { buf: &mut gl.message, len: 0 };
        let _ = w.write_fmt(args);
        let len = w.len;
        let b = &mut *gl.block;
        b.status = status;
        b.message_ptr = gl.message.as_ptr() as u64;
        b.message_len = len as u64;
    }
    exit_done()
}

/// Writes into the fixed message buffer, cutting at its end on a character boundary.
struct MsgWriter<'a> {
    buf: &'a mut [u8; MAX_MESSAGE],
    len: usize,
}
impl<'a> Write for MsgWriter<'a> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_MESSAGE - self.len;
        let mut n = s.len().min(room);
        while n > 0 && !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

// ---- Panics ---------------------------------------------------------------------------------------
/// Collects a panic's Display text so its message can be separated from its location: the text is
/// "panicked at 'MSG', FILE:L:C" up to Rust 1.72 and "panicked at FILE:L:C:\nMSG" after, and
/// PanicInfo::message is only stable since 1.81. The report is "MSG at FILE:L:C" on every version.
struct Collect<'a> {
    buf: &'a mut [u8],
    len: usize,
}
impl<'a> Write for Collect<'a> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    static mut TEXT: [u8; MAX_MESSAGE] = [0; MAX_MESSAGE];
    static mut LOC: [u8; 512] = [0; 512];
    unsafe {
        let gl = &mut *g();
        if gl.panicking || gl.block.is_null() {
            // A panic while reporting one (or before start-up saw the call block): say only that.
            if !gl.block.is_null() {
                let b = &mut *gl.block;
                let m = b"panic while reporting a panic";
                b.status = STATUS_PANIC;
                b.message_ptr = m.as_ptr() as u64;
                b.message_len = m.len() as u64;
                exit_done()
            }
            loop {
                core::arch::asm!("ud2", options(noreturn));
            }
        }
        gl.panicking = true;
        let text = &mut *core::ptr::addr_of_mut!(TEXT);
        let locbuf = &mut *core::ptr::addr_of_mut!(LOC);
        let mut t = Collect { buf: text, len: 0 };
        let _ = write!(t, "{}", info);
        let tlen = t.len;
        let mut l = Collect { buf: locbuf, len: 0 };
        if let Some(loc) = info.location() {
            let _ = write!(l, "{}:{}:{}", loc.file(), loc.line(), loc.column());
        }
        let llen = l.len;
        let text = &text[..tlen];
        let loc = &locbuf[..llen];
        let msg = panic_message(text, loc);
        let msg = core::str::from_utf8(msg).unwrap_or("(message not UTF-8)");
        let loc = core::str::from_utf8(loc).unwrap_or("?");
        if msg.starts_with("memory allocation of ") {
            // An allocation failure: where in `alloc` it was noticed says nothing useful; how full
            // the heap was does.
            let (used, heap) = gl.heap_report();
            finish_message(
                STATUS_PANIC,
                format_args!("{} (out of guest memory: {} of the job's {}-byte heap in use; run the job with more memory)", msg, used, heap),
            )
        }
        if loc.is_empty() {
            finish_message(STATUS_PANIC, format_args!("{}", msg))
        } else {
            finish_message(STATUS_PANIC, format_args!("{} at {}", msg, loc))
        }
    }
}

fn panic_message<'a>(text: &'a [u8], loc: &[u8]) -> &'a [u8] {
    const P: &[u8] = b"panicked at ";
    if !text.starts_with(P) || loc.is_empty() {
        return text;
    }
    let rest = &text[P.len()..];
    // Rust >= 1.73: "LOC:\nMSG"
    if rest.len() > loc.len() + 1 && rest.starts_with(loc) && rest[loc.len()] == b':' {
        let m = &rest[loc.len() + 1..];
        return m.strip_prefix(b"\n").unwrap_or(m);
    }
    if rest == loc || (rest.len() == loc.len() + 1 && rest.starts_with(loc)) {
        return b"explicit panic";
    }
    // Rust <= 1.72: "'MSG', LOC"
    if rest.first() == Some(&b'\'') && rest.ends_with(loc) {
        let m = &rest[1..rest.len() - loc.len()];
        if let Some(m) = m.strip_suffix(b"', ") {
            return m;
        }
    }
    text
}

// ---- The heap ---------------------------------------------------------------------------------------
/// The allocator: memory is handed out from the bottom of [heap_start, limit) up (so a job dirties
/// few pages, which keeps the host's per-job restore cheap — docs/ABI.md, "Memory"). Blocks of up to
/// 4 KiB come in power-of-two classes with a free list each; larger blocks are carved from the top
/// and given back to it when they are the last one (Vec growth), else kept on a first-fit list.
/// Running out returns null, which Rust turns into an allocation-failure panic, reported by the
/// panic handler with the size asked for.
struct Heap {
    start: usize,
    top: usize,
    limit: usize,
    classes: [usize; 9], // free lists for 16, 32, ..., 4096 bytes (next pointer in the block)
    large: usize,        // free list of large blocks: [next, size] in the block
    in_use: usize,
}
const MIN_CLASS_SHIFT: u32 = 4;
const MAX_SMALL: usize = 4096;

impl Heap {
    const EMPTY: Heap = Heap { start: 0, top: 0, limit: 0, classes: [0; 9], large: 0, in_use: 0 };

    fn init(&mut self, start: usize, end: usize) {
        self.start = (start + 15) & !15;
        self.top = self.start;
        self.limit = end;
    }
    fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }
    fn class_of(size: usize) -> usize {
        let s = if size < 16 { 16 } else { size.next_power_of_two() };
        (s.trailing_zeros() - MIN_CLASS_SHIFT) as usize
    }
    /// Carve [top, top+size) aligned to align from the untouched part of the heap.
    fn carve(&mut self, size: usize, align: usize) -> *mut u8 {
        let p = match self.top.checked_add(align - 1) {
            Some(v) => v & !(align - 1),
            None => return core::ptr::null_mut(),
        };
        match p.checked_add(size) {
            Some(end) if end <= self.limit => {
                self.top = end;
                p as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }
    unsafe fn alloc(&mut self, l: Layout) -> *mut u8 {
        let size = if l.size() == 0 { 1 } else { l.size() };
        let p;
        if size <= MAX_SMALL && l.align() <= 16 {
            let c = Self::class_of(size);
            let head = self.classes[c];
            if head != 0 {
                self.classes[c] = *(head as *const usize);
                p = head as *mut u8;
            } else {
                p = self.carve(16usize << c, 16);
            }
        } else {
            p = self.alloc_large(size, l.align().max(16));
        }
        if !p.is_null() {
            self.in_use += size;
        }
        p
    }
    unsafe fn alloc_large(&mut self, size: usize, align: usize) -> *mut u8 {
        let size = (size + 15) & !15;
        // First fit among freed large blocks that are not much bigger than asked for.
        let mut prev: *mut usize = core::ptr::addr_of_mut!(self.large);
        let mut cur = self.large;
        while cur != 0 {
            let next = *(cur as *const usize);
            let bsize = *((cur + 8) as *const usize);
            if cur & (align - 1) == 0 && bsize >= size && bsize / 2 <= size {
                *prev = next;
                return cur as *mut u8;
            }
            prev = cur as *mut usize;
            cur = next;
        }
        self.carve(size, align)
    }
    unsafe fn dealloc(&mut self, p: *mut u8, l: Layout) {
        let size = if l.size() == 0 { 1 } else { l.size() };
        self.in_use -= size;
        if size <= MAX_SMALL && l.align() <= 16 {
            let c = Self::class_of(size);
            *(p as *mut usize) = self.classes[c];
            self.classes[c] = p as usize;
            return;
        }
        let size = (size + 15) & !15;
        if p as usize + size == self.top {
            self.top = p as usize;
            return;
        }
        let b = p as usize;
        *(b as *mut usize) = self.large;
        *((b + 8) as *mut usize) = size;
        self.large = b;
    }
    unsafe fn realloc(&mut self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let old = if l.size() == 0 { 1 } else { l.size() };
        let new = if new_size == 0 { 1 } else { new_size };
        let small = |s: usize| s <= MAX_SMALL && l.align() <= 16;
        if small(old) && small(new) && Self::class_of(old) == Self::class_of(new) {
            self.in_use = self.in_use - old + new;
            return p;
        }
        // The last large block grows or shrinks in place.
        if !small(old) && !small(new) {
            let (o16, n16) = ((old + 15) & !15, (new + 15) & !15);
            if p as usize + o16 == self.top {
                if let Some(end) = (p as usize).checked_add(n16) {
                    if end <= self.limit {
                        self.top = end;
                        self.in_use = self.in_use - old + new;
                        return p;
                    }
                }
            }
        }
        let nl = Layout::from_size_align_unchecked(new, l.align());
        let q = self.alloc(nl);
        if !q.is_null() {
            core::ptr::copy_nonoverlapping(p, q, old.min(new));
            self.dealloc(p, l);
        }
        q
    }
}

impl Globals {
    fn heap_report(&self) -> (usize, usize) {
        (self.heap.in_use, self.heap.limit.saturating_sub(self.heap.start))
    }
}

/// Heap use in bytes: (in use now, the job's whole heap [heap_start, input)).
pub fn heap_stats() -> (usize, usize) {
    unsafe { (*g()).heap_report() }
}

struct GuestAlloc;
unsafe impl GlobalAlloc for GuestAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        (*g()).heap.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        (*g()).heap.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        (*g()).heap.realloc(p, l, n)
    }
}
#[global_allocator]
static ALLOC: GuestAlloc = GuestAlloc;

/// Rust before 1.68 has no default allocation-error handler for no_std programs; this one says what
/// the default says since (build-guest.sh enables it for those compilers only).
#[cfg(aspen_old_alloc)]
#[alloc_error_handler]
fn alloc_error(l: Layout) -> ! {
    panic!("memory allocation of {} bytes failed", l.size())
}

// ---- Host calls -------------------------------------------------------------------------------------
/// Calls host function `f` with up to six arguments (docs/ABI.md, "Host functions").
pub fn host_call(f: u32, args: &[u64]) -> i64 {
    unsafe {
        let b = (*g()).block;
        core::ptr::write_volatile(core::ptr::addr_of_mut!((*b).call_fn), f);
        for i in 0..6 {
            let v = if i < args.len() { args[i] } else { 0 };
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*b).call_args[i]), v);
        }
        // The asm is a compiler barrier (no `nomem`): the stores above happen before the exit,
        // and call_ret is read after it.
        core::arch::asm!("out dx, eax", in("dx") PORT_CALL, in("eax") f, options(nostack, preserves_flags));
        core::ptr::read_volatile(core::ptr::addr_of!((*b).call_ret))
    }
}

/// Logs `bytes` as one line on the host (a '\n' inside splits it).
pub fn hl_print(bytes: &[u8]) {
    host_call(FN_PRINTLN, &[bytes.as_ptr() as u64, bytes.len() as u64]);
}

/// Unix time in seconds, from the host's clock.
pub fn hl_get_time() -> u64 {
    host_call(FN_GET_TIME, &[]) as u64
}

/// Unix time in nanoseconds, from the host's clock.
pub fn hl_get_time_ns() -> u64 {
    host_call(FN_GET_TIME_NS, &[]) as u64
}

/// `hl_println!("x = {}", x)`: one log line on the host, formatted like `format!`.
#[macro_export]
macro_rules! hl_println {
    ($($arg:tt)*) => {
        $crate::hl_print($crate::format!($($arg)*).as_bytes())
    };
}

// ---- Handlers ---------------------------------------------------------------------------------------
/// `define_job_handler!(f)` with `fn f(input: &[u8]) -> Vec<u8>`: the job's output is what f returns.
#[macro_export]
macro_rules! define_job_handler {
    ($handler:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn aspen_rust_execute(
            block: *mut $crate::Block,
            input: *const u8,
            len: usize,
        ) -> ! {
            let input = $crate::__job_begin(block, input, len);
            let f: fn(&[u8]) -> $crate::Vec<u8> = $handler;
            $crate::__finish_ok(f(input))
        }
    };
}

/// A JSON job's input: the payload, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobInput {
    pub payload: Value,
}

/// A JSON job's result: a value (the job's output, written as JSON) or a failure message (the job
/// fails with it, as a job error).
#[derive(Clone, Debug, PartialEq)]
pub enum JobOutput {
    Success(Value),
    Failure(String),
}
impl JobOutput {
    pub fn success(value: Value) -> JobOutput {
        JobOutput::Success(value)
    }
    pub fn failure<S: Into<String>>(message: S) -> JobOutput {
        JobOutput::Failure(message.into())
    }
}

#[doc(hidden)]
pub fn __run_json(input: &[u8], f: fn(JobInput) -> JobOutput) -> ! {
    let payload = match from_slice(input) {
        Ok(v) => v,
        Err(e) => finish_message(STATUS_ERROR, format_args!("input is not valid JSON: {}", e)),
    };
    match f(JobInput { payload }) {
        JobOutput::Success(v) => __finish_ok(to_vec(&v)),
        JobOutput::Failure(m) => __finish_error(&m),
    }
}

/// `define_json_handler!(f)` with `fn f(input: JobInput) -> JobOutput`: the input is parsed as
/// JSON first (input that is not JSON fails with where and why), the output written as JSON.
#[macro_export]
macro_rules! define_json_handler {
    ($handler:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn aspen_rust_execute(
            block: *mut $crate::Block,
            input: *const u8,
            len: usize,
        ) -> ! {
            let input = $crate::__job_begin(block, input, len);
            $crate::__run_json(input, $handler)
        }
    };
}

// ---- C memory functions ------------------------------------------------------------------------------
// LLVM emits calls to these; on a hosted target Rust expects libc to provide them, and a guest has
// none. rep movsb/stosb are short and fast enough, and cannot be turned back into calls to themselves.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
                     options(nostack, preserves_flags));
    dst
}

#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // No overlap that a forward copy would clobber.
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _,
                         inout("rsi") src => _, options(nostack, preserves_flags));
    } else if n > 0 {
        core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _,
                         inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                         options(nostack));
    }
    dst
}

#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
                     options(nostack, preserves_flags));
    dst
}

#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        let (x, y) = (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i)));
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    memcmp(a, b, n)
}

/// The precompiled `core`/`alloc` are built for unwinding, so their code (inlined into the guest)
/// names this symbol in cleanup paths. Guests abort on panic (the panic handler never returns), so
/// it is unreachable; it exists only so the link succeeds.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {
        unsafe { core::arch::asm!("ud2", options(noreturn)) }
    }
}

/// The personality routine the precompiled `core`/`alloc` name in their unwind tables (they are built
/// for unwinding). With `lto = true` the unused references are dropped before the link; without it
/// (the profile docs/ABI.md shows, or a debug build) the link needs the symbol. No frame ever unwinds
/// (panics abort), so it is never called; if it were, it says "fatal: cannot unwind".
#[no_mangle]
pub extern "C" fn rust_eh_personality() -> i32 {
    9 // _URC_FATAL_PHASE1_ERROR
}
