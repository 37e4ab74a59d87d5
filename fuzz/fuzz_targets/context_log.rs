//! The plugin stderr path: bytes -> lines (`LineSplitter`, 64 KiB pieces) -> `0x1E` records
//! (`parse_line`). No panic; every input byte is accounted for in some piece (or was a line
//! ending); no piece exceeds the cap; a record's level is a known one.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::context_log(data, 7));
