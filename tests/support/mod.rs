//! Helpers for the reliability tests (recovery, torture, property, disk-full, concurrency):
//! finding a store's files, walking the frames of a segment, damaging files, and the
//! deterministic entry generator the crash checker recomputes byte-exact.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logstore::format::{decode, SEGMENT_HEADER_LEN};
use logstore::{Config, ExecutionId, Filter, Level, LogEntry, LogStore, ManualClock, StoreError};

/// 2026-11-25T12:00:00Z
pub const NOON: i64 = 1_795_608_000_000;

/// The files of the store's segments directory with this extension, sorted by name.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// The newest segment (`.log`) of the store in `dir`.
pub fn last_segment(dir: &Path) -> PathBuf {
    files_with_ext(dir, "log")
        .pop()
        .expect("the store has a segment")
}

/// The live index beside a segment.
pub fn index_of(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

/// `(offset, frame length, execution id, message)` of every whole frame from the header on,
/// stopping at the first frame that does not decode.
pub fn frames(segment: &Path) -> Vec<(u64, usize, String, String)> {
    let bytes = std::fs::read(segment).unwrap();
    let mut pos = usize::try_from(SEGMENT_HEADER_LEN).unwrap();
    let mut out = Vec::new();
    while pos < bytes.len() {
        let Ok((p, n)) = decode(&bytes[pos..]) else {
            break;
        };
        out.push((
            pos as u64,
            n,
            p.execution_id.to_owned(),
            p.message.to_owned(),
        ));
        pos += n;
    }
    out
}

/// Cuts `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Flips bit `bit` of the byte at `offset`.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[usize::try_from(offset).unwrap()] ^= 1 << (bit % 8);
    std::fs::write(path, bytes).unwrap();
}

/// Appends `extra` to the end of `path`.
pub fn append_bytes(path: &Path, extra: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(extra);
    std::fs::write(path, bytes).unwrap();
}

/// Copies the store in `from` (its `segments/` directory; not the lock) into `to`.
pub fn copy_store(from: &Path, to: &Path) {
    let seg = to.join("segments");
    std::fs::create_dir_all(&seg).unwrap();
    for e in std::fs::read_dir(from.join("segments")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), seg.join(e.file_name())).unwrap();
    }
}

/// A config on a manual clock at `ms`.
pub fn clock_config(ms: i64) -> (ManualClock, Config) {
    let clock = ManualClock::new(ms);
    let config = Config {
        clock: Arc::new(clock.clone()),
        ..Config::default()
    };
    (clock, config)
}

/// Every entry stored for `exec`, or none if the store knows nothing of it.
pub fn all_of(store: &LogStore, exec: &str) -> Vec<LogEntry> {
    match store.query(&ExecutionId::new(exec).unwrap(), &Filter::default()) {
        Ok(v) => v,
        Err(StoreError::UnknownExecution(_)) => Vec::new(),
        Err(e) => panic!("query {exec}: {e}"),
    }
}

/// The terminal entry of an execution.
pub fn terminal_entry(exec: &str, ts: i64) -> LogEntry {
    let meta = serde_json::json!({"state": "SUCCESS"})
        .as_object()
        .cloned()
        .unwrap();
    LogEntry::new(
        ExecutionId::new(exec).unwrap(),
        ts,
        Level::Info,
        "scheduler",
        "execution SUCCESS",
    )
    .with_metadata(meta)
}

/// Entry `seq` of execution `exec` in the crash tests: every field derives from `(exec, seq)`
/// so a checker recomputes it byte-exact; `seq == total` is the terminal entry.
pub fn generated_entry(exec: &str, seq: u64, total: u64) -> LogEntry {
    let ts = NOON + i64::try_from(seq).unwrap();
    if seq == total {
        return terminal_entry(exec, ts);
    }
    let h = logstore::format::exec_hash(exec) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let level = Level::ALL[usize::try_from(h % 4).unwrap()];
    // Varying lengths (some multi-line, some unicode) so frames cross batch and page edges.
    let pad = "é".repeat(usize::try_from(h % 23).unwrap());
    let mut e = LogEntry::new(
        ExecutionId::new(exec).unwrap(),
        ts,
        level,
        "worker",
        format!("{exec} line {seq}\n{pad}"),
    );
    if h.is_multiple_of(3) {
        e = e.with_task(logstore::TaskId::new(format!("t{}", seq % 5)).unwrap());
    }
    if h.is_multiple_of(5) {
        let meta = serde_json::json!({"seq": seq, "exec": exec})
            .as_object()
            .cloned()
            .unwrap();
        e = e.with_metadata(meta);
    }
    e
}

/// Seq number parsed back out of a generated entry's message (`None` for the terminal entry).
pub fn generated_seq(e: &LogEntry) -> Option<u64> {
    let first = e.message.lines().next()?;
    first.rsplit(' ').next()?.parse().ok()
}
