//! See `checks::heads_checkpoint`: never panics on any bytes.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::heads_checkpoint(data));
