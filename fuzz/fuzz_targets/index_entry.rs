//! The index entry reader on arbitrary bytes: never panics; an accepted entry re-encodes to
//! the same 56 bytes.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::index_entry(data));
