//! See `checks::seq_file`: never panics on any bytes.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::seq_file(data));
