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
use crate::store::{DayFiles, DayIndex, LogStore};
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

/// Executions' runs found so far in days read by scanning another process's live index
/// (the day a server next to a running engine reads most), so that the next call scans only
/// the index entries added since. Without it every page of a 10 M-entry live day would scan
/// the whole 560 MB index. Sealed days and the writer's own day answer from their indexes
/// directly and are not cached. Pass a new (default) one when there is nothing to reuse.
#[derive(Debug, Default, Clone)]
pub struct RunCache {
    /// By day and execution hash (one cache may serve several executions).
    days: HashMap<(Day, u64), ScannedRuns>,
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
    /// The runs of `hash` in `day`, in segment order, through `cache` for scanned days.
    fn runs_of(day: &DayFiles, hash: u64, cache: &mut RunCache) -> Result<Vec<IndexEntry>> {
        let DayIndex::Scan(path) = &day.index else {
            return day.runs_after(hash, &mut 0);
        };
        use std::os::unix::fs::MetadataExt;
        let file = match std::fs::metadata(path.path()) {
            Ok(m) => (m.ino(), m.len()),
            Err(_) => return day.runs_after(hash, &mut 0),
        };
        let slot = cache.days.entry((day.day, hash)).or_insert(ScannedRuns {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, Level, LogEntry};

    fn entry(exec: &str, i: usize) -> LogEntry {
        LogEntry::new(
            ExecutionId::new(exec).unwrap(),
            1_795_608_000_000 + i as i64,
            Level::Info,
            "worker",
            format!("{exec} {i}"),
        )
    }

    fn lines(store: &LogStore, exec: &str, from: u64, cache: &mut RunCache) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let id = ExecutionId::new(exec).unwrap();
        store
            .scan_lines(&id, from, &Filter::default(), cache, |line, p| {
                out.push((line, p.message.to_owned()));
                true
            })
            .unwrap();
        out
    }

    #[test]
    fn lines_seek_by_run_counts_and_a_cache_sees_new_runs() {
        let dir = tempfile::tempdir().unwrap();
        let writer = LogStore::open(dir.path()).unwrap();
        let mut n = 0;
        let mut write = |count: usize| {
            for _ in 0..count {
                writer.append(&entry("a", n)).unwrap();
                writer.append(&entry("b", n)).unwrap();
                n += 1;
                if n % 7 == 0 {
                    writer.flush(Durability::Written).unwrap(); // runs of several sizes
                }
            }
            writer.flush(Durability::Written).unwrap();
        };
        write(250);
        // Another handle reads the live day by scanning its index, as another process does.
        let reader = LogStore::open_read_only(dir.path()).unwrap();
        let mut cache = RunCache::default();
        let all = lines(&reader, "a", 0, &mut cache);
        let expect = |from: usize, to: usize| -> Vec<(u64, String)> {
            (from..to).map(|i| (i as u64, format!("a {i}"))).collect()
        };
        assert_eq!(all, expect(0, 250));
        assert_eq!(lines(&reader, "a", 123, &mut cache), expect(123, 250));
        write(100);
        // The cache scans only the new index entries, and misses none.
        assert_eq!(lines(&reader, "a", 240, &mut cache), expect(240, 350));
        assert_eq!(
            lines(&reader, "a", 0, &mut RunCache::default()),
            expect(0, 350)
        );
        assert_eq!(lines(&reader, "a", 350, &mut cache), []);
        let summary = reader
            .execution_summary(&ExecutionId::new("a").unwrap(), &mut cache)
            .unwrap();
        assert_eq!(summary.entries, 350);
        assert_eq!(
            Some(&summary),
            reader
                .list()
                .unwrap()
                .iter()
                .find(|s| s.execution_id.as_str() == "a")
        );
        let unknown = reader.scan_lines(
            &ExecutionId::new("zz").unwrap(),
            0,
            &Filter::default(),
            &mut cache,
            |_, _| true,
        );
        assert!(matches!(unknown, Err(StoreError::UnknownExecution(_))));
    }

    #[test]
    fn a_line_cursor_resumes_without_loss_or_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let writer = LogStore::open(dir.path()).unwrap();
        let reader = LogStore::open_read_only(dir.path()).unwrap();
        let id = ExecutionId::new("a").unwrap();
        let mut cursor = LineCursor::default();
        let mut seen = Vec::new();
        let mut poll = |cursor: &mut LineCursor, from: u64| {
            reader
                .read_new_lines(&id, cursor, from, |line, p| {
                    seen.push((line, p.message.to_owned()));
                    true
                })
                .unwrap()
        };
        assert!(!poll(&mut cursor, 0)); // nothing stored yet
        for i in 0..30 {
            writer.append(&entry("a", i)).unwrap();
            if i % 10 == 9 {
                writer.flush(Durability::Written).unwrap();
                assert!(poll(&mut cursor, 0));
            }
        }
        // A new cursor from line 25 (a resumed follower) skips the runs before it unread.
        let mut resumed = LineCursor::default();
        poll(&mut resumed, 25);
        assert_eq!(cursor.lines(), 30);
        let got: Vec<u64> = seen.iter().map(|(l, _)| *l).collect();
        let mut want: Vec<u64> = (0..30).collect();
        want.extend(25..30);
        assert_eq!(got, want);
        assert!(!cursor.is_finished());
    }
}
