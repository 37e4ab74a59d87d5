//! Summaries: every execution with its totals (`list`), and sizes and counts per day (`stats`),
//! from either layout of a day without reading its entries: live-layout days from their index runs,
//! sealed days from their execution table.

use crate::day::Day;
use crate::error::Result;
use crate::journal::index::IndexEntry;
use crate::journal::record;
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

impl LogStore {
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
    /// Sets the gauges of what the store's files hold now: days by state, parts, segments
    /// and days waiting for the sealer (`observe`'s [`DAYS`](crate::observe::DAYS) and
    /// the others). A server calls it at each scrape; a failed listing leaves them as they were.
    pub fn record_gauges(&self) {
        use crate::observe::{DAYS, DAYS_WAITING, PARTS, SEGMENTS_WAITING};
        use metrics::gauge;
        if self.refresh_days().is_err() {
            return;
        }
        let days = self.days();
        let sealed = days.iter().filter(|d| d.is_whole()).count();
        let parts: usize = days.iter().map(|d| d.part_count()).sum();
        let segments: usize = days.iter().map(|d| d.segs().len()).sum();
        let newest = days.iter().map(|d| d.day()).max();
        let waiting_days = days
            .iter()
            .filter(|d| !d.is_whole() && Some(d.day()) != newest)
            .count();
        gauge!(DAYS, "state" => "sealed").set(sealed as f64);
        gauge!(DAYS, "state" => "live").set((days.len() - sealed) as f64);
        gauge!(PARTS).set(parts as f64);
        gauge!(SEGMENTS_WAITING).set(segments.saturating_sub(1) as f64);
        gauge!(DAYS_WAITING).set(waiting_days as f64);
    }
}
