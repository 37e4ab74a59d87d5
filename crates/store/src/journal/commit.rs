//! Group commit: the buffer of encoded entries, its triggers, and how a batch becomes runs.
//!
//! Entries wait in a [`Batch`] until it holds `max_batch_entries` (default 100) or its oldest
//! entry is `max_batch_delay` old (default 1 s). A flush writes each execution's entries of the
//! batch contiguously (in order of the execution's first entry in the batch, each execution's
//! entries in append order), so that one index entry describes each execution's run.
//!
//! Durability is a separate step: [`Durability`] names what a caller waits for. Many callers
//! asking for [`Durability::Synced`] at once share fsyncs: one of them (the leader) fsyncs
//! everything written so far while the others wait, so N finishing executions cost far fewer
//! than N fsyncs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use crate::journal::index::{exec_hash, IndexEntry, FLAG_TERMINAL};
use crate::{Level, LogEntry};

/// How far an entry has travelled, and so what it survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// In the store's buffer: lost if the process dies.
    Buffered,
    /// Written to the segment (in the OS page cache): survives a crash of the process, not a
    /// power cut or kernel crash.
    Written,
    /// Written and fsynced: survives a power cut.
    Synced,
}

/// Group commit settings.
#[derive(Debug, Clone, Copy)]
pub struct CommitPolicy {
    /// Flush when the buffer holds this many entries (spec default: 100).
    pub max_batch_entries: usize,
    /// Flush when the oldest buffered entry is this old (spec default: 1 s).
    pub max_batch_delay: Duration,
    /// While writes fail, the buffer grows up to this many entries; past it `append` refuses.
    pub max_pending_entries: usize,
}

impl Default for CommitPolicy {
    fn default() -> CommitPolicy {
        CommitPolicy {
            max_batch_entries: 100,
            max_batch_delay: Duration::from_secs(1),
            max_pending_entries: 100_000,
        }
    }
}

/// Hashes a key that is already an [`exec_hash`]: rehashing it with SipHash cost about 140
/// instructions per appended entry in `Batch::layout` alone. One multiply still mixes it:
/// FNV-1a's low bits, which pick a hash table's bucket, barely vary between ids that differ
/// in a few digits (`batch-0000001`, `batch-0000002`, ...), and a million of them in a table
/// keyed by the hash as it is made probe chains long enough to take minutes.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // The product's well-mixed high half goes to the low bits.
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32);
    }
}

/// A map keyed by [`exec_hash`] values.
pub type ByExecHash<V> = HashMap<u64, V, BuildHasherDefault<PrehashedHasher>>;

/// One buffered entry: where its frame is in the batch buffer and what the index needs.
#[derive(Debug, Clone, Copy)]
struct Item {
    hash: u64,
    start: usize,
    end: usize,
    timestamp: i64,
    error: bool,
    terminal: bool,
}

/// The buffer of encoded entries waiting for a flush.
#[derive(Debug, Default)]
pub struct Batch {
    frames: Vec<u8>,
    items: Vec<Item>,
    /// Clock reading (Unix ms) when the oldest buffered entry arrived.
    oldest_ms: Option<i64>,
    // Scratch reused by every flush, so the hot path allocates nothing in steady state.
    group_of: ByExecHash<usize>,
    order: Vec<(usize, usize)>,
}

/// A batch laid out for disk: the bytes to append and one index entry per run, with offsets
/// relative to the start of `bytes`.
#[derive(Debug, Default)]
pub struct Layout {
    /// Frames, grouped by execution.
    pub bytes: Vec<u8>,
    /// One entry per run; `offset` is relative, `prev` unset.
    pub runs: Vec<IndexEntry>,
}

impl Batch {
    /// Buffers one encoded frame (`frame` as `record::encode` wrote it) of `entry`.
    pub fn push(&mut self, entry: &LogEntry, frame: &[u8], now_ms: i64) {
        let start = self.frames.len();
        self.frames.extend_from_slice(frame);
        self.items.push(Item {
            hash: exec_hash(entry.execution_id.as_str()),
            start,
            end: self.frames.len(),
            timestamp: entry.timestamp,
            error: entry.level == Level::Error,
            terminal: entry.terminal_state().is_some(),
        });
        self.oldest_ms.get_or_insert(now_ms);
    }

    /// Entries buffered.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// When the oldest buffered entry arrived.
    pub fn oldest_ms(&self) -> Option<i64> {
        self.oldest_ms
    }

    /// Whether the policy says flush now.
    pub fn is_due(&self, policy: &CommitPolicy, now_ms: i64) -> bool {
        if self.items.len() >= policy.max_batch_entries {
            return true;
        }
        let delay = i64::try_from(policy.max_batch_delay.as_millis()).unwrap_or(i64::MAX);
        self.oldest_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= delay)
    }

    /// Lays the batch out by execution into `out` (reused across flushes).
    pub fn layout(&mut self, out: &mut Layout) {
        out.bytes.clear();
        out.runs.clear();
        self.group_of.clear();
        self.order.clear();
        for (i, item) in self.items.iter().enumerate() {
            let next = self.group_of.len();
            let g = *self.group_of.entry(item.hash).or_insert(next);
            self.order.push((g, i));
        }
        // A batch whose executions do not interleave (one execution, or round-robin over more
        // executions than the batch holds) is already in run order: no sort, one copy.
        let in_order = self.order.is_sorted_by_key(|&(g, _)| g);
        if in_order {
            out.bytes.extend_from_slice(&self.frames);
        } else {
            // Stable: within a group, append order is kept.
            self.order.sort_by_key(|&(g, _)| g);
        }
        let mut current: Option<usize> = None;
        let mut run_start = 0u64;
        let mut written = 0u64;
        for &(g, i) in &self.order {
            let item = self.items[i];
            if current != Some(g) {
                current = Some(g);
                run_start = written;
                out.runs.push(IndexEntry {
                    hash: item.hash,
                    offset: run_start,
                    min_ts: item.timestamp,
                    max_ts: item.timestamp,
                    ..IndexEntry::default()
                });
            }
            let frame = &self.frames[item.start..item.end];
            if !in_order {
                out.bytes.extend_from_slice(frame);
            }
            written += frame.len() as u64;
            if let Some(run) = out.runs.last_mut() {
                // A frame is at most ~1 MiB and a batch is bounded, so u32 holds a run.
                run.length = u32::try_from(written - run_start).unwrap_or(u32::MAX);
                run.count += 1;
                run.min_ts = run.min_ts.min(item.timestamp);
                run.max_ts = run.max_ts.max(item.timestamp);
                run.errors += u32::from(item.error);
                if item.terminal {
                    run.flags |= FLAG_TERMINAL;
                }
            }
        }
    }

    /// Empties the batch after a successful flush.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.items.clear();
        self.oldest_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record;
    use crate::ExecutionId;

    fn push(b: &mut Batch, exec: &str, msg: &str, ts: i64) {
        let e = LogEntry::new(ExecutionId::new(exec).unwrap(), ts, Level::Info, "s", msg);
        let mut frame = Vec::new();
        record::encode(&e, &mut frame).unwrap();
        b.push(&e, &frame, 0);
    }

    #[test]
    fn layout_groups_by_execution_keeping_append_order() {
        let mut b = Batch::default();
        push(&mut b, "a", "a1", 5);
        push(&mut b, "b", "b1", 1);
        push(&mut b, "a", "a2", 3);
        push(&mut b, "c", "c1", 2);
        push(&mut b, "b", "b2", 9);
        let mut out = Layout::default();
        b.layout(&mut out);
        assert_eq!(out.runs.len(), 3);
        let mut msgs = Vec::new();
        let mut pos = 0;
        while pos < out.bytes.len() {
            let (p, n) = record::decode(&out.bytes[pos..]).unwrap();
            msgs.push(p.message.to_owned());
            pos += n;
        }
        assert_eq!(msgs, ["a1", "a2", "b1", "b2", "c1"]);
        let a = out.runs[0];
        assert_eq!(
            (a.hash, a.offset, a.count, a.min_ts, a.max_ts),
            (exec_hash("a"), 0, 2, 3, 5)
        );
        assert_eq!(out.runs[1].offset, u64::from(a.length));
        assert_eq!(
            out.runs.iter().map(|r| u64::from(r.length)).sum::<u64>(),
            out.bytes.len() as u64
        );
    }

    #[test]
    fn due_at_count_or_age() {
        let policy = CommitPolicy {
            max_batch_entries: 3,
            max_batch_delay: Duration::from_millis(1000),
            ..CommitPolicy::default()
        };
        let mut b = Batch::default();
        assert!(!b.is_due(&policy, 1_000_000));
        push(&mut b, "a", "1", 0);
        assert!(!b.is_due(&policy, 999));
        assert!(b.is_due(&policy, 1000));
        push(&mut b, "a", "2", 0);
        push(&mut b, "a", "3", 0);
        assert!(b.is_due(&policy, 0));
    }
}
