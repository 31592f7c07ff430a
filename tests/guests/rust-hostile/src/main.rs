//! tests/guests/rust-hostile — a Rust guest that misbehaves on request, for
//! tests/guests/test_rust_guests.c. The input names what to do:
//!   panic     panic!("deliberate panic: 42") (the test checks the reported file:line)
//!   unwrap    None::<u8>.unwrap() (a panic raised inside core)
//!   oom       one allocation larger than the whole heap
//!   grow      push to a Vec until the heap is exhausted (the realloc path)
//!   heap      allocate and free a mix of sizes, then report the allocator's state and the address
//!             a new allocation gets: identical on every warm run if the snapshot resets the heap
//!   json      json! with every kind of member, written, parsed back and compared, and accessors
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

/// json! with every kind of member, written, parsed back and compared, plus the Index accessors.
fn json_report() -> Vec<u8> {
    let x = opaque(5);
    let name = String::from("k2");
    let v = json!({
        "a": [1, null, "s", true, {"n": -2}, [], {}],
        "b": x + 1,
        (name.as_str()): 0.5,
        "c": null,
        "d": Some(3u8),
        "e": Option::<u8>::None,
        "f": "quote\" \\ \n \u{1} é",
        "g": 0.1 + 0.2,
        "h": 1e21,
        "i": 1.5e-7,
        "j": -0.0,
        "k": u64::MAX,
        "l": i64::MIN
    });
    let text = to_vec(&v);
    let back = from_slice(&text).unwrap();
    assert!(back == v, "parsed back differently");
    let mut out = text;
    let tail = format!(
        " | {} {} {} {} {}",
        v["a"][2].as_str().unwrap_or("?"),
        v["missing"]["deeper"].is_null(),
        v["a"][4]["n"].as_i64().unwrap_or(0),
        v.get("b").and_then(Value::as_u64).unwrap_or(0),
        v["a"].as_array().map(|a| a.len()).unwrap_or(0)
    );
    out.extend_from_slice(tail.as_bytes());
    out
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
        b"json" => json_report(),
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
