//! The index entry reader on arbitrary bytes: never panics; an accepted entry re-encodes to
//! the same 56 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logstore::format::{IndexEntry, ENTRY_LEN};

fuzz_target!(|data: &[u8]| {
    if let Some(e) = IndexEntry::from_bytes(data) {
        assert_eq!(&e.to_bytes()[..], &data[..ENTRY_LEN]);
    }
});
