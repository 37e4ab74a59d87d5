//! Resynchronisation past damage on arbitrary bytes: `next_frame` (cheap checks and prefix
//! CRCs) finds exactly what a full decode at every offset finds. The first byte picks where
//! the search starts.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let from = data.first().map_or(0, |&b| usize::from(b));
    checks::resync(data, from)
});
