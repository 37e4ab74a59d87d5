//! Summaries: every execution with its totals (`list`), and sizes and counts per day (`stats`),
//! from either layout of a day without reading its entries: live-layout days from their index runs,
//! sealed days from their execution table.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::day::Day;
use crate::error::Result;
use crate::journal::index::IndexEntry;
use crate::journal::record;
use crate::sealed::layout::state_name;
use crate::sealed::SealedDay;
use std::collections::HashSet;

use crate::names;
use crate::read::day_files::DayFiles;
use crate::read::day_files::DayIndex;
use crate::ExecutionId;
use crate::LogStore;

/// Where an execution's final state is: a live run to read (the index of its day and the
/// run), or known (a sealed file's execution table holds it).
#[derive(Clone, Copy)]
pub(crate) enum Terminal {
    Run(usize, IndexEntry),
    State(&'static str),
}

/// One execution's totals as one day holds them.
struct Piece {
    hash: u64,
    min_ts: i64,
    max_ts: i64,
    entries: u64,
    errors: u64,
    terminal: Option<Terminal>,
}

impl LogStore {
    /// Every execution in the store with a summary, oldest first.
    pub fn list(&self) -> Result<Vec<ExecutionSummary>> {
        self.refresh_days()?;
        let mut by_hash: HashMap<u64, (ExecutionSummary, Option<Terminal>)> = HashMap::new();
        let days = self.days();
        for (di, day) in days.iter().enumerate() {
            let mut add =
                |piece: Piece, id: &mut dyn FnMut() -> Result<Option<ExecutionId>>| -> Result<()> {
                    let slot = match by_hash.entry(piece.hash) {
                        Entry::Occupied(o) => o.into_mut(),
                        Entry::Vacant(v) => {
                            // A run whose first record is damaged names no execution; a later run
                            // of the same hash will.
                            let Some(id) = id()? else { return Ok(()) };
                            v.insert((
                                ExecutionSummary {
                                    execution_id: id,
                                    first_ts: piece.min_ts,
                                    last_ts: piece.max_ts,
                                    entries: 0,
                                    errors: 0,
                                    final_state: None,
                                },
                                None,
                            ))
                        }
                    };
                    let s = &mut slot.0;
                    s.first_ts = s.first_ts.min(piece.min_ts);
                    s.last_ts = s.last_ts.max(piece.max_ts);
                    s.entries += piece.entries;
                    s.errors += piece.errors;
                    if piece.terminal.is_some() {
                        slot.1 = piece.terminal;
                    }
                    Ok(())
                };
            if let Some(sealed) = day.sealed() {
                let mut records = Vec::new();
                sealed.for_each_record(|r| records.push(r))?;
                for r in records {
                    let piece = Piece {
                        hash: r.hash,
                        min_ts: r.min_ts,
                        max_ts: r.max_ts,
                        entries: u64::from(r.entries),
                        errors: u64::from(r.errors),
                        terminal: state_name(r.state).map(Terminal::State),
                    };
                    add(piece, &mut || {
                        Ok(sealed.name(&r)?.map(|n| ExecutionId::from_checked(&n)))
                    })?;
                }
            }
            day.for_each_run(&mut |run| {
                let piece = Piece {
                    hash: run.hash,
                    min_ts: run.min_ts,
                    max_ts: run.max_ts,
                    entries: u64::from(run.count),
                    errors: u64::from(run.errors),
                    terminal: run.is_terminal().then_some(Terminal::Run(di, run)),
                };
                add(piece, &mut || first_id(day, &run))
            })?;
        }
        let mut out = Vec::with_capacity(by_hash.len());
        for (_, (mut s, terminal)) in by_hash {
            s.final_state = match terminal {
                Some(Terminal::Run(di, run)) => final_state(&days[di], &run)?,
                Some(Terminal::State(name)) => Some(name.to_owned()),
                None => None,
            };
            out.push(s);
        }
        out.sort_by(|a, b| (a.first_ts, &a.execution_id).cmp(&(b.first_ts, &b.execution_id)));
        Ok(out)
    }

    /// Sizes and counts per day: its sealed file, or its parts and live segments.
    pub fn stats(&self) -> Result<Vec<DayStats>> {
        self.refresh_days()?;
        let mut out = Vec::new();
        let len = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        for day in self.days() {
            let mut st = match day.sealed() {
                Some(sealed) => {
                    let bytes = sealed.files().map(|f| len(f.path())).sum();
                    sealed_stats(sealed, bytes)?
                }
                None => DayStats {
                    day: day.day,
                    sealed: false,
                    version: 1,
                    segment_bytes: 0,
                    index_bytes: 0,
                    raw_bytes: 0,
                    disk_bytes: 0,
                    entries: 0,
                    runs: 0,
                    blocks: 0,
                    executions: 0,
                    parts: 0,
                    segments: 0,
                },
            };
            st.sealed = day.is_whole();
            st.parts = day.parts.len() as u64;
            if day.segs.is_empty() {
                out.push(st);
                continue;
            }
            let (mut entries, mut runs) = (0u64, 0u64);
            let mut execs: HashSet<u64> = HashSet::new();
            day.for_each_run(&mut |r| {
                execs.insert(r.hash);
                entries += u64::from(r.count);
                runs += 1;
                Ok(())
            })?;
            if let Some(sealed) = day.sealed() {
                sealed.for_each_record(|r| {
                    execs.insert(r.hash);
                })?;
            }
            let mut sorted = false;
            for seg in &day.segs {
                let dir = seg
                    .segment
                    .path()
                    .parent()
                    .map(std::path::Path::to_owned)
                    .unwrap_or_default();
                let segment_bytes = len(seg.segment.path());
                let index_bytes = len(&names::index_file(&dir, day.day, seg.seq))
                    + len(&names::sorted_index_file(&dir, day.day, seg.seq));
                sorted |= matches!(seg.index, DayIndex::Sorted(_));
                st.segment_bytes += segment_bytes;
                st.index_bytes += index_bytes;
                st.raw_bytes += segment_bytes + index_bytes;
                st.disk_bytes += segment_bytes + index_bytes;
            }
            st.segments = day.segs.len() as u64;
            st.sealed = sorted && day.sealed().is_none();
            st.entries += entries;
            st.runs = runs;
            st.executions = execs.len() as u64;
            if day.sealed().is_none() {
                st.version = 1;
            }
            out.push(st);
        }
        Ok(out)
    }
}

fn sealed_stats(sealed: &SealedDay, file_len: u64) -> Result<DayStats> {
    // An execution has one record per part it was in.
    let mut hashes = HashSet::new();
    sealed.for_each_record(|r| {
        hashes.insert(r.hash);
    })?;
    let executions = hashes.len() as u64;
    Ok(DayStats {
        day: sealed.day(),
        sealed: true,
        version: 2,
        segment_bytes: file_len,
        index_bytes: 0,
        raw_bytes: sealed.segment_bytes(),
        parts: 0,
        segments: 0,
        disk_bytes: file_len,
        entries: sealed.entries(),
        runs: 0,
        blocks: sealed.block_count() as u64,
        executions,
    })
}

pub(crate) fn first_id(day: &DayFiles, run: &IndexEntry) -> Result<Option<ExecutionId>> {
    let bytes = day.read_run(run, usize::MAX)?;
    // The first intact record of the run names the execution.
    let mut id = None;
    let (kind, at) = day.frames(run);
    record::for_each_frame_as(&bytes, kind, at, |_, p| {
        id = Some(ExecutionId::from_checked(p.execution_id));
        false
    });
    Ok(id)
}

pub(crate) fn final_state(day: &DayFiles, run: &IndexEntry) -> Result<Option<String>> {
    let bytes = day.read_run(run, usize::MAX)?;
    let mut state = None;
    let (kind, at) = day.frames(run);
    record::for_each_frame_as(&bytes, kind, at, |_, p| {
        if crate::journal::recovery::is_terminal(&p) {
            state = p
                .to_entry()
                .ok()
                .and_then(|e| e.terminal_state().map(str::to_owned));
        }
        true
    });
    Ok(state)
}

/// One execution in [`LogStore::list`]. As JSON (`logstore list --json`, the HTTP API's
/// `/api/executions`): `execution_id`, `first_timestamp`, `last_timestamp`, `entries`,
/// `errors`, `final_state` (null when no terminal entry is stored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecutionSummary {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Smallest entry timestamp.
    #[serde(rename = "first_timestamp")]
    pub first_ts: i64,
    /// Largest entry timestamp.
    #[serde(rename = "last_timestamp")]
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
    /// Whether the day is finished: a sealed file (`version` 2), or a version-1 segment with
    /// its sorted index (sealed by an older writer, rewritten at the next writer open).
    pub sealed: bool,
    /// 2 for a sealed file, 1 for the live layout (segment and index).
    pub version: u32,
    /// Segment file size (version 2: the sealed file's).
    pub segment_bytes: u64,
    /// Index file sizes (version 2: 0, the index is inside the sealed file).
    pub index_bytes: u64,
    /// Bytes of the day in the live layout, segment and index files (version 2: of the files
    /// it was sealed from). Compared with `disk_bytes`, what sealing saved.
    pub raw_bytes: u64,
    /// Bytes the day takes on disk, all its files.
    pub disk_bytes: u64,
    /// Entries.
    pub entries: u64,
    /// Index entries (runs) of a version-1 day; 0 for a sealed file.
    pub runs: u64,
    /// Blocks of a sealed file; 0 for a version-1 day.
    pub blocks: u64,
    /// Distinct executions (by hash).
    pub executions: u64,
    /// Parts of a day that is not sealed whole yet (closed segments sealed during the day).
    pub parts: u64,
    /// Segments in the live layout (the open one, and closed ones not yet parts).
    pub segments: u64,
}

/// Which executions a listing wants, newest first (`LogStore::executions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only executions in this state: `SUCCESS`, `FAILED`, `CANCELLED`, or `RUNNING` (no
    /// terminal entry stored).
    pub state: Option<String>,
    /// Only executions with an entry at or after this time (Unix ms): their last entry is.
    pub since_ms: Option<i64>,
    /// Only executions with an entry before this time: their first entry is.
    pub until_ms: Option<i64>,
    /// Only executions whose id starts with this.
    pub prefix: Option<String>,
    /// Only executions that come after this one in the listing (a page's `next`): by first
    /// timestamp, then id, both descending.
    pub after: Option<(i64, String)>,
    /// At most this many.
    pub limit: Option<usize>,
}

impl ListFilter {
    /// A state as the API and the CLI take it, any case: `SUCCESS`, `FAILED`, `CANCELLED` or
    /// `RUNNING`, upper-cased.
    pub fn parse_state(s: &str) -> std::result::Result<String, String> {
        let up = s.to_ascii_uppercase();
        match up.as_str() {
            "SUCCESS" | "FAILED" | "CANCELLED" | "RUNNING" => Ok(up),
            _ => Err(format!(
                "{s:?} is not a state: expected SUCCESS, FAILED, CANCELLED or RUNNING"
            )),
        }
    }

    /// Whether `s` passes every condition but the paging.
    pub fn matches(&self, s: &ExecutionSummary) -> bool {
        self.since_ms.is_none_or(|t| s.last_ts >= t)
            && self.until_ms.is_none_or(|t| s.first_ts < t)
            && self
                .prefix
                .as_deref()
                .is_none_or(|p| s.execution_id.as_str().starts_with(p))
            && match self.state.as_deref() {
                None => true,
                Some("RUNNING") => s.final_state.is_none(),
                Some(st) => s.final_state.as_deref() == Some(st),
            }
    }
}

/// A page of executions, newest first, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The executions, newest (by first entry) first.
    pub executions: Vec<ExecutionSummary>,
    /// The `after` of the next page, when there is more.
    pub next: Option<(i64, String)>,
}

impl LogStore {
    /// The executions that pass `filter`, newest first (by first entry, then id), at most
    /// `filter.limit`, after `filter.after`.
    ///
    /// With a limit and no id prefix, the page is read newest first from the sealed files'
    /// catalogs (`store::listing`): its cost is the page's, not the store's. An id prefix
    /// needs every name: then this is [`list`](LogStore::list), filtered.
    pub fn executions(&self, filter: &ListFilter) -> Result<ListPage> {
        match filter.limit {
            Some(limit) if filter.prefix.is_none() => self.executions_newest(filter, limit),
            _ => self.executions_all(filter),
        }
    }

    fn executions_all(&self, filter: &ListFilter) -> Result<ListPage> {
        let mut all = self.list()?;
        all.retain(|s| filter.matches(s));
        fn key(s: &ExecutionSummary) -> (i64, &str) {
            (s.first_ts, s.execution_id.as_str())
        }
        all.sort_unstable_by(|a, b| key(b).cmp(&key(a)));
        if let Some((ts, id)) = &filter.after {
            let start = all.partition_point(|s| key(s) >= (*ts, id.as_str()));
            all.drain(..start);
        }
        let mut next = None;
        if let Some(limit) = filter.limit {
            if all.len() > limit {
                all.truncate(limit);
                next = all
                    .last()
                    .map(|s| (s.first_ts, s.execution_id.as_str().to_owned()));
            }
        }
        Ok(ListPage {
            executions: all,
            next,
        })
    }
}
