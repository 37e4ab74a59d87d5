//! The `fuzz/` targets as proptest "fuzz" tests, for stable toolchains and CI: the record
//! decoder, the index entry reader and NDJSON entry parsing on arbitrary bytes, plus
//! structure-aware inputs (valid frames mutated and re-checksummed, so the payload decoder is
//! reached, which random bytes almost never do). Never a panic; what is accepted round-trips.
//!
//! `PROPTEST_CASES=N` runs more cases. Inputs that ever found a bug belong in `regressions`.

use logstore::format::{encode, ENTRY_LEN, FRAME_HEADER_LEN};
use logstore::{ExecutionId, Level, LogEntry};
use proptest::prelude::*;

#[path = "../fuzz/checks.rs"]
mod checks;

use checks::{context_log, index_entry, ndjson_entry, record_decode};

fn valid_frame(message: &str, meta: bool) -> Vec<u8> {
    let mut e = LogEntry::new(
        ExecutionId::new("exec-1").unwrap(),
        1_795_608_000_000,
        Level::Warn,
        "scheduler",
        message,
    );
    if meta {
        let m = serde_json::json!({"state": "FAILED", "n": [1, 2.5, null]});
        e = e.with_metadata(m.as_object().cloned().unwrap());
    }
    let mut out = Vec::new();
    encode(&e, &mut out).unwrap();
    out
}

/// Rewrites the frame header so the (mutated) payload passes the length and CRC checks.
fn reframe(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    let mut out = len.to_vec();
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn context_log_path_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..1200), chunk in 1usize..64) {
        context_log(&data, chunk);
    }

    #[test]
    fn context_log_path_on_record_shaped_lines(
        level in "[a-zA-Z]{0,6}", msg in ".{0,300}", extra in "[a-z_]{0,10}", chunk in 1usize..64,
    ) {
        let line = format!("\u{1e}{{\"level\":\"{level}\",\"message\":{},\"{extra}\":1}}\n", serde_json::to_string(&msg).unwrap());
        context_log(line.as_bytes(), chunk);
    }

    #[test]
    fn record_decoder_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        record_decode(&data);
    }

    #[test]
    fn record_decoder_on_mutated_payloads(
        message in "\\PC{0,30}",
        meta in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let frame = valid_frame(&message, meta);
        let mut payload = frame[FRAME_HEADER_LEN..].to_vec();
        for (at, byte) in edits {
            let i = at.index(payload.len());
            payload[i] = byte;
        }
        payload.truncate(cut.index(payload.len() + 1));
        payload.extend_from_slice(&extra);
        record_decode(&reframe(&payload));
    }

    #[test]
    fn index_entry_reader_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..120)) {
        index_entry(&data);
    }

    #[test]
    fn index_entry_reader_on_rechecksummed_entries(mut raw in proptest::collection::vec(any::<u8>(), ENTRY_LEN..=ENTRY_LEN)) {
        // A valid CRC over random fields reaches the field checks.
        let crc = crc32fast::hash(&raw[..52]);
        raw[52..56].copy_from_slice(&crc.to_le_bytes());
        index_entry(&raw);
    }

    #[test]
    fn ndjson_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        ndjson_entry(&data);
    }

    #[test]
    fn ndjson_on_json_shaped_lines(
        exec in "[A-Za-z0-9._:-]{0,10}|\\PC{0,5}",
        ts in any::<i64>(),
        level in "DEBUG|INFO|WARN|ERROR|info|\\PC{0,4}",
        source in "\\PC{0,12}",
        message in "(\\PC|\n){0,20}",
        task in proptest::option::of("[a-z0-9]{0,4}|\\PC{0,3}"),
        meta in proptest::option::of("\\{\\}|\\{\"a\":[0-9]{1,3}\\}|\\[\\]|null|1e999|\"s\""),
    ) {
        let mut line = format!(
            "{{\"execution_id\":{},\"timestamp\":{ts},\"level\":{},\"source\":{},\"message\":{}",
            serde_json::Value::String(exec),
            serde_json::Value::String(level),
            serde_json::Value::String(source),
            serde_json::Value::String(message),
        );
        if let Some(t) = task {
            line.push_str(&format!(",\"task_id\":{}", serde_json::Value::String(t)));
        }
        if let Some(m) = meta {
            line.push_str(&format!(",\"metadata\":{m}"));
        }
        line.push('}');
        ndjson_entry(line.as_bytes());
    }
}

/// Inputs that found bugs (none so far) and edge cases worth pinning.
mod regressions {
    use super::*;

    #[test]
    fn empty_and_tiny_inputs() {
        for data in [
            &[][..],
            &[0],
            &[0; 8],
            &[0xFF; 8],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            record_decode(data);
            index_entry(data);
            ndjson_entry(data);
        }
    }

    #[test]
    fn zero_length_payload_with_matching_crc() {
        record_decode(&reframe(&[]));
    }

    #[test]
    fn max_length_field() {
        let mut data = (1u32 << 20).to_le_bytes().to_vec();
        data.extend_from_slice(&[0; 12]);
        record_decode(&data);
        let mut data = ((1u32 << 20) + 1).to_le_bytes().to_vec();
        data.extend_from_slice(&[0; 12]);
        record_decode(&data);
    }
}
