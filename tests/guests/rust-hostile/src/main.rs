//! tests/guests/rust-hostile — a Rust guest that misbehaves on request, for
//! tests/guests/test_rust_guests.c. The input names what to do:
//!   panic     panic!("deliberate panic: 42") (the test checks the reported file:line)
//!   unwrap    None::<u8>.unwrap() (a panic raised inside core)
//!   oom       one allocation larger than the whole heap
//!   grow      push to a Vec until the heap is exhausted (the realloc path)
//!   heap      allocate and free a mix of sizes, then report the allocator's state and the address
//!             a new allocation gets: identical on every warm run if the snapshot resets the heap
//!   anything else: echoed back
#![no_std]
#![no_main]

use aspen_jobs_guest::*;

fn heap_report() -> Vec<u8> {
    let before = heap_stats();
    let mut keep: Vec<Vec<u8>> = Vec::new();
    for i in 0..200usize {
        let v = vec![i as u8; 1 + (i * 37) % 9000];
        if i % 3 == 0 {
            keep.push(v); // the rest are freed at once: the free lists get used
        }
    }
    let probe = Vec::<u8>::with_capacity(100);
    let after = heap_stats();
    format!("before={:?} after={:?} kept={} probe={:p}", before, after, keep.len(), probe.as_ptr()).into_bytes()
}

fn hostile(input: &[u8]) -> Vec<u8> {
    match input {
        b"panic" => {
            let n = opaque(42);
            panic!("deliberate panic: {}", n) // PANIC_HERE (the test looks for this line)
        }
        b"unwrap" => {
            let none: Option<usize> = if opaque(0) == 0 { None } else { Some(1) };
            alloc_vec(none.unwrap())
        }
        b"oom" => {
            let n = opaque(64usize << 20);
            alloc_vec(n)
        }
        b"grow" => {
            let mut v: Vec<u64> = Vec::new();
            loop {
                v.push(v.len() as u64);
            }
        }
        b"heap" => heap_report(),
        _ => input.to_vec(),
    }
}

/// A value the optimiser cannot see through (core::hint::black_box is newer than Rust 1.63).
fn opaque(v: usize) -> usize {
    let cell = v;
    unsafe { core::ptr::read_volatile(&cell) }
}

fn alloc_vec(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    v.push(1);
    v
}

define_job_handler!(hostile);
