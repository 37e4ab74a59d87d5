//! Reading an execution by line number: the position a page or a follower resumes from.
//!
//! A line is an entry's 0-based place in its execution's append order, counting every entry
//! of the execution (filters do not renumber). Lines come from the index: every run of an
//! execution records how many entries it holds, so reaching line 900,000 of a 1 M-line
//! execution skips whole runs by their counts and reads only the run that holds it. The HTTP
//! API (`serve`) builds its cursors on lines.

use std::collections::HashMap;

use crate::error::{Result, StoreError};
use crate::store::day::Day;
use crate::store::index::{exec_hash, IndexEntry};
use crate::store::record::{self, PayloadRef};
use crate::store::{DayFiles, LogStore};
use crate::{ExecutionId, ExecutionSummary, Filter};

/// Where a line follower has got to: see [`LogStore::read_new_lines`].
#[derive(Debug, Default, Clone)]
pub struct LineCursor {
    /// Per day: the segment offset after the last run read, and index entries read.
    days: HashMap<Day, (u64, u64)>,
    /// Lines counted so far (the line number of the next entry).
    lines: u64,
    /// Whether the execution's terminal entry has been read.
    finished: bool,
}

impl LineCursor {
    /// Lines counted so far: the line number the next entry will have.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Whether the execution's terminal entry has been read.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl LogStore {
    /// Calls `f(line, payload)` for every entry of `execution_id` from line `from` on, in
    /// append order, until `f` returns `false`. Runs wholly before `from`, or wholly outside
    /// `filter`'s time range, are counted from the index and not read; nothing else of
    /// `filter` is applied (use [`Filter::matches`]).
    ///
    /// [`StoreError::UnknownExecution`] if nothing is stored for the execution.
    pub fn scan_lines(
        &self,
        execution_id: &ExecutionId,
        from: u64,
        filter: &Filter,
        mut f: impl FnMut(u64, &PayloadRef<'_>) -> bool,
    ) -> Result<()> {
        self.refresh_days()?;
        let hash = exec_hash(execution_id.as_str());
        let mut line = 0u64;
        let mut found = false;
        for day in self.days() {
            for run in day.runs_after(hash, &mut 0)? {
                found = true;
                let count = u64::from(run.count);
                let outside = filter.since_ms.is_some_and(|s| run.max_ts < s)
                    || filter.until_ms.is_some_and(|u| run.min_ts >= u);
                if line + count <= from || outside {
                    line += count;
                    continue;
                }
                let start = line;
                line += count;
                if !read_run_lines(&day, &run, execution_id, start, from, &mut f)? {
                    return Ok(());
                }
            }
        }
        if !found {
            return Err(StoreError::UnknownExecution(execution_id.clone()));
        }
        Ok(())
    }

    /// Calls `f(line, payload)` for every entry of `execution_id` flushed since the previous
    /// call with the same `cursor`, at line `from` or later, and advances the cursor. `f`
    /// returns `false` to stop; the cursor is then left unusable for more (start a new one).
    /// Returns whether anything is stored for the execution yet.
    pub fn read_new_lines(
        &self,
        execution_id: &ExecutionId,
        cursor: &mut LineCursor,
        from: u64,
        mut f: impl FnMut(u64, &PayloadRef<'_>) -> bool,
    ) -> Result<bool> {
        self.refresh_days()?;
        let hash = exec_hash(execution_id.as_str());
        for day in self.days() {
            let (after, mut seen) = cursor.days.get(&day.day).copied().unwrap_or((0, 0));
            let mut next = after;
            for run in day.runs_after(hash, &mut seen)? {
                if run.offset < after {
                    continue; // read by an earlier call
                }
                next = run.end();
                let start = cursor.lines;
                cursor.lines += u64::from(run.count);
                cursor.finished |= run.is_terminal();
                if cursor.lines <= from {
                    continue;
                }
                if !read_run_lines(&day, &run, execution_id, start, from, &mut f)? {
                    return Ok(true);
                }
            }
            cursor.days.insert(day.day, (next, seen));
        }
        Ok(cursor.lines > 0)
    }

    /// The summary [`list`](LogStore::list) gives for one execution, from this execution's
    /// index entries only (`list` reads every execution's).
    pub fn execution_summary(&self, execution_id: &ExecutionId) -> Result<ExecutionSummary> {
        self.refresh_days()?;
        let hash = exec_hash(execution_id.as_str());
        let mut summary: Option<ExecutionSummary> = None;
        let mut terminal = None;
        for day in self.days() {
            for run in day.runs_after(hash, &mut 0)? {
                let s = summary.get_or_insert_with(|| ExecutionSummary {
                    execution_id: execution_id.clone(),
                    first_ts: run.min_ts,
                    last_ts: run.max_ts,
                    entries: 0,
                    errors: 0,
                    final_state: None,
                });
                s.first_ts = s.first_ts.min(run.min_ts);
                s.last_ts = s.last_ts.max(run.max_ts);
                s.entries += u64::from(run.count);
                s.errors += u64::from(run.errors);
                if run.is_terminal() {
                    terminal = Some((day.clone(), run));
                }
            }
        }
        let mut summary =
            summary.ok_or_else(|| StoreError::UnknownExecution(execution_id.clone()))?;
        if let Some((day, run)) = terminal {
            let bytes = day.read_run(&run, usize::MAX)?;
            record::for_each_frame(&bytes, |_, p| {
                if p.execution_id == execution_id.as_str()
                    && crate::store::recovery::is_terminal(&p)
                {
                    summary.final_state = p
                        .to_entry()
                        .ok()
                        .and_then(|e| e.terminal_state().map(str::to_owned));
                }
                true
            });
        }
        Ok(summary)
    }
}

/// Reads one run whose first entry is line `start`, calling `f` for its entries at line
/// `from` or later. Returns `false` if `f` asked to stop.
fn read_run_lines(
    day: &DayFiles,
    run: &IndexEntry,
    execution_id: &ExecutionId,
    start: u64,
    from: u64,
    f: &mut impl FnMut(u64, &PayloadRef<'_>) -> bool,
) -> Result<bool> {
    let bytes = day.read_run(run, usize::MAX)?;
    let mut line = start;
    let mut more = true;
    let damage = record::for_each_frame(&bytes, |_, p| {
        if p.execution_id != execution_id.as_str() {
            return true; // a hash collision
        }
        // A damaged record loses its line; the run's later lines move up by one, the same way
        // for every reader, so cursors stay consistent.
        let this = line;
        line += 1;
        if this >= from {
            more = f(this, &p);
        }
        more
    });
    for (at, len, e) in damage {
        tracing::warn!(file = %day.segment.path().display(), offset = run.offset + at as u64, len, error = %e, "skipped damaged bytes (run `logstore verify`)");
    }
    Ok(more)
}
