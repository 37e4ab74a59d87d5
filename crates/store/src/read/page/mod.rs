//! Reading an execution by line number: the position a page or a follower resumes from.
//!
//! A line is an entry's 0-based place in its execution's append order, counting every entry
//! of the execution (filters do not renumber). Lines come from the index: every run of an
//! execution records how many entries it holds, so reaching line 900,000 of a 1 M-line
//! execution skips whole runs by their counts and reads only the run that holds it. The HTTP
//! API (`serve`) builds its cursors on lines.

use std::collections::HashMap;

use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::journal::index::{exec_hash, IndexEntry};
use crate::journal::record::{self, PayloadRef};
use crate::names::virtual_offset;
use crate::read::day_files::DayFiles;
use crate::read::day_files::{DayIndex, SegFiles};
use crate::sealed::layout::state_name;
use crate::LogStore;

mod sealed;
use crate::{ExecutionId, ExecutionSummary, Filter};

/// Where a line follower has got to: see [`LogStore::read_new_lines`].
#[derive(Debug, Default, Clone)]
pub struct LineCursor {
    days: HashMap<Day, DayPos>,
    /// Lines counted so far (the line number of the next entry).
    lines: u64,
    /// Whether the execution's terminal entry has been read.
    finished: bool,
}

/// A follower's place in one day.
#[derive(Debug, Default, Clone, Copy)]
struct DayPos {
    /// Segment offset after the last run read (live days).
    offset: u64,
    /// Index entries read (another process's live index).
    seen: u64,
    /// The line of the execution's first entry in this day.
    base: u64,
    /// Lines of the execution counted in this day: what is skipped once the day is sealed
    /// under the follower (the sealed file holds the same entries in the same order).
    lines: u64,
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

/// Executions' runs found so far in days read by scanning another process's live index
/// (the day a server next to a running engine reads most), so that the next call scans only
/// the index entries added since. Without it every page of a 10 M-entry live day would scan
/// the whole 560 MB index. Sealed days and the writer's own day answer from their indexes
/// directly and are not cached. Pass a new (default) one when there is nothing to reuse.
#[derive(Debug, Default, Clone)]
pub struct RunCache {
    /// By day, segment and execution hash (one cache may serve several executions).
    days: HashMap<(Day, u32, u64), ScannedRuns>,
}

#[derive(Debug, Clone)]
struct ScannedRuns {
    /// Index entries scanned.
    seen: u64,
    /// The index file it was scanned from: a recovering writer that rewrites the index makes
    /// the cache start over.
    file: (u64, u64),
    runs: Vec<IndexEntry>,
}

impl LogStore {
    /// The runs of `hash` in `day`'s segments, in append order (day-wide offsets), through
    /// `cache` for scanned indexes.
    fn runs_of(day: &DayFiles, hash: u64, cache: &mut RunCache) -> Result<Vec<IndexEntry>> {
        let mut out = Vec::new();
        for seg in &day.segs {
            out.extend(
                LogStore::seg_runs_of(seg, hash, cache)?
                    .into_iter()
                    .map(|r| IndexEntry {
                        offset: virtual_offset(seg.seq, r.offset),
                        ..r
                    }),
            );
        }
        // Segments gone since the cache was filled are dropped from it.
        cache
            .days
            .retain(|k, _| k.0 != day.day || day.segs.iter().any(|s| s.seq == k.1));
        Ok(out)
    }

    /// The runs of `hash` in one segment (file offsets), through `cache` for a scanned index.
    fn seg_runs_of(day: &SegFiles, hash: u64, cache: &mut RunCache) -> Result<Vec<IndexEntry>> {
        let DayIndex::Scan(scan) = &day.index else {
            return day.runs_after(hash, &mut 0);
        };
        use std::os::unix::fs::MetadataExt;
        let file = match std::fs::metadata(scan.path()) {
            Ok(m) => (m.ino(), m.len()),
            Err(_) => return day.runs_after(hash, &mut 0),
        };
        let slot = cache
            .days
            .entry((day.day, day.seq, hash))
            .or_insert(ScannedRuns {
                seen: 0,
                file,
                runs: Vec::new(),
            });
        // Another file, or a shorter one: the index was rewritten. Start over.
        if slot.file.0 != file.0 || slot.file.1 > file.1 {
            *slot = ScannedRuns {
                seen: 0,
                file,
                runs: Vec::new(),
            };
        }
        let new = day.runs_after(hash, &mut slot.seen)?;
        slot.file = file;
        slot.runs.extend(new);
        Ok(slot.runs.clone())
    }

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
        cache: &mut RunCache,
        mut f: impl FnMut(u64, &PayloadRef<'_>) -> bool,
    ) -> Result<()> {
        self.refresh_days()?;
        let hash = exec_hash(execution_id.as_str());
        let mut line = 0u64;
        let mut found = false;
        for day in self.days() {
            if let Some(sealed) = day.sealed() {
                for rec in sealed.lookup(execution_id.as_str())? {
                    found = true;
                    let count = u64::from(rec.entries);
                    let outside = filter.since_ms.is_some_and(|s| rec.max_ts < s)
                        || filter.until_ms.is_some_and(|u| rec.min_ts >= u);
                    if line + count <= from || outside {
                        line += count;
                        continue;
                    }
                    let start = line;
                    line += count;
                    if !sealed::read_lines(sealed, &rec, execution_id, start, from, &mut f)? {
                        return Ok(());
                    }
                }
            }
            for run in LogStore::runs_of(&day, hash, cache)? {
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
            let mut at = cursor.days.get(&day.day).copied().unwrap_or(DayPos {
                base: cursor.lines,
                ..DayPos::default()
            });
            if let Some(sealed) = day.sealed() {
                // Sealed since the last call (or before the first): what this day holds beyond
                // the lines already counted in it. A sealed day gets no new entries.
                let mut start = at.base;
                for rec in sealed.lookup(execution_id.as_str())? {
                    let count = u64::from(rec.entries);
                    cursor.finished |= rec.state != 0;
                    let skip = from.max(at.base + at.lines);
                    if start + count > skip
                        && !sealed::read_lines(sealed, &rec, execution_id, start, skip, &mut f)?
                    {
                        return Ok(true);
                    }
                    start += count;
                }
                cursor.lines += (start - at.base).saturating_sub(at.lines);
                // Lines read from live segments that are not parts yet count too.
                at.lines = at.lines.max(start - at.base);
                cursor.days.insert(day.day, at);
            }
            for run in day.runs_after(hash, &mut at.seen, Some(&self.inner.waiters))? {
                if run.offset < at.offset {
                    continue; // read by an earlier call
                }
                at.offset = run.end();
                let start = cursor.lines;
                cursor.lines += u64::from(run.count);
                at.lines += u64::from(run.count);
                cursor.finished |= run.is_terminal();
                if cursor.lines <= from {
                    continue;
                }
                if !read_run_lines(&day, &run, execution_id, start, from, &mut f)? {
                    return Ok(true);
                }
            }
            cursor.days.insert(day.day, at);
        }
        Ok(cursor.lines > 0)
    }

    /// The summary [`list`](LogStore::list) gives for one execution, from this execution's
    /// index entries only (`list` reads every execution's).
    pub fn execution_summary(
        &self,
        execution_id: &ExecutionId,
        cache: &mut RunCache,
    ) -> Result<ExecutionSummary> {
        self.refresh_days()?;
        let hash = exec_hash(execution_id.as_str());
        let mut summary: Option<ExecutionSummary> = None;
        let mut terminal = None;
        for day in self.days() {
            if let Some(sealed) = day.sealed() {
                for rec in sealed.lookup(execution_id.as_str())? {
                    let s = summary.get_or_insert_with(|| ExecutionSummary {
                        execution_id: execution_id.clone(),
                        first_ts: rec.min_ts,
                        last_ts: rec.max_ts,
                        entries: 0,
                        errors: 0,
                        final_state: None,
                    });
                    s.first_ts = s.first_ts.min(rec.min_ts);
                    s.last_ts = s.last_ts.max(rec.max_ts);
                    s.entries += u64::from(rec.entries);
                    s.errors += u64::from(rec.errors);
                    if let Some(state) = state_name(rec.state) {
                        s.final_state = Some(state.to_owned());
                        terminal = None; // a later live day's terminal run still wins
                    }
                }
            }
            for run in LogStore::runs_of(&day, hash, cache)? {
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
            summary.final_state = None;
            let bytes = day.read_run(&run, usize::MAX)?;
            let (kind, at) = day.frames(&run);
            record::for_each_frame_as(&bytes, kind, at, |_, p| {
                if p.execution_id == execution_id.as_str()
                    && crate::journal::recovery::is_terminal(&p)
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
    let (kind, at) = day.frames(run);
    let mut line = start;
    let mut more = true;
    let damage = record::for_each_frame_as(&bytes, kind, at, |_, p| {
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
        tracing::warn!(file = %day.path().display(), offset = run.offset + at as u64, len, error = %e, "skipped damaged bytes (run `logstore verify`)");
        crate::observe::damage(1);
    }
    Ok(more)
}

#[cfg(test)]
mod tests;
