//! A page of executions, newest first, read from the catalogs: what `/api/executions`, the
//! viewer's list and `logstore list -n N` show first.
//!
//! Every sealed file and part of version 5 lists its executions by first entry (its catalog,
//! `sealed::catalog`). A page merges those lists newest first, as a k-way merge reading one
//! record at a time, and takes each execution's totals from its records in every other file
//! (one read per file, through the catalog's fence). So the first page costs what the page
//! holds, times the number of files, however many executions the store has. The rest of the
//! store, which is small or old, is summed up front as before: the live segments (bounded by
//! `part_bytes`) and files of older versions or with a damaged catalog.
//!
//! A filter that few executions pass (a rare state, an old time range) would make the walk look
//! up most of the store one read at a time: past a budget of candidates, the page is summed from
//! every record up front instead, which costs what the store holds, as before the catalogs.
//!
//! An execution spans files when it runs across a roll or midnight. Its place in the listing
//! is its first entry, over all files; the merge meets each of its records, and keeps the
//! execution only at the record whose timestamp is its first (the others are skipped).

use std::collections::{BinaryHeap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::error::Result;
use crate::journal::commit::{ByExecHash, PrehashedHasher};
use crate::journal::index::IndexEntry;
use crate::read::day_files::DayFiles;
use crate::read::summary::{
    final_state, first_id, ExecutionSummary, ListFilter, ListPage, Terminal,
};
use crate::sealed::layout::{state_name, ExecRecord};
use crate::sealed::SealedFile;
use crate::ExecutionId;
use crate::LogStore;

/// Where a source sits in append order: (day, file within the day; live segments last). The
/// newest terminal entry gives an execution's state.
type Order = (usize, usize);

const LIVE: usize = usize::MAX;

/// Where its name is read from.
#[derive(Clone, Copy)]
enum Name {
    File(usize, ExecRecord),
    Run(usize, IndexEntry),
}

/// An execution's totals, summed over the sources seen so far.
#[derive(Clone, Copy)]
struct Agg {
    hash: u64,
    first: i64,
    last: i64,
    entries: u64,
    errors: u64,
    terminal: Option<(Order, Terminal)>,
    name: Name,
}

impl Agg {
    fn add(&mut self, o: &Agg) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.entries += o.entries;
        self.errors += o.errors;
        if let Some((at, t)) = o.terminal {
            // Sources are added in append order: among equals, the later one.
            if self.terminal.is_none_or(|(mine, _)| at >= mine) {
                self.terminal = Some((at, t));
            }
        }
    }

    /// False if the totals alone show that the execution fails `filter` (its time range, or
    /// a state the sealed records already name).
    fn may_pass(&self, filter: &ListFilter) -> bool {
        filter.since_ms.is_none_or(|t| self.last >= t)
            && filter.until_ms.is_none_or(|t| self.first < t)
            && match (filter.state.as_deref(), self.terminal) {
                (None, _) => true,
                (Some("RUNNING"), t) => t.is_none(),
                (Some(_), None) => false,
                (Some(want), Some((_, Terminal::State(s)))) => want == s,
                // A live run's state is read with its record.
                (Some(_), Some((_, Terminal::Run(..)))) => true,
            }
    }

    fn of_record(fi: usize, order: Order, r: &ExecRecord) -> Agg {
        Agg {
            hash: r.hash,
            first: r.min_ts,
            last: r.max_ts,
            entries: u64::from(r.entries),
            errors: u64::from(r.errors),
            terminal: state_name(r.state).map(|s| (order, Terminal::State(s))),
            name: Name::File(fi, *r),
        }
    }
}

/// A file with a catalog, walked newest first entry first.
struct Walk {
    fi: usize,
    /// Next page to read (pages are read from the last).
    page: usize,
    /// Record numbers of the current page not yet taken (the newest at the end).
    pending: Vec<u32>,
}

/// A file of the merge.
struct Source {
    file: Arc<SealedFile>,
    order: Order,
    /// Read through its catalog; `false` once it is summed into the rest (no catalog, or a
    /// damaged one).
    catalog: bool,
}

/// A list of the merge that is not refilled: records of a file whose catalog is damaged.
const NO_REFILL: usize = usize::MAX;

/// Candidates a page may sum through the catalogs before it sums the whole store instead: a
/// state or time filter that few executions pass would otherwise look up every execution in
/// every file, one read each.
fn budget(limit: usize) -> usize {
    limit.saturating_mul(16).saturating_add(4096)
}

/// The sealed files of `days` (those with a catalog walk it, unless `sum_all`), and every
/// execution of the others, summed by hash up front: the records of files without a catalog
/// and the runs of the live segments.
fn sources_of(days: &[Arc<DayFiles>], sum_all: bool) -> Result<(Vec<Source>, ByExecHash<Agg>)> {
    let mut sources: Vec<Source> = Vec::new();
    // Everything without a catalog, summed by hash up front.
    // Sized for the tables it will hold: growing a map of a million 200-byte totals
    // copies it again at every doubling.
    let summed_execs: usize = days
        .iter()
        .filter_map(|d| d.sealed())
        .flat_map(|s| s.files())
        .filter(|f| sum_all || !f.has_catalog())
        .map(|f| f.executions() as usize)
        .sum();
    let mut rest: ByExecHash<Agg> =
        ByExecHash::with_capacity_and_hasher(summed_execs, Default::default());
    let mut add_rest = |hash: u64, a: Agg| {
        rest.entry(hash).and_modify(|x| x.add(&a)).or_insert(a);
    };
    for (di, day) in days.iter().enumerate() {
        if let Some(sealed) = day.sealed() {
            for (k, file) in sealed.files().enumerate() {
                let fi = sources.len();
                let catalog = file.has_catalog() && !sum_all;
                sources.push(Source {
                    file: Arc::clone(file),
                    order: (di, k),
                    catalog,
                });
                if !catalog {
                    file.for_each_record(|r| add_rest(r.hash, Agg::of_record(fi, (di, k), &r)))?;
                }
            }
        }
        day.for_each_run(&mut |run| {
            add_rest(
                run.hash,
                Agg {
                    hash: run.hash,
                    first: run.min_ts,
                    last: run.max_ts,
                    entries: u64::from(run.count),
                    errors: u64::from(run.errors),
                    terminal: run
                        .is_terminal()
                        .then_some(((di, LIVE), Terminal::Run(di, run))),
                    name: Name::Run(di, run),
                },
            );
            Ok(())
        })?;
    }
    Ok((sources, rest))
}

impl LogStore {
    /// Every execution in the store with its summary, oldest first (by first entry, then id):
    /// the listing of [`executions`](LogStore::executions), whole and reversed.
    pub fn list(&self) -> Result<Vec<ExecutionSummary>> {
        let mut all = self.executions(&ListFilter::default())?.executions;
        all.reverse();
        Ok(all)
    }

    /// The executions that pass `filter`, newest first (by first entry, then id), at most
    /// `filter.limit`, after `filter.after`.
    ///
    /// With a limit and no id prefix, the page is read newest first from the sealed files'
    /// catalogs (see the module doc): its cost is the page's, not the store's. An id prefix
    /// needs every name, and no limit wants every execution: then every record and run is
    /// summed up front, and the merge reads names only until the page is full.
    pub fn executions(&self, filter: &ListFilter) -> Result<ListPage> {
        self.refresh_days()?;
        let limit = filter.limit.unwrap_or(usize::MAX);
        if filter.limit.is_some() && filter.prefix.is_none() {
            if let Some(page) = self.newest_page(filter, limit, false)? {
                return Ok(page);
            }
        }
        Ok(self.newest_page(filter, limit, true)?.unwrap_or(ListPage {
            executions: Vec::new(),
            next: None,
        }))
    }

    /// The page, through the catalogs; or, with `sum_all`, from every execution record and
    /// index run summed up front (the cost of the store, for the filters the catalogs do not
    /// serve). `None` if the catalogs' walk ran over its [`budget`].
    fn newest_page(
        &self,
        filter: &ListFilter,
        limit: usize,
        sum_all: bool,
    ) -> Result<Option<ListPage>> {
        let days = self.days();
        let (mut sources, mut rest) = sources_of(&days, sum_all)?;
        // Candidates newest first: the catalogs' records, and the summed rest.
        let mut heap: BinaryHeap<(i64, u64, usize)> = BinaryHeap::new();
        let mut walks: Vec<Walk> = Vec::new();
        // A bound on first entries worth looking at: newer ones are skipped unread.
        let bound = match (&filter.after, filter.until_ms) {
            (Some((ts, _)), Some(u)) => Some((*ts).min(u.saturating_sub(1))),
            (Some((ts, _)), None) => Some(*ts),
            (None, Some(u)) => Some(u.saturating_sub(1)),
            (None, None) => None,
        };
        for fi in 0..sources.len() {
            if sources[fi].catalog {
                let file = &sources[fi].file;
                let mut w = Walk {
                    fi,
                    page: file.time_page_count(),
                    pending: Vec::new(),
                };
                if let Some(b) = bound {
                    seek(file, &mut w, b)?;
                }
                walks.push(w);
                let wi = walks.len() - 1;
                push_next(&mut sources, &mut walks[wi], wi, &mut heap, &mut rest)?;
            }
        }
        // The rest enters the merge as one more list (index `walks.len()`).
        let mut rest_sorted: Vec<(i64, u64)> = rest.iter().map(|(&h, a)| (a.first, h)).collect();
        rest_sorted.sort_unstable();
        let rest_walk = walks.len();
        if let Some(&(ts, h)) = rest_sorted.last() {
            heap.push((ts, h, rest_walk));
        }

        let mut done: HashSet<u64, BuildHasherDefault<PrehashedHasher>> = HashSet::default();
        let mut summed = 0usize;
        let mut out: Vec<ExecutionSummary> = Vec::with_capacity(limit.saturating_add(1).min(4096));
        let mut group: Vec<ExecutionSummary> = Vec::new();
        let mut group_ts = None;
        while let Some((ts, hash, wi)) = heap.pop() {
            // Refill from the list the candidate came from.
            if wi == rest_walk {
                rest_sorted.pop();
                if let Some(&(t, h)) = rest_sorted.last() {
                    heap.push((t, h, rest_walk));
                }
            } else if wi != NO_REFILL {
                push_next(&mut sources, &mut walks[wi], wi, &mut heap, &mut rest)?;
            }
            if group_ts != Some(ts) {
                flush_group(&mut group, filter, &mut out);
                if out.len() > limit {
                    break;
                }
                group_ts = Some(ts);
            }
            if bound.is_some_and(|b| ts > b) || done.contains(&hash) {
                continue;
            }
            // Its totals over every source.
            summed += 1;
            if !sum_all && summed > budget(limit) {
                return Ok(None);
            }
            let mut agg = rest.get(&hash).copied();
            for (fi, s) in sources.iter().enumerate() {
                if !s.catalog {
                    continue;
                }
                for r in s.file.records_of_hash(hash)? {
                    let a = Agg::of_record(fi, s.order, &r);
                    match &mut agg {
                        Some(x) => x.add(&a),
                        None => agg = Some(a),
                    }
                }
            }
            let Some(agg) = agg else { continue };
            if agg.first != ts {
                continue; // met again at its first entry
            }
            done.insert(hash);
            // What can be decided before the name and state are read.
            if !agg.may_pass(filter) {
                continue;
            }
            if let Some(s) = self.summary(&days, &sources, &agg)? {
                group.push(s);
            }
        }
        flush_group(&mut group, filter, &mut out);
        let mut next = None;
        if out.len() > limit {
            out.truncate(limit);
            next = out
                .last()
                .map(|s| (s.first_ts, s.execution_id.as_str().to_owned()));
        }
        Ok(Some(ListPage {
            executions: out,
            next,
        }))
    }

    fn summary(
        &self,
        days: &[Arc<DayFiles>],
        sources: &[Source],
        a: &Agg,
    ) -> Result<Option<ExecutionSummary>> {
        let id = match a.name {
            Name::File(fi, r) => sources[fi]
                .file
                .name(&r)?
                .map(|n| ExecutionId::from_checked(&n)),
            Name::Run(di, run) => first_id(&days[di], &run)?,
        };
        // The first record or run met names no execution when it is damaged: any other of
        // the same hash may.
        let id = match id {
            Some(id) => Some(id),
            None => name_of_hash(days, a.hash)?,
        };
        let Some(execution_id) = id else {
            return Ok(None);
        };
        let final_state = match a.terminal {
            Some((_, Terminal::State(s))) => Some(s.to_owned()),
            Some((_, Terminal::Run(di, run))) => final_state(&days[di], &run)?,
            None => None,
        };
        Ok(Some(ExecutionSummary {
            execution_id,
            first_ts: a.first,
            last_ts: a.last,
            entries: a.entries,
            errors: a.errors,
            final_state,
        }))
    }
}

/// The name of execution `hash` from any of its records or runs that holds it (a damaged one
/// names none). Read only after damage: it looks through every file's table and every run.
fn name_of_hash(days: &[Arc<DayFiles>], hash: u64) -> Result<Option<ExecutionId>> {
    for day in days {
        if let Some(sealed) = day.sealed() {
            for file in sealed.files() {
                for r in file.records_of_hash(hash)? {
                    if let Some(n) = file.name(&r)? {
                        return Ok(Some(ExecutionId::from_checked(&n)));
                    }
                }
            }
        }
        let mut found = None;
        day.for_each_run(&mut |run| {
            if found.is_none() && run.hash == hash {
                found = first_id(day, &run)?;
            }
            Ok(())
        })?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Adds the executions of one first-timestamp group that pass the filter to `out`, by id
/// descending (the listing's order within a tie), after the cursor.
fn flush_group(
    group: &mut Vec<ExecutionSummary>,
    filter: &ListFilter,
    out: &mut Vec<ExecutionSummary>,
) {
    group.retain(|s| filter.matches(s));
    group.sort_unstable_by(|a, b| b.execution_id.as_str().cmp(a.execution_id.as_str()));
    if let Some((ats, aid)) = &filter.after {
        group.retain(|s| (s.first_ts, s.execution_id.as_str()) < (*ats, aid.as_str()));
    }
    out.append(group);
}

/// Puts the walk's next record on the heap. A damaged catalog page makes the whole file part
/// of the summed rest instead, and puts all its records on the heap at once.
fn push_next(
    sources: &mut [Source],
    w: &mut Walk,
    wi: usize,
    heap: &mut BinaryHeap<(i64, u64, usize)>,
    rest: &mut ByExecHash<Agg>,
) -> Result<()> {
    let s = &mut sources[w.fi];
    loop {
        if let Some(i) = w.pending.pop() {
            match s.file.record(i)? {
                Some(r) => {
                    heap.push((r.min_ts, r.hash, wi));
                    return Ok(());
                }
                None => continue, // a damaged record: `verify` reports it
            }
        }
        if w.page == 0 {
            return Ok(());
        }
        w.page -= 1;
        match s.file.time_page(w.page)? {
            Some(p) => w.pending = p,
            None => {
                tracing::warn!(file = %s.file.path().display(), "damaged catalog page; listing from the execution table (run `logstore verify`)");
                let (fi, order) = (w.fi, s.order);
                s.file.for_each_record(|r| {
                    let a = Agg::of_record(fi, order, &r);
                    rest.entry(r.hash).and_modify(|x| x.add(&a)).or_insert(a);
                    heap.push((r.min_ts, r.hash, NO_REFILL));
                })?;
                s.catalog = false;
                w.page = 0;
                w.pending.clear();
                return Ok(());
            }
        }
    }
}

/// Moves the walk past every record whose first entry is after `bound`, by a binary search
/// over the pages (each page's first record), so that a deep page or an early `until` does not
/// read what it skips.
fn seek(file: &SealedFile, w: &mut Walk, bound: i64) -> Result<()> {
    let first_ts = |p: usize| -> Result<Option<i64>> {
        let Some(page) = file.time_page(p)? else {
            return Ok(None);
        };
        Ok(match page.first() {
            Some(&i) => file.record(i)?.map(|r| r.min_ts),
            None => None,
        })
    };
    // The last page whose first record is at or before the bound holds the newest wanted.
    let (mut lo, mut hi) = (0usize, w.page);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match first_ts(mid)? {
            Some(t) if t <= bound => lo = mid + 1,
            Some(_) => hi = mid,
            // Damage: do not skip anything.
            None => return Ok(()),
        }
    }
    w.page = lo;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Durability, Level, LogEntry, LogStore, ManualClock};

    /// The fallback a page takes past its budget (everything summed up front) gives the same
    /// pages as the walk through the catalogs, for every filter and through every page.
    #[test]
    fn summing_everything_gives_the_pages_the_catalogs_give() {
        let dir = tempfile::tempdir().unwrap();
        let noon = 1_795_608_000_000i64;
        let clock = ManualClock::new(noon - 86_400_000);
        let config = || Config {
            part_bytes: 4 << 10,
            clock: std::sync::Arc::new(clock.clone()),
            ..Config::default()
        };
        for day in 0..2i64 {
            let store = LogStore::open_with(dir.path(), config()).unwrap();
            for i in 0..400i64 {
                let id = ExecutionId::new(format!("e{}", (i * 7 + day * 100) % 300)).unwrap();
                let ts = noon - 50_000_000 + day * 60_000_000 + (i % 37) * 1000;
                let e = if i % 9 == 0 {
                    // A terminal entry: the scheduler's, with the state in its metadata.
                    let meta = serde_json::json!({"state": "FAILED"});
                    LogEntry::new(id, ts + 1, Level::Info, "scheduler", "execution FAILED")
                        .with_metadata(meta.as_object().cloned().unwrap())
                } else {
                    LogEntry::new(id, ts, Level::Info, "s", "line")
                };
                store.append(&e).unwrap();
                if i % 50 == 49 {
                    store.flush(Durability::Written).unwrap();
                }
            }
            store.flush(Durability::Written).unwrap();
            store.seal().unwrap();
            drop(store);
            clock.advance(86_400_000);
        }
        let reader = LogStore::open_read_only(dir.path()).unwrap();
        reader.refresh_days().unwrap();
        for state in [None, Some("FAILED"), Some("RUNNING")] {
            for limit in [1, 7, 500] {
                let mut after = None;
                let mut listed = 0;
                loop {
                    let f = ListFilter {
                        state: state.map(str::to_owned),
                        limit: Some(limit),
                        after: after.clone(),
                        ..ListFilter::default()
                    };
                    let walked = reader.newest_page(&f, limit, false).unwrap().unwrap();
                    let summed = reader.newest_page(&f, limit, true).unwrap().unwrap();
                    assert_eq!(walked, summed, "{state:?} {limit} {after:?}");
                    listed += walked.executions.len();
                    match walked.next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
                assert!(listed > 0, "{state:?}: nothing listed");
            }
        }
    }
}
