//! Recovery of a segment that was not sealed: find the last whole record, cut a torn tail,
//! and rebuild the live index for whatever the index does not cover.
//!
//! The argument: records are appended, then their index entries; only the segment is fsynced.
//! So after a crash the index is a prefix of the truth that may be short (entries not written
//! yet) or, after a power cut, may point past what survived. Recovery keeps the index prefix
//! whose runs still check out, scans the segment from the end of that prefix, and re-indexes
//! every whole record it finds. A frame that fails its CRC with a valid record after it is
//! mid-file damage: skipped and reported, the records around it kept. A frame that fails with
//! nothing valid after it is a torn tail: cut off.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::journal::index::{self, exec_hash, IndexEntry, FLAG_TERMINAL};
use crate::journal::record::{self, FrameKind};
use crate::journal::segment::{read_frame_kind, scan, ScanEvent, SEGMENT_HEADER_LEN};
use crate::view::{Access, FileView};
use crate::Level;

/// A damaged region found while scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub file: PathBuf,
    /// Where the damage starts.
    pub offset: u64,
    /// Bytes lost.
    pub len: u64,
    /// What the reader found there.
    pub reason: String,
}

/// What recovery found in one segment.
///
/// The kept prefix of the live index is read in chunks and never held (a 10 M-run day would
/// be 560 MB): only each execution's newest entry number is, in `heads`.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Length of the segment up to its last whole record (what the writer continues from).
    pub segment_len: u64,
    /// How many entries of the on-disk live index are kept as they are.
    pub kept_index_entries: usize,
    /// The runs rebuilt from the segment after the kept prefix (numbered after it).
    pub rebuilt: Vec<IndexEntry>,
    /// The newest entry number of each execution hash, over the kept prefix and the rebuilt
    /// runs (what the next run of that execution links back to).
    pub heads: HashMap<u64, u32>,
    /// Mid-file damage skipped.
    pub damage: Vec<Damage>,
    /// A torn tail cut: (offset, bytes).
    pub cut_tail: Option<(u64, u64)>,
}

/// Examines the segment at `segment` and its live index at `live_index` (which may be
/// missing). Changes nothing on disk; the caller truncates and appends as the result says.
pub fn recover(segment: &Path, live_index: &Path) -> Result<Recovered> {
    let view =
        FileView::open(segment, Access::Pread).map_err(StoreError::io("open segment", segment))?;
    let len = view
        .len()
        .map_err(StoreError::io("stat segment", segment))?;
    if len < SEGMENT_HEADER_LEN {
        // Created but the header never reached disk: an empty segment.
        return Ok(Recovered::default());
    }
    let kind = read_frame_kind(&view)?;

    let (kept, mut heads, from) = match FileView::open(live_index, Access::Pread) {
        Ok(idx) => kept_prefix(&idx, &view, kind, len)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (0, HashMap::new(), SEGMENT_HEADER_LEN)
        }
        Err(e) => return Err(StoreError::io("open index", live_index)(e)),
    };
    let mut out = Recovered {
        segment_len: len,
        ..Recovered::default()
    };
    let mut rebuilt = Vec::new();
    let mut run: Option<IndexEntry> = None;
    let mut push_run = |run: &mut Option<IndexEntry>, rebuilt: &mut Vec<IndexEntry>| {
        if let Some(mut r) = run.take() {
            r.prev = heads.get(&r.hash).copied().unwrap_or(0);
            rebuilt.push(r);
            heads.insert(r.hash, entry_number(kept + rebuilt.len() - 1));
        }
    };
    scan(&view, kind, from, len, |ev| {
        match ev {
            ScanEvent::Record {
                offset,
                len,
                payload,
            } => {
                let hash = exec_hash(payload.execution_id);
                let frame_len = u32::try_from(len).unwrap_or(u32::MAX);
                let contiguous = run
                    .as_ref()
                    .is_some_and(|r| r.hash == hash && r.end() == offset);
                if !contiguous {
                    push_run(&mut run, &mut rebuilt);
                    run = Some(IndexEntry {
                        hash,
                        offset,
                        min_ts: payload.timestamp,
                        max_ts: payload.timestamp,
                        ..IndexEntry::default()
                    });
                }
                if let Some(r) = run.as_mut() {
                    r.length = r.length.saturating_add(frame_len);
                    r.count += 1;
                    r.min_ts = r.min_ts.min(payload.timestamp);
                    r.max_ts = r.max_ts.max(payload.timestamp);
                    if payload.level == Level::Error.to_byte() {
                        r.errors += 1;
                    }
                    if is_terminal(&payload) {
                        r.flags |= FLAG_TERMINAL;
                    }
                }
            }
            ScanEvent::Damage {
                offset,
                len,
                reason,
            } => {
                push_run(&mut run, &mut rebuilt);
                out.damage.push(Damage {
                    file: segment.to_owned(),
                    offset,
                    len,
                    reason: reason.to_string(),
                });
            }
            ScanEvent::Tail { offset, .. } => {
                push_run(&mut run, &mut rebuilt);
                out.cut_tail = Some((offset, len - offset));
                out.segment_len = offset;
            }
        }
        ControlFlow::Continue(())
    })
    .map_err(StoreError::io("scan segment", segment))?;
    push_run(&mut run, &mut rebuilt);
    out.kept_index_entries = kept;
    out.rebuilt = rebuilt;
    out.heads = heads;
    Ok(out)
}

/// The live index's prefix that still checks out: (entries kept, newest entry number per
/// execution hash over them, segment offset where they end). Read in chunks, never held.
fn kept_prefix(
    idx: &FileView,
    segment: &FileView,
    kind: FrameKind,
    len: u64,
) -> Result<(usize, HashMap<u64, u32>, u64)> {
    let mut heads = HashMap::new();
    let valid = match index::scan_live(idx, 0, |n, e| {
        heads.insert(e.hash, n);
    }) {
        Ok(n) => n,
        // A foreign or newer index file: rebuild it from the segment rather than refuse.
        Err(StoreError::Corrupt { .. }) => return Ok((0, HashMap::new(), SEGMENT_HEADER_LEN)),
        Err(e) => return Err(e),
    };
    let mut kept = u32::try_from(valid).unwrap_or(u32::MAX);
    // After a power cut the newest index entries may point at records that did not survive.
    while kept > 0 {
        let Some(last) = index::read_live_entry(idx, kept)? else {
            break;
        };
        if last.end() <= len && run_is_whole(segment, kind, &last)? {
            return Ok((kept as usize, heads, last.end()));
        }
        // Dropped: its execution's newest entry is the one it linked back to.
        if last.prev == 0 {
            heads.remove(&last.hash);
        } else {
            heads.insert(last.hash, last.prev);
        }
        kept -= 1;
    }
    Ok((0, HashMap::new(), SEGMENT_HEADER_LEN))
}

/// Whether the run's bytes are exactly `count` valid records of its execution hash.
pub fn run_is_whole(view: &FileView, kind: FrameKind, e: &IndexEntry) -> Result<bool> {
    let Ok(len) = usize::try_from(e.length) else {
        return Ok(false);
    };
    let bytes = match view.read(e.offset, len) {
        Ok(b) => b,
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(err) => return Err(StoreError::io("read segment", view.path())(err)),
    };
    let (mut pos, mut count) = (0usize, 0u32);
    while pos < bytes.len() {
        match record::decode_as(&bytes[pos..], kind, e.offset + pos as u64) {
            Ok((p, n)) if exec_hash(p.execution_id) == e.hash => {
                pos += n;
                count += 1;
            }
            _ => return Ok(false),
        }
    }
    Ok(count == e.count)
}

/// Whether a stored payload is an execution's terminal entry (see
/// [`LogEntry::terminal_state`](crate::LogEntry::terminal_state)).
pub fn is_terminal(p: &record::PayloadRef<'_>) -> bool {
    if p.source != crate::SCHEDULER_SOURCE {
        return false;
    }
    let Some(meta) = p.metadata else { return false };
    // Cheap filter before parsing: most scheduler entries are not terminal.
    if !meta.contains("\"state\"") {
        return false;
    }
    crate::metadata_from_json(meta).is_ok_and(|m| {
        m.get("state")
            .and_then(|s| s.as_str())
            .is_some_and(|s| crate::TERMINAL_STATES.contains(&s))
    })
}

/// The 1-based number of the entry at position `i`.
pub fn entry_number(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}
