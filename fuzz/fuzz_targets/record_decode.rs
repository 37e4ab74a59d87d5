//! The record decoder on arbitrary bytes: never panics; whatever it accepts as an entry
//! encodes again into a frame that decodes to the same entry.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::record_decode(data));
