//! NDJSON import of one line: `serde_json` into a `LogEntry`, then `validate()`. Never panics;
//! a valid entry encodes into a frame that decodes back to it.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::ndjson_entry(data));
