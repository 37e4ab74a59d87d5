//! Reading: one execution's entries in append order, with filters; following new entries;
//! listing executions; per-day statistics.
//!
//! A query touches only the execution's runs: per sealed day a binary search in the sorted
//! index, for the live day a walk of the execution's chain. So its cost depends on the size of
//! the execution, not of the store. Readers see what the writer has flushed (at most 100
//! entries / 1 s behind the appends), never a half-written record.

use std::collections::{HashMap, VecDeque};

use crate::error::{Result, StoreError};
use crate::store::day::Day;
use crate::store::index::{exec_hash, IndexEntry};
use crate::store::record::{self, PayloadRef};
use crate::store::{DayFiles, DayIndex, LogStore};
use crate::{ExecutionId, Level, LogEntry, TaskId};

/// Which entries of an execution a query returns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only entries at this level or above.
    pub min_level: Option<Level>,
    /// Only entries of this task.
    pub task_id: Option<TaskId>,
    /// Only entries whose source starts with this.
    pub source_prefix: Option<String>,
    /// Only entries with `timestamp >= since_ms`.
    pub since_ms: Option<i64>,
    /// Only entries with `timestamp < until_ms`.
    pub until_ms: Option<i64>,
    /// At most this many entries, the first ones.
    pub limit: Option<usize>,
    /// Only the last this many entries (applied after the other filters).
    pub tail: Option<usize>,
}

impl Filter {
    fn run_may_match(&self, run: &IndexEntry) -> bool {
        self.since_ms.is_none_or(|s| run.max_ts >= s)
            && self.until_ms.is_none_or(|u| run.min_ts < u)
    }

    /// Whether a stored payload passes the filter.
    pub fn matches(&self, p: &PayloadRef<'_>) -> bool {
        self.min_level.is_none_or(|l| p.level >= l.to_byte())
            && self
                .task_id
                .as_ref()
                .is_none_or(|t| p.task_id == Some(t.as_str()))
            && self
                .source_prefix
                .as_ref()
                .is_none_or(|s| p.source.starts_with(s.as_str()))
            && self.since_ms.is_none_or(|s| p.timestamp >= s)
            && self.until_ms.is_none_or(|u| p.timestamp < u)
    }
}

/// Where a reader has got to in each day: the segment offset after the last run it read, and
/// (for another process's live index) how many index entries it has read.
type Cursor = HashMap<Day, (u64, u64)>;

impl LogStore {
    /// The entries of `execution_id` that pass `filter`, in append order.
    ///
    /// [`StoreError::UnknownExecution`] if nothing at all is stored for the execution (an
    /// execution whose entries are all filtered out gives an empty list).
    pub fn query(&self, execution_id: &ExecutionId, filter: &Filter) -> Result<Vec<LogEntry>> {
        self.refresh_days()?;
        let mut cursor = Cursor::new();
        let mut out = VecDeque::new();
        let mut found = false;
        let mut ids = Ids::default();
        self.visit(execution_id, filter, &mut cursor, &mut found, &mut |p| {
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
        self.refresh_days()?;
        let mut found = false;
        let mut sent = 0usize;
        let mut ids = Ids::default();
        self.visit(
            execution_id,
            filter,
            &mut Cursor::new(),
            &mut found,
            &mut |p| {
                let Some(entry) = entry_of(p, &mut ids) else {
                    return Ok(true);
                };
                sent += 1;
                Ok(f(entry) && filter.limit.is_none_or(|l| sent < l))
            },
        )?;
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
        self.visit(
            execution_id,
            filter,
            &mut Cursor::new(),
            &mut found,
            &mut |_| {
                n += 1;
                Ok(true)
            },
        )?;
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
            cursor: Cursor::new(),
            finished: false,
        }
    }

    /// Calls `f` for each matching payload of the execution after the cursor, in append order,
    /// advancing the cursor; `f` returns `Ok(false)` to stop. Damaged records are skipped (and
    /// logged): a flipped bit loses that record, not the query.
    fn visit(
        &self,
        execution_id: &ExecutionId,
        filter: &Filter,
        cursor: &mut Cursor,
        found: &mut bool,
        f: &mut dyn FnMut(&PayloadRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        let hash = exec_hash(execution_id.as_str());
        for day in self.days() {
            let (from, mut seen) = cursor.get(&day.day).copied().unwrap_or((0, 0));
            let runs = day.runs_after(hash, &mut seen)?;
            let mut next = from;
            for run in runs {
                if run.offset < from {
                    continue;
                }
                next = run.end();
                // A run outside the time range is skipped unread, unless we still need to see
                // one record to know the execution exists.
                if *found && !filter.run_may_match(&run) {
                    continue;
                }
                if !visit_run(&day, &run, execution_id, filter, found, f)? {
                    // Only one-shot queries stop early; their cursor is dropped.
                    return Ok(());
                }
            }
            cursor.insert(day.day, (next, seen));
        }
        Ok(())
    }

    /// Every execution in the store with a summary, oldest first.
    pub fn list(&self) -> Result<Vec<ExecutionSummary>> {
        self.refresh_days()?;
        let mut by_hash: HashMap<u64, (ExecutionSummary, Option<(usize, IndexEntry)>)> =
            HashMap::new();
        let mut order: Vec<u64> = Vec::new();
        let days = self.days();
        for (di, day) in days.iter().enumerate() {
            for run in day.all_runs()? {
                let slot = match by_hash.entry(run.hash) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        // A run whose first record is damaged names no execution; a later run
                        // of the same hash will.
                        let Some(id) = first_id(day, &run)? else {
                            continue;
                        };
                        order.push(run.hash);
                        v.insert((
                            ExecutionSummary {
                                execution_id: id,
                                first_ts: run.min_ts,
                                last_ts: run.max_ts,
                                entries: 0,
                                errors: 0,
                                final_state: None,
                            },
                            None,
                        ))
                    }
                };
                let s = &mut slot.0;
                s.first_ts = s.first_ts.min(run.min_ts);
                s.last_ts = s.last_ts.max(run.max_ts);
                s.entries += u64::from(run.count);
                s.errors += u64::from(run.errors);
                if run.is_terminal() {
                    slot.1 = Some((di, run));
                }
            }
        }
        let mut out = Vec::with_capacity(order.len());
        for h in order {
            let Some((mut s, terminal)) = by_hash.remove(&h) else {
                continue;
            };
            if let Some((di, run)) = terminal {
                s.final_state = final_state(&days[di], &run)?;
            }
            out.push(s);
        }
        out.sort_by(|a, b| (a.first_ts, &a.execution_id).cmp(&(b.first_ts, &b.execution_id)));
        Ok(out)
    }

    /// Sizes and counts per day.
    pub fn stats(&self) -> Result<Vec<DayStats>> {
        self.refresh_days()?;
        let mut out = Vec::new();
        for day in self.days() {
            let runs = day.all_runs()?;
            let mut execs: Vec<u64> = runs.iter().map(|r| r.hash).collect();
            execs.sort_unstable();
            execs.dedup();
            let len = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let dir = day
                .segment
                .path()
                .parent()
                .map(std::path::Path::to_owned)
                .unwrap_or_default();
            out.push(DayStats {
                day: day.day,
                sealed: matches!(day.index, DayIndex::Sorted(_)),
                segment_bytes: len(day.segment.path()),
                index_bytes: len(&crate::store::index::live_index_path(&dir, day.day))
                    + len(&crate::store::index::sorted_index_path(&dir, day.day)),
                entries: runs.iter().map(|r| u64::from(r.count)).sum(),
                runs: runs.len() as u64,
                executions: execs.len() as u64,
            });
        }
        Ok(out)
    }
}

fn visit_run(
    day: &DayFiles,
    run: &IndexEntry,
    execution_id: &ExecutionId,
    filter: &Filter,
    found: &mut bool,
    f: &mut dyn FnMut(&PayloadRef<'_>) -> Result<bool>,
) -> Result<bool> {
    let bytes = day.read_run(run, usize::MAX)?;
    let mut keep_going = true;
    let mut result = Ok(());
    let damage = record::for_each_frame(&bytes, |_, p| {
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
        tracing::warn!(file = %day.segment.path().display(), offset = run.offset + at as u64, len, error = %e, "skipped damaged bytes (run `logstore verify`)");
    }
    result.map(|()| keep_going)
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

fn first_id(day: &DayFiles, run: &IndexEntry) -> Result<Option<ExecutionId>> {
    let bytes = day.read_run(run, usize::MAX)?;
    // The first intact record of the run names the execution.
    let mut id = None;
    record::for_each_frame(&bytes, |_, p| {
        id = Some(ExecutionId::from_checked(p.execution_id));
        false
    });
    Ok(id)
}

fn final_state(day: &DayFiles, run: &IndexEntry) -> Result<Option<String>> {
    let bytes = day.read_run(run, usize::MAX)?;
    let mut state = None;
    record::for_each_frame(&bytes, |_, p| {
        if crate::store::recovery::is_terminal(&p) {
            state = p
                .to_entry()
                .ok()
                .and_then(|e| e.terminal_state().map(str::to_owned));
        }
        true
    });
    Ok(state)
}

/// One execution in [`LogStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSummary {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Smallest entry timestamp.
    pub first_ts: i64,
    /// Largest entry timestamp.
    pub last_ts: i64,
    /// Entries stored.
    pub entries: u64,
    /// ERROR entries stored.
    pub errors: u64,
    /// SUCCESS, FAILED or CANCELLED once the terminal entry is stored.
    pub final_state: Option<String>,
}

/// One day in [`LogStore::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStats {
    /// The day.
    pub day: Day,
    /// Whether it has its sorted index.
    pub sealed: bool,
    /// Segment file size.
    pub segment_bytes: u64,
    /// Index file sizes.
    pub index_bytes: u64,
    /// Indexed entries.
    pub entries: u64,
    /// Index entries (runs).
    pub runs: u64,
    /// Distinct executions (by hash).
    pub executions: u64,
}

/// A live view of one execution: see [`LogStore::follow`]. It applies the filter's level,
/// task, source and time conditions; `limit` and `tail` are for one-shot queries and ignored.
pub struct Follower<'s> {
    store: &'s LogStore,
    execution_id: ExecutionId,
    filter: Filter,
    cursor: Cursor,
    finished: bool,
}

impl Follower<'_> {
    /// The matching entries flushed since the last poll. An execution with nothing stored yet
    /// gives an empty list (it may not have started).
    pub fn poll(&mut self) -> Result<Vec<LogEntry>> {
        self.store.refresh_days()?;
        let mut out = Vec::new();
        let mut found = false;
        let mut finished = false;
        let mut ids = Ids::default();
        let unfiltered = Filter::default();
        // Visit unfiltered so that the terminal entry is seen even when filtered out.
        self.store.visit(
            &self.execution_id,
            &unfiltered,
            &mut self.cursor,
            &mut found,
            &mut |p| {
                if crate::store::recovery::is_terminal(p) {
                    finished = true;
                }
                if self.filter.matches(p) {
                    out.extend(entry_of(p, &mut ids));
                }
                Ok(true)
            },
        )?;
        self.finished |= finished;
        Ok(out)
    }

    /// Whether the execution's terminal entry has been seen.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}
