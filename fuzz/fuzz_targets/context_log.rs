//! The plugin stderr path: bytes -> lines (`LineSplitter`, 64 KiB pieces) -> `0x1E` records
//! (`parse_line`). No panic; every input byte is accounted for in some piece (or was a line
//! ending); no piece exceeds the cap; a record's level is a known one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logstore::capture::{parse_line, LineSplitter, StderrLine};

const CAP: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut splitter = LineSplitter::new(CAP);
    let mut kept = 0usize;
    let mut check = |bytes: &[u8]| {
        assert!(bytes.len() <= CAP);
        kept += bytes.len();
        if let StderrLine::Record(r) = parse_line(bytes) {
            assert!(r.message.len() <= bytes.len());
        }
    };
    for chunk in data.chunks(7) {
        splitter.push(chunk, |p| check(p.bytes));
    }
    splitter.finish(|p| check(p.bytes));
    let endings = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    assert!(kept <= data.len() && kept + endings >= data.len());
});
