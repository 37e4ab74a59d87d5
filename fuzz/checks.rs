//! The checks of the fuzz targets, in one place: each `fuzz_targets/*.rs` calls one of these on
//! the fuzzer's input, and `tests/fuzz_decoders.rs` calls the same on proptest inputs (stable
//! toolchains, CI). Each must never panic on any input; what it accepts must round-trip.

use logstore::format::{decode, encode, IndexEntry, ENTRY_LEN};
use logstore::LogEntry;
use logstore::StoreSearch;

/// The record decoder target (`fuzz/fuzz_targets/record_decode.rs`).
pub fn record_decode(data: &[u8]) {
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
    record_decode_v2(data);
}

/// The version-2 frame decoder (`record_decode` target too): the first 12 bytes choose the
/// salt and the frame's offset, the rest is the frame. Never panics; an accepted frame
/// re-encodes, with its number, salt and offset, to a frame that decodes to the same.
pub fn record_decode_v2(data: &[u8]) {
    use logstore::format::{decode_as, encode_as, finish_frames, set_seq, FrameKind};
    let (Some(salt), Some(offset)) = (data.get(..4), data.get(4..12)) else {
        return;
    };
    let kind = FrameKind::V2 {
        salt: u32::from_le_bytes(salt.try_into().expect("4 bytes")),
    };
    let offset = u64::from_le_bytes(offset.try_into().expect("8 bytes"));
    let frame = &data[12..];
    if let Ok((p, len)) = decode_as(frame, kind, offset) {
        assert!(len <= frame.len());
        if let Ok(entry) = p.to_entry() {
            let mut again = Vec::new();
            if encode_as(&entry, kind, &mut again).is_ok() {
                set_seq(&mut again, p.seq);
                finish_frames(&mut again, kind, offset);
                let (p2, _) = decode_as(&again, kind, offset).expect("a frame we encoded decodes");
                assert_eq!(p2.seq, p.seq);
                assert_eq!(p2.to_entry().expect("valid entry"), entry);
                // Anywhere else, the same bytes are not a frame (but with odds of 2^-32).
                assert!(decode_as(&again, kind, offset ^ 1).is_err());
            }
        }
    }
}

/// The sequence reservation file parser (`seq_file` target): never panics; what it accepts
/// is exactly 28 bytes.
pub fn seq_file(data: &[u8]) {
    if let logstore::format::SeqFile::Reserved(_) = logstore::format::parse_seq_file(data) {
        assert_eq!(data.len(), 28);
    }
}

/// The index entry target (`fuzz/fuzz_targets/index_entry.rs`).
pub fn index_entry(data: &[u8]) {
    if let Some(e) = IndexEntry::from_bytes(data) {
        assert_eq!(&e.to_bytes()[..], &data[..ENTRY_LEN]);
    }
}

/// The NDJSON target (`fuzz/fuzz_targets/ndjson_entry.rs`).
pub fn ndjson_entry(data: &[u8]) {
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
}

/// The plugin stderr path (`context_log`): bytes in chunks -> lines (pieces of at most a cap)
/// -> `0x1E` records. Every input byte is in some piece or was a line ending.
pub fn context_log(data: &[u8], chunk: usize) {
    use logstore::capture::{parse_line, LineSplitter, StderrLine};
    const CAP: usize = 256;
    let mut splitter = LineSplitter::new(CAP);
    let mut kept = 0usize;
    let mut check = |bytes: &[u8]| {
        assert!(bytes.len() <= CAP);
        kept += bytes.len();
        if let StderrLine::Record(r) = parse_line(bytes) {
            assert!(r.message.len() <= bytes.len());
        }
    };
    for c in data.chunks(chunk.max(1)) {
        splitter.push(c, |p| check(p.bytes));
    }
    splitter.finish(|p| check(p.bytes));
    let endings = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    assert!(kept <= data.len() && kept + endings >= data.len());
}

/// The resync target (`fuzz/fuzz_targets/resync.rs`): [`next_frame`] finds the same offset as
/// the naive scan, a full decode (CRC over the whole frame) at every offset, whatever the cheap
/// checks it makes first.
pub fn resync(data: &[u8], from: usize) {
    use logstore::format::next_frame;
    let from = from.min(data.len());
    let naive = (from..data.len()).find(|&q| decode(&data[q..]).is_ok());
    assert_eq!(next_frame(data, from), naive);
}

/// The sealed-file reader on `data`, stored both as a day's sealed file and as a part of the
/// next day (`sealed_file` target): opening the store, listing, stats, verify, a query of
/// every listed execution and a search never panic, and whatever is read is a valid entry.
pub fn sealed_file(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "logstore-fuzz-sealed-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let segments = dir.join("segments");
    std::fs::create_dir_all(&segments).expect("temp dir");
    std::fs::write(segments.join("2026-01-01.sealed"), data).expect("write");
    std::fs::write(segments.join("2026-01-02.000001-000001.part"), data).expect("write");
    if let Ok(store) = logstore::LogStore::open_read_only(&dir) {
        let _ = store.stats();
        let _ = store.verify();
        // The newest-first pages (the catalog and its fence): every page holds at most its
        // limit, and paging ends without giving an execution twice.
        let mut after = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let filter = logstore::ListFilter {
                limit: Some(2),
                after: after.take(),
                ..logstore::ListFilter::default()
            };
            let Ok(page) = store.executions(&filter) else {
                break;
            };
            assert!(page.executions.len() <= 2);
            for s in &page.executions {
                assert!(seen.insert(s.execution_id.clone()), "listed twice");
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if let Ok(list) = store.list() {
            for s in list {
                if let Ok(entries) = store.query(&s.execution_id, &logstore::Filter::default()) {
                    for e in entries {
                        assert!(e.validate().is_ok());
                    }
                }
            }
        }
        let search = logstore::Search {
            terms: vec!["a".to_owned()],
            ..logstore::Search::default()
        };
        let _ = store.search_count(&search);
    }
    let _ = std::fs::remove_dir_all(&dir);
    recompressed_reads_the_same(data);
}

/// If `data` is a sealed file a day-end merge takes, its blocks compressed again
/// (`format::recompress_sealed`) read back exactly as it did: the same executions, and each
/// one's entries (or its error) the same. Whether it was taken.
pub fn recompressed_reads_the_same(data: &[u8]) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "logstore-fuzz-recompress-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let (one, two) = (dir.join("one/segments"), dir.join("two/segments"));
    std::fs::create_dir_all(&one).expect("temp dir");
    std::fs::create_dir_all(&two).expect("temp dir");
    let input = one.join("2026-01-01.sealed");
    std::fs::write(&input, data).expect("write");
    let output = two.join("2026-01-01.sealed");
    let taken = logstore::format::recompress_sealed(&input, &output, 6).is_ok();
    if taken {
        let (Ok(a), Ok(b)) = (
            logstore::LogStore::open_read_only(dir.join("one")),
            logstore::LogStore::open_read_only(dir.join("two")),
        ) else {
            panic!("a file that merged does not open, or its merge does not");
        };
        let list = a.list().ok();
        assert_eq!(list, b.list().ok(), "the executions listed");
        for s in list.unwrap_or_default() {
            let f = logstore::Filter::default();
            let (x, y) = (a.query(&s.execution_id, &f), b.query(&s.execution_id, &f));
            assert_eq!(x.ok(), y.ok(), "{}", s.execution_id);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    taken
}

/// The retention hold reader on `data` (`hold_file` target): never panics; a hold it accepts
/// keeps its name.
pub fn hold_file(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "logstore-fuzz-hold-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("holds")).expect("temp dir");
    std::fs::write(dir.join("holds/h"), data).expect("write");
    if let Ok(holds) = logstore::holds(&dir) {
        assert_eq!(holds.len(), 1);
        assert_eq!(holds[0].name, "h");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The heads checkpoint parser on `data` (`heads_checkpoint` target): never panics; what it
/// accepts covers every head it names and lists hashes strictly ascending.
pub fn heads_checkpoint(data: &[u8]) {
    if let Some(cp) = logstore::format::HeadsCheckpoint::parse(data) {
        let heads = cp.heads();
        assert!(heads.iter().all(|&(_, n)| n >= 1 && n <= cp.covered));
        assert!(heads.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(data.len(), 32 + 12 * heads.len());
    }
}
