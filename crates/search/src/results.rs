//! The stream of matches: units of work scanned by one worker thread per core, read back in
//! order.
//!
//! Unit `k` goes to worker `k mod n`, and each worker scans its units in increasing order,
//! sending what it finds into its own bounded channel, then `Done`. The iterator reads unit 0's
//! results from worker 0's channel until `Done`, then unit 1's from worker 1, and so on: the
//! output is in unit order while the other workers already scan ahead, and a worker that gets
//! too far ahead blocks on its full channel, so memory stays bounded whatever the store's size.
//! Dropping the iterator (or reaching the limit) sets a cancel flag that the workers check
//! between frames and blocks, and closes the channels.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::unit::{Counters, Ctx, Found, Unit};
use super::{Hit, Query, SearchDamage};
use logstore_store::StoreError;

/// Messages a worker may have in flight per channel before it waits for the reader.
const CHANNEL_DEPTH: usize = 4096;

enum Msg {
    Found(Found),
    /// Matches of the unit, in a count-only search (sent before `Done`).
    Counted(u64),
    Failed(StoreError),
    Done,
}

/// How much work a search did so far (see [`Matches::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Bytes of live segments (and days sealed with a sorted index) scanned.
    pub segment_bytes: u64,
    /// Frames checked and decoded because they might match.
    pub frames_decoded: u64,
    /// Blocks of sealed days considered.
    pub blocks: u64,
    /// Blocks decompressed because their filters said they might match.
    pub blocks_read: u64,
    /// Days not read at all: every entry they hold is outside `since..until`.
    pub days_skipped: u64,
}

/// The matches of a [`StoreSearch::search`](crate::StoreSearch::search), in store order (or its
/// reverse). Yields `Err` once and ends if a file cannot be read; damaged records and blocks
/// are not errors: they are skipped, logged, and listed by [`Matches::damage`].
pub struct Matches {
    ctx: Arc<Ctx>,
    channels: Vec<Receiver<Msg>>,
    workers: Vec<JoinHandle<()>>,
    unit: usize,
    units: usize,
    remaining: Option<usize>,
    limit: Option<usize>,
    damage: Vec<SearchDamage>,
    finished: bool,
    /// Matches counted so far, in a count-only search.
    counted: u64,
}

impl std::fmt::Debug for Matches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matches")
            .field("unit", &self.unit)
            .field("units", &self.units)
            .finish_non_exhaustive()
    }
}

impl Matches {
    /// Starts the workers on `units`; `blocks`: the blocks of the sealed days searched (kept
    /// by their filters or not), and `days_skipped`, for [`Matches::stats`]; `damage`: what
    /// the plan already met (unreadable days).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        query: Query,
        units: Vec<Unit>,
        (blocks, days_skipped): (u64, u64),
        damage: Vec<SearchDamage>,
        reverse: bool,
        limit: Option<usize>,
        count_only: bool,
    ) -> Matches {
        let stats = Counters::default();
        Counters::add(&stats.blocks, blocks);
        Counters::add(&stats.days_skipped, days_skipped);
        let ctx = Arc::new(Ctx {
            query,
            count_only,
            cancel: AtomicBool::new(false),
            stats,
        });
        let n = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(units.len());
        let units = Arc::new(units);
        let mut channels = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for w in 0..n {
            let (tx, rx) = sync_channel(CHANNEL_DEPTH);
            let (ctx, units) = (Arc::clone(&ctx), Arc::clone(&units));
            let spawned = std::thread::Builder::new()
                .name(format!("logstore-search-{w}"))
                .spawn(move || work(&ctx, &units, w, n, reverse, &tx));
            match spawned {
                Ok(handle) => {
                    channels.push(rx);
                    workers.push(handle);
                }
                // No thread to be had: the reader finds the channel closed and reports it.
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a search worker");
                    channels.push(rx);
                }
            }
        }
        Matches {
            ctx,
            channels,
            workers,
            unit: 0,
            units: units.len(),
            remaining: limit,
            limit,
            damage,
            finished: false,
            counted: 0,
        }
    }

    /// Drives a count-only search to its end: the number of matches (at most the limit).
    pub(crate) fn count_all(&mut self) -> Result<u64, StoreError> {
        if let Some(Err(e)) = self.next() {
            return Err(e);
        }
        Ok(self.counted.min(self.limit()))
    }

    fn limit(&self) -> u64 {
        self.limit.map_or(u64::MAX, |l| l as u64)
    }

    /// The damage met so far: skipped records and blocks, with where and why.
    pub fn damage(&self) -> &[SearchDamage] {
        &self.damage
    }

    /// How much work the search did so far.
    pub fn stats(&self) -> SearchStats {
        let s = &self.ctx.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SearchStats {
            segment_bytes: get(&s.segment_bytes),
            frames_decoded: get(&s.frames_decoded),
            blocks: get(&s.blocks),
            blocks_read: get(&s.blocks_read),
            days_skipped: get(&s.days_skipped),
        }
    }

    fn stop(&mut self) {
        self.finished = true;
        self.ctx.cancel.store(true, Ordering::Relaxed);
        // Closing the channels wakes a worker blocked on a full one.
        self.channels.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Iterator for Matches {
    type Item = Result<Hit, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.finished || self.remaining == Some(0) || self.unit >= self.units {
                self.stop();
                return None;
            }
            let rx = &self.channels[self.unit % self.channels.len()];
            match rx.recv() {
                Ok(Msg::Found(Found::Hit(hit))) => {
                    if let Some(r) = &mut self.remaining {
                        *r -= 1;
                    }
                    return Some(Ok(hit));
                }
                Ok(Msg::Found(Found::Damage(d))) => {
                    tracing::warn!(file = %d.file.display(), offset = d.offset, reason = %d.reason, "search skipped damaged data (run `logstore verify`)");
                    logstore_store::observe::damage(1);
                    self.damage.push(d);
                }
                Ok(Msg::Counted(n)) => {
                    self.counted += n;
                    if self.counted >= self.limit() {
                        self.stop();
                    }
                }
                Ok(Msg::Found(Found::Counted)) => self.counted += 1,
                Ok(Msg::Done) => self.unit += 1,
                Ok(Msg::Failed(e)) => {
                    self.stop();
                    return Some(Err(e));
                }
                Err(_) => {
                    self.stop();
                    return Some(Err(StoreError::Io {
                        op: "search",
                        path: std::path::PathBuf::new(),
                        source: std::io::Error::other("a search worker stopped unexpectedly"),
                    }));
                }
            }
        }
    }
}

impl Drop for Matches {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One worker: units `w`, `w + n`, `w + 2n` ... in order. Returns when done, cancelled, or
/// the reader is gone.
fn work(ctx: &Ctx, units: &[Unit], w: usize, n: usize, reverse: bool, tx: &SyncSender<Msg>) {
    for unit in units.iter().skip(w).step_by(n) {
        if ctx.cancelled() {
            return;
        }
        // Reverse order needs a unit's hits backwards; a unit is a few MiB, so holding its
        // hits is bounded.
        let mut held = Vec::new();
        let mut counted = 0u64;
        let mut sink = |found: Found| match found {
            Found::Hit(h) if reverse => {
                held.push(h);
                true
            }
            Found::Counted => {
                counted += 1;
                true
            }
            other => tx.send(Msg::Found(other)).is_ok(),
        };
        let result = match unit {
            Unit::Segment { day, start, end } => {
                super::live::scan(day, *start, *end, ctx, &mut sink)
            }
            Unit::Blocks { day, blocks } => super::sealed::scan(day, blocks, ctx, &mut sink),
        };
        for h in held.into_iter().rev() {
            if tx.send(Msg::Found(Found::Hit(h))).is_err() {
                return;
            }
        }
        if counted > 0 && tx.send(Msg::Counted(counted)).is_err() {
            return;
        }
        let last = match result {
            Ok(()) => Msg::Done,
            Err(e) => Msg::Failed(e),
        };
        if tx.send(last).is_err() {
            return;
        }
    }
}
