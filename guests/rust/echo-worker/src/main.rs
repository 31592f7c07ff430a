//! guests/rust/echo-worker — the seed's minimal guest in Rust: the output is "Echo: " followed by
//! the input bytes unchanged, and one log line goes to the host through hl_println!. Same output and
//! log line as the C port (guests/echo-worker).
#![no_std]
#![no_main]

use aspen_jobs_guest::*;

fn echo(input: &[u8]) -> Vec<u8> {
    hl_println!("echo-worker: received {} bytes", input.len());
    let mut output = Vec::with_capacity(6 + input.len());
    output.extend_from_slice(b"Echo: ");
    output.extend_from_slice(input);
    output
}

// Define the entry point
define_job_handler!(echo);
