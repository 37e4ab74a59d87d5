//! One execution's entries in append order, with filters ([`LogStore::query`] and its
//! streaming forms), and following new entries ([`Follower`], woken by `waiters.rs`).
//! Listing executions is `listing.rs`; pages and line cursors are `page/`; what a reader wants
//! is a [`Filter`] (`filter.rs`).
//!
//! A query touches only the execution's blocks and runs: in a day's sealed files (parts or
//! the whole day), a lookup in the execution table through its catalog's fence, then one
//! contiguous read of its blocks; in the live segments after them, a walk of the execution's
//! chain of runs (from the writer's memory, or the `.heads` checkpoint and the index after
//! it). So its cost depends on the size of the execution, not of the store. Readers see what
//! the writer has flushed (at most 100 entries / 1 s behind the appends), never a half-written
//! record.

use std::collections::VecDeque;

use crate::error::{Result, StoreError};
use crate::journal::index::{exec_hash, IndexEntry};
use crate::journal::record::{self, PayloadRef};
use crate::read::day_files::DayFiles;
use crate::read::filter::Filter;
use crate::read::page::LineCursor;
use crate::sealed::SealedDay;
use crate::LogStore;
use crate::{ExecutionId, LogEntry, TaskId};

/// A stored entry and its sequence number (`docs/FORMAT.md`): unique store-wide, increasing
/// in append order, kept by sealing and merges.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// `None` for an entry written before entries had one (segment version 1).
    pub seq: Option<u64>,
    /// The entry.
    pub entry: LogEntry,
}

impl LogStore {
    /// The entries of `execution_id` that pass `filter`, in append order.
    ///
    /// [`StoreError::UnknownExecution`] if nothing at all is stored for the execution (an
    /// execution whose entries are all filtered out gives an empty list).
    pub fn query(&self, execution_id: &ExecutionId, filter: &Filter) -> Result<Vec<LogEntry>> {
        self.refresh_days()?;
        let mut out = VecDeque::new();
        let mut found = false;
        let mut ids = Ids::default();
        self.visit(execution_id, filter, &mut found, &mut |p| {
            out.extend(entry_of(p, &mut ids));
            if let Some(t) = filter.tail {
                if out.len() > t {
                    out.pop_front();
                }
            }
            Ok(filter.tail.is_some() || filter.limit.is_none_or(|l| out.len() < l))
        })?;
        if !found {
            return Err(StoreError::UnknownExecution(execution_id.clone()));
        }
        Ok(out.into())
    }

    /// Streams the entries of `execution_id` that pass `filter` to `f`, in append order, without
    /// holding them all: memory stays flat however large the execution. `f` returns `false` to
    /// stop. `filter.limit` is honoured; `filter.tail` needs [`query`](LogStore::query).
    pub fn query_each(
        &self,
        execution_id: &ExecutionId,
        filter: &Filter,
        mut f: impl FnMut(LogEntry) -> bool,
    ) -> Result<()> {
        self.query_each_stored(execution_id, filter, |s| f(s.entry))
    }

    /// [`query_each`](LogStore::query_each) with each entry's sequence number: what a caller
    /// that keeps positions (a shipper, a cursor) reads.
    pub fn query_each_stored(
        &self,
        execution_id: &ExecutionId,
        filter: &Filter,
        mut f: impl FnMut(Stored) -> bool,
    ) -> Result<()> {
        self.refresh_days()?;
        let mut found = false;
        let mut sent = 0usize;
        let mut ids = Ids::default();
        self.visit(execution_id, filter, &mut found, &mut |p| {
            let Some(entry) = entry_of(p, &mut ids) else {
                return Ok(true);
            };
            sent += 1;
            let seq = p.number();
            Ok(f(Stored { seq, entry }) && filter.limit.is_none_or(|l| sent < l))
        })?;
        if !found {
            return Err(StoreError::UnknownExecution(execution_id.clone()));
        }
        Ok(())
    }

    /// Counts the entries of `execution_id` that pass `filter` without building them.
    pub fn count(&self, execution_id: &ExecutionId, filter: &Filter) -> Result<u64> {
        self.refresh_days()?;
        let mut n = 0u64;
        let mut found = false;
        self.visit(execution_id, filter, &mut found, &mut |_| {
            n += 1;
            Ok(true)
        })?;
        if !found {
            return Err(StoreError::UnknownExecution(execution_id.clone()));
        }
        Ok(n)
    }

    /// Follows `execution_id`: each [`Follower::poll`] returns the entries flushed since the
    /// previous one.
    pub fn follow(&self, execution_id: &ExecutionId, filter: Filter) -> Follower<'_> {
        Follower {
            store: self,
            execution_id: execution_id.clone(),
            filter,
            cursor: LineCursor::default(),
        }
    }

    /// Calls `f` for each matching payload of the execution, in append order; `f` returns
    /// `Ok(false)` to stop. Damaged records are skipped (and logged): a flipped bit loses that
    /// record, not the query.
    fn visit(
        &self,
        execution_id: &ExecutionId,
        filter: &Filter,
        found: &mut bool,
        f: &mut dyn FnMut(&PayloadRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        let hash = exec_hash(execution_id.as_str());
        for day in self.days() {
            if let Some(sealed) = day.sealed() {
                let more = visit_sealed(sealed, execution_id, filter, found, f)?;
                if !more {
                    return Ok(());
                }
            }
            let runs = day.runs_after(hash, &mut 0, Some(&self.inner.waiters))?;
            let mut wanted = Vec::with_capacity(runs.len());
            for run in runs {
                // A run outside the time range is skipped unread, unless we still need to see
                // one record to know the execution exists.
                if (*found || !wanted.is_empty()) && !filter.run_may_match(&run) {
                    continue;
                }
                wanted.push(run);
            }
            let more = day.for_each_run_bytes(&wanted, &mut |run, bytes| {
                visit_run(&day, run, bytes, execution_id, filter, found, f)
            })?;
            if !more {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Visits the frames of `run` (its `bytes`).
#[allow(clippy::too_many_arguments)]
fn visit_run(
    day: &DayFiles,
    run: &IndexEntry,
    bytes: &[u8],
    execution_id: &ExecutionId,
    filter: &Filter,
    found: &mut bool,
    f: &mut dyn FnMut(&PayloadRef<'_>) -> Result<bool>,
) -> Result<bool> {
    let mut keep_going = true;
    let mut result = Ok(());
    let (kind, at) = day.frames(run);
    let damage = record::for_each_frame_as(bytes, kind, at, |_, p| {
        if p.execution_id != execution_id.as_str() {
            return true; // a hash collision
        }
        *found = true;
        if filter.matches(&p) {
            match f(&p) {
                Ok(more) => keep_going = more,
                Err(e) => {
                    result = Err(e);
                    keep_going = false;
                }
            }
        }
        keep_going
    });
    for (at, len, e) in damage {
        tracing::warn!(file = %day.path().display(), offset = run.offset + at as u64, len, error = %e, "skipped damaged bytes (run `logstore verify`)");
        crate::observe::damage(1);
    }
    result.map(|()| keep_going)
}

/// Visits the execution's entries in a sealed day: its record in the execution table, then its
/// blocks in one contiguous read. A damaged block loses its own entries (logged), never the
/// query.
fn visit_sealed(
    sealed: &SealedDay,
    execution_id: &ExecutionId,
    filter: &Filter,
    found: &mut bool,
    f: &mut dyn FnMut(&PayloadRef<'_>) -> Result<bool>,
) -> Result<bool> {
    let id = execution_id.as_str();
    // Blocks are skipped by their time range and levels.
    let narrowed =
        filter.min_level.is_some() || filter.since_ms.is_some() || filter.until_ms.is_some();
    let blocks = sealed.block_table();
    for rec in sealed.lookup(id)? {
        *found = true;
        let mut keep_going = true;
        let mut result = Ok(());
        sealed.for_blocks(rec.first_block, rec.last_block, &mut |i, block| {
            if narrowed
                && blocks
                    .get(i)
                    .copied()
                    .flatten()
                    .is_some_and(|b| !filter.block_may_match(&b))
            {
                return true;
            }
            let columns = match block {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "skipped a damaged block (run `logstore verify`)");
                    crate::observe::damage(1);
                    return true;
                }
            };
            for p in columns.rows_of(id).map(|k| columns.payload(k)) {
                if !filter.matches(&p) {
                    continue;
                }
                match f(&p) {
                    Ok(true) => {}
                    Ok(false) => {
                        keep_going = false;
                        break;
                    }
                    Err(e) => {
                        result = Err(e);
                        keep_going = false;
                        break;
                    }
                }
            }
            keep_going
        })?;
        result?;
        if !keep_going {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The owned entry of a payload; a payload that passed its CRC but not validation (a bug or a
/// foreign writer) is skipped like a damaged record.
/// Id slots shared by the entries one reader builds (see [`PayloadRef::to_entry_sharing`]).
#[derive(Default)]
struct Ids(Option<ExecutionId>, Option<TaskId>);

fn entry_of(p: &PayloadRef<'_>, ids: &mut Ids) -> Option<LogEntry> {
    match p.to_entry_sharing(&mut ids.0, &mut ids.1) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "skipping an invalid record");
            None
        }
    }
}

/// A live view of one execution: see [`LogStore::follow`]. It applies the filter's level,
/// task, source and time conditions; `limit` and `tail` are for one-shot queries and ignored.
///
/// It is the same mechanism as the server's live follow: a [`LineCursor`] advanced by
/// [`LogStore::read_new_lines`], the filter applied to what it reads.
pub struct Follower<'s> {
    store: &'s LogStore,
    execution_id: ExecutionId,
    filter: Filter,
    cursor: LineCursor,
}

impl Follower<'_> {
    /// The matching entries flushed since the last poll. An execution with nothing stored yet
    /// gives an empty list (it may not have started).
    pub fn poll(&mut self) -> Result<Vec<LogEntry>> {
        Ok(self.poll_stored()?.into_iter().map(|s| s.entry).collect())
    }

    /// [`poll`](Follower::poll), with each entry's sequence number.
    pub fn poll_stored(&mut self) -> Result<Vec<Stored>> {
        let mut out = Vec::new();
        let mut ids = Ids::default();
        let filter = &self.filter;
        self.store
            .read_new_lines(&self.execution_id, &mut self.cursor, 0, |_, p| {
                if filter.matches(p) {
                    let seq = p.number();
                    out.extend(entry_of(p, &mut ids).map(|entry| Stored { seq, entry }));
                }
                true
            })?;
        Ok(out)
    }

    /// Whether the execution's terminal entry has been seen.
    pub fn is_finished(&self) -> bool {
        self.cursor.is_finished()
    }
}
