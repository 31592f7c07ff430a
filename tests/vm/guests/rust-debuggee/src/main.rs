//! tests/vm/guests/rust-debuggee: a Rust guest for tests/vm/test_gdb.c, built with
//! ASPEN_GUEST_DEBUG=1. The lines the test looks for are marked LINE:tag. Input "scores" adds 40
//! and 38 + its length (84) in a function of its own (a breakpoint by name, its arguments);
//! "panic" panics two calls deep (the core's backtrace names them, with lines). The numbers come
//! from the input so the optimiser cannot fold them away.
#![no_std]
#![no_main]
use aspen_jobs_guest::*;

#[inline(never)]
fn add_scores(a: u64, b: u64) -> u64 {
    let total = a + b; // LINE:add_scores (a breakpoint stops here)
    total
}

#[inline(never)]
fn give_up(depth: u32) -> ! {
    panic!("deliberate panic at depth {}", depth); // LINE:give_up (the core's first Rust frame)
}

fn process(input: &[u8]) -> Vec<u8> {
    hl_println!("rust-debuggee: {} bytes", input.len());
    // starts_with, not a match on the whole input: the length stays unknown to the optimiser in
    // each branch, so the calls are not folded to constants
    if input.starts_with(b"scores") {
        format!("{}", add_scores(40, input.len() as u64 + 38)).into_bytes()
    } else if input.starts_with(b"panic") {
        give_up(input.len() as u32 - 2) // LINE:process_panic (its caller)
    } else {
        b"?".to_vec()
    }
}
define_job_handler!(process);
