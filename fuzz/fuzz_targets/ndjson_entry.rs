//! NDJSON import of one line: `serde_json` into a `LogEntry`, then `validate()`. Never panics;
//! a valid entry encodes into a frame that decodes back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logstore::format::{decode, encode};
use logstore::LogEntry;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = serde_json::from_slice::<LogEntry>(data) else {
        return;
    };
    if entry.validate().is_err() {
        return;
    }
    let mut frame = Vec::new();
    if encode(&entry, &mut frame).is_ok() {
        let (payload, len) = decode(&frame).expect("a frame we encoded decodes");
        assert_eq!(len, frame.len());
        assert_eq!(payload.to_entry().expect("valid entry"), entry);
    }
});
