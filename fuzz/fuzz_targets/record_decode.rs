//! The record decoder on arbitrary bytes: never panics; whatever it accepts as an entry
//! encodes again into a frame that decodes to the same entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logstore::format::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok((payload, len)) = decode(data) {
        assert!(len <= data.len());
        if let Ok(entry) = payload.to_entry() {
            let mut again = Vec::new();
            if encode(&entry, &mut again).is_ok() {
                let (p2, _) = decode(&again).expect("a frame we encoded decodes");
                assert_eq!(p2.to_entry().expect("valid entry"), entry);
            }
        }
    }
});
