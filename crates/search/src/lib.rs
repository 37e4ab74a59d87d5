//! Search: find entries of any execution, on any day, by words, phrase or regex.
//!
//! ```text
//!  Search (plain parameters) ─ compile ─► Query (words, phrases, regex, filters, prefilter)
//!  LogStore::search ─► plan: each day cut into units of work, in store order
//!        a day provably outside --since/--until: skipped whole (sealed: its block table;
//!                           live / sorted index: its index runs, which record their time ranges)
//!        live day / live-layout day: byte ranges of the segment, cut at run starts from the index
//!        sealed day:        ranges of blocks whose filters may match (the others are skipped)
//!    ─► workers (one per core): unit k goes to worker k mod n; each scans its units in order
//!        segment: aho-corasick over the raw frames; only frames with a hit are checked
//!                 (CRC) and decoded (live.rs)
//!        blocks:  decompress only the blocks that may match (sealed.rs), then one literal
//!                 scan over each block's whole message column (column.rs, prefilter.rs);
//!                 only messages with a hit are tested, only matches become entries
//!    ─► Matches (results.rs): reads unit 0's results, then unit 1's ...: store order,
//!        bounded channels, so memory stays flat and a limit stops the workers early
//! ```
//!
//! **Order.** Days oldest first; within a day, the order the day stores its entries: a live
//! day in write (flush) order, a sealed day execution by execution, each in append order.
//! [`Search::reverse`] gives exactly the reverse. Every [`Hit`] carries its [`Position`]
//! (the day and the frame offset, or block and entry), enough to open it in context.
//!
//! **Damage** is skipped and reported, never silent: a frame that could hold a match and fails
//! its CRC, a block that fails its CRC, and a segment shorter than its index are skipped, logged
//! with `tracing`, and listed by [`Matches::damage`]. (A damaged frame that holds none of the
//! query's literals is never looked at: it could not have been a match. `logstore verify`
//! checks every byte.)
//!
//! Word splitting and Unicode case folding are described in the module doc of `query.rs`:
//! words are lowercased with `str::to_lowercase`, not fully case-folded.

mod column;
mod live;
mod prefilter;
pub(crate) mod query;
mod results;
mod sealed;
mod unit;

use serde::{Deserialize, Serialize};

use logstore_store::Day;
use logstore_store::StoreError;
use logstore_store::{Filter, LogEntry, LogStore};

pub use query::{words, Query};

pub use results::{Matches, SearchStats};

/// What to search for: plain parameters (the CLI's flags, an HTTP query string), checked by
/// [`Search::compile`] or [`StoreSearch::search`].
///
/// Which entries are wanted is said as for a query of one execution, with the store's
/// [`Filter`] (level, task, source, time range, and `limit`: at most this many matches;
/// `tail` is for queries and not used here); the search adds what to match in the message,
/// and which executions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Search {
    /// Terms that must all match the message: one word each, or a phrase when a term holds
    /// several words. Case-insensitive, on word boundaries.
    pub terms: Vec<String>,
    /// A regex (the `regex` crate) the message must match.
    pub regex: Option<String>,
    /// Level, task, source, time range and how many matches at most.
    #[serde(flatten)]
    pub filter: Filter,
    /// Only entries of executions whose id starts with this.
    pub execution_prefix: Option<String>,
    /// Newest first (the exact reverse of the store order).
    pub reverse: bool,
}

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The regex does not parse.
    #[error("bad regex {pattern:?}: {reason}")]
    BadRegex {
        /// The pattern given.
        pattern: String,
        /// The regex crate's explanation, with the position.
        reason: String,
    },
    /// A term has no word character, so it can never match a word.
    #[error("search term {term:?} has no letters, digits or '_': words are matched on word boundaries; use --regex to match other characters")]
    NoWords {
        /// The term given.
        term: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One matching entry and where it is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The entry.
    pub entry: LogEntry,
    /// Its sequence number (`docs/FORMAT.md`): `None` for an entry written before entries had
    /// one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Where it is.
    pub position: Position,
}

/// Where a [`Hit`] is stored: enough to read the entries around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Position {
    /// The day whose file holds it (the UTC day of the write, not of the timestamp).
    #[serde(serialize_with = "day_text")]
    pub day: Day,
    /// The place in that day's file.
    pub place: Place,
}

/// The place of an entry inside a day: its sealed blocks (parts, or the sealed day) come
/// first, then its live segments, which is the order of the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Entry `entry` of block `block` of the day's sealed files (blocks are numbered across
    /// the day's parts, and keep their numbers when parts merge).
    Block {
        /// The block number.
        block: u32,
        /// The entry within the block.
        entry: u32,
    },
    /// Byte offset of the record frame in segment `segment` of the day (0: a day written
    /// before segments rolled).
    Segment {
        /// The segment's number in its day.
        segment: u32,
        /// The offset in that segment file.
        offset: u64,
    },
}

fn day_text<S: serde::Serializer>(day: &Day, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(day)
}

/// A damaged stretch that a search skipped: the same report as `verify`'s.
pub type SearchDamage = logstore_store::Problem;

/// The result of [`LogStore::search_count`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCount {
    /// Matches (at most the search's limit).
    pub matches: u64,
    /// Damaged records and blocks skipped.
    pub damage: Vec<SearchDamage>,
    /// The work done.
    pub stats: SearchStats,
}

/// What search costs on disk in the sealed days: the block filters and the block table's
/// per-block metadata, against the whole files (see [`LogStore::search_overhead`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SearchOverhead {
    /// Sealed days counted.
    pub sealed_days: u64,
    /// Bytes of their sealed files.
    pub sealed_bytes: u64,
    /// Bytes of their token filters (words, sources, tasks, executions).
    pub filter_bytes: u64,
    /// Bytes of the block-table fields only search reads (time range, level mask, filter
    /// offset, length and CRC: 33 of each block's 64).
    pub block_meta_bytes: u64,
}

/// Block-table bytes per block that exist for search: min/max time (16), level mask (1), filter
/// offset (8), length (4) and CRC (4) of the 64-byte entry (`docs/FORMAT.md`); the rest serve queries.
const SEARCH_META_PER_BLOCK: u64 = 16 + 1 + 8 + 4 + 4;

/// The units of work of a search, day by day.
#[derive(Default)]
struct Plan {
    units: Vec<unit::Unit>,
    /// Blocks of the sealed days planned (kept by their filters or not).
    blocks: u64,
    /// Days left out because they are outside `since..until`.
    skipped: u64,
}

impl Plan {
    /// Adds the units of `day`: its sealed blocks, then its live segments. False if a
    /// segment's index vanished (it became a part since the caller took its view).
    fn add(
        &mut self,
        day: &std::sync::Arc<logstore_store::access::DayFiles>,
        query: &Query,
    ) -> Result<bool, StoreError> {
        let mut outside = day.sealed().is_none_or(|s| sealed::outside_range(s, query));
        for seg in day.segs() {
            outside &= live::outside_range(seg, query)?;
        }
        if outside {
            self.skipped += 1;
            return Ok(true);
        }
        let mut units = Vec::new();
        if let Some(n) = sealed::plan(day, query, &mut units) {
            self.blocks += n;
        }
        for seg in day.segs() {
            if !live::plan(seg, &mut units)? {
                return Ok(false);
            }
        }
        self.units.append(&mut units);
        Ok(true)
    }
}

/// Search as methods of [`LogStore`]: `use logstore_search::StoreSearch` (the `logstore`
/// facade re-exports it) and call `store.search(&search)`.
pub trait StoreSearch {
    /// The bytes the sealed days spend so that search can skip blocks.
    fn search_overhead(&self) -> Result<SearchOverhead, StoreError>;

    /// Counts the matches of `search` without building them (what `logstore search --count`
    /// prints): the count (at most `search.filter.limit`), the damage met, and the work done.
    fn search_count(&self, search: &Search) -> Result<SearchCount, SearchError>;

    /// Searches every day of the store; the matches stream out of the returned iterator in
    /// store order (or its reverse), computed by one worker per core a few units ahead.
    /// Dropping the iterator stops the workers. A bad query is refused before any file is read.
    fn search(&self, search: &Search) -> Result<Matches, SearchError>;
}

impl StoreSearch for LogStore {
    fn search_overhead(&self) -> Result<SearchOverhead, StoreError> {
        self.refresh_days()?;
        let mut o = SearchOverhead::default();
        for day in self.days() {
            let Some(sealed) = day.sealed() else {
                continue;
            };
            o.sealed_days += 1;
            o.sealed_bytes += std::fs::metadata(sealed.path())
                .map_err(StoreError::io("read sealed file", sealed.path()))?
                .len();
            o.filter_bytes += sealed.filter_bytes();
            o.block_meta_bytes +=
                SEARCH_META_PER_BLOCK * sealed.block_times().flatten().count() as u64;
        }
        Ok(o)
    }

    fn search_count(&self, search: &Search) -> Result<SearchCount, SearchError> {
        let mut matches = start_search(self, search, true)?;
        let matches_found = matches.count_all()?;
        Ok(SearchCount {
            matches: matches_found,
            damage: matches.damage().to_vec(),
            stats: matches.stats(),
        })
    }

    fn search(&self, search: &Search) -> Result<Matches, SearchError> {
        start_search(self, search, false)
    }
}

fn start_search(
    store: &LogStore,
    search: &Search,
    count_only: bool,
) -> Result<Matches, SearchError> {
    let query = search.compile()?;
    store.refresh_days()?;
    let mut plan = Plan::default();
    for day in store.days() {
        if !plan.add(&day, &query)? {
            // A segment became a part since the listing: the sealer swaps the day's view
            // before it deletes the segment, so a fresh view has it in its parts.
            store.refresh_days()?;
            let fresh = store.days().into_iter().find(|d| d.day() == day.day());
            if let Some(fresh) = fresh {
                plan.add(&fresh, &query)?;
            }
        }
    }
    let Plan {
        mut units,
        blocks,
        skipped,
    } = plan;
    if search.reverse {
        units.reverse();
    }
    let damage = store.unreadable_days();
    for d in &damage {
        tracing::warn!(file = %d.file.display(), reason = %d.reason, "search skipped an unreadable day (run `logstore verify`)");
    }
    Ok(Matches::start(
        query,
        units,
        (blocks, skipped),
        damage,
        search.reverse,
        search.filter.limit,
        count_only,
    ))
}
