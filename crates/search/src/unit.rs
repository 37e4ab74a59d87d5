//! A unit of work (a range of a segment, or blocks of a sealed day), what scanning it finds,
//! and the state the workers share: the types `live.rs` and `sealed.rs` scan with and
//! `results.rs` hands out and collects.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{Hit, Query, SearchDamage};
use logstore_store::access::{DayFiles, SegFiles};

/// A piece of a day that one worker scans from start to end.
pub(crate) enum Unit {
    /// `start..end` of a segment: whole frames, cut at run starts.
    Segment {
        day: Arc<SegFiles>,
        start: u64,
        end: u64,
    },
    /// Blocks of a sealed day that may match, in file order.
    Blocks {
        day: Arc<DayFiles>,
        blocks: Vec<u32>,
    },
}

/// What a scan finds.
pub(crate) enum Found {
    Hit(Hit),
    /// A match, in a count-only search (no entry is built).
    Counted,
    Damage(SearchDamage),
}

/// State shared by the workers and the iterator.
pub(crate) struct Ctx {
    pub(crate) query: Query,
    /// Count matches instead of building them ([`Matches::count_all`](crate::Matches::count_all)).
    pub(crate) count_only: bool,
    pub(crate) cancel: AtomicBool,
    pub(crate) stats: Counters,
}

impl Ctx {
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Counters the workers add to (relaxed: they are for reports, not for control).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) segment_bytes: AtomicU64,
    pub(crate) frames_decoded: AtomicU64,
    pub(crate) blocks: AtomicU64,
    pub(crate) blocks_read: AtomicU64,
    pub(crate) days_skipped: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
