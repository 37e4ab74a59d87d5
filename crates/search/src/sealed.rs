//! Searching a sealed day (format v2): ask each block's metadata and token filter first, and
//! decompress only the blocks that may hold a match.
//!
//! A block is skipped when its time range misses `since..until`, when it has no entry at the
//! minimum level or above, when no source / task / execution of it fits the filters, or when
//! its bloom filter says one of the query's words is in none of its messages. A rare word thus
//! reads about 1 % of the blocks that lack it (the filter's false-positive rate) plus the blocks
//! that have it. A regex cannot ask the filter (it has no words to ask), so it reads every
//! block that the other conditions leave.
//!
//! The kept blocks are grouped into units of up to [`BLOCKS_PER_UNIT`] for the workers. A
//! block is decompressed into a buffer the worker reuses, its columns parsed, and the query
//! run once over its whole message column (`column.rs`); only the entries whose message
//! matches have their other fields looked at (the filters), and only matches become owned
//! entries.

use std::cell::RefCell;
use std::sync::Arc;

use super::column;
use super::query::Fields;
use super::unit::{Counters, Ctx, Found, Unit};
use super::{Hit, Place, Position, Query, SearchDamage};
use logstore_store::access::DayFiles;
use logstore_store::access::PayloadRef;
use logstore_store::access::{BlockMeta, BlockScratch, SealedDay};
use logstore_store::{ExecutionId, TaskId};
use logstore_store::{Result, StoreError};

/// Blocks (about 256 KiB raw each) per unit of work: a few MiB, as for a segment.
const BLOCKS_PER_UNIT: usize = 8;

/// Adds the units of a sealed day: the blocks whose metadata may match, in file order.
/// Returns the number of blocks the day has (kept or not), None if it is not a sealed day.
pub(crate) fn plan(day: &Arc<DayFiles>, query: &Query, units: &mut Vec<Unit>) -> Option<u64> {
    let sealed = day.sealed()?;
    let metas = sealed.blocks();
    let kept: Vec<u32> = metas
        .iter()
        .enumerate()
        .filter(|(_, m)| may_match(query, m))
        .filter_map(|(i, _)| u32::try_from(i).ok())
        .collect();
    for chunk in kept.chunks(BLOCKS_PER_UNIT) {
        units.push(Unit::Blocks {
            day: Arc::clone(day),
            blocks: chunk.to_vec(),
        });
    }
    Some(metas.len() as u64)
}

/// Whether every entry of the day is outside the query's `since..until`, by the time ranges of
/// the block table (no filter is read). A damaged table entry could hide anything: no.
pub(crate) fn outside_range(sealed: &SealedDay, query: &Query) -> bool {
    if query.since_ms.is_none() && query.until_ms.is_none() {
        return false;
    }
    sealed.block_times().all(|e| {
        e.is_some_and(|(min_ts, max_ts)| {
            query.since_ms.is_some_and(|s| max_ts < s)
                || query.until_ms.is_some_and(|u| min_ts >= u)
        })
    })
}

/// False only when no entry of the block can match `query`.
fn may_match(query: &Query, m: &BlockMeta) -> bool {
    let level_ok = query
        .min_level
        .is_none_or(|l| m.level_mask >> l.min(7) != 0);
    level_ok
        && query.since_ms.is_none_or(|s| m.max_ts >= s)
        && query.until_ms.is_none_or(|u| m.min_ts < u)
        && query
            .source_prefix
            .as_deref()
            .is_none_or(|p| m.may_have_source_prefix(p))
        && query.task_id.as_deref().is_none_or(|t| m.may_have_task(t))
        && query
            .execution_prefix
            .as_deref()
            .is_none_or(|p| m.may_have_execution_prefix(p))
        && query.tokens().all(|t| m.may_contain_word(t))
}

thread_local! {
    /// Each worker thread reuses its buffers and zstd context from block to block.
    static SCRATCH: RefCell<BlockScratch> = RefCell::default();
}

/// Reads `blocks` of `day` in order, handing matches and damage to `out`.
pub(crate) fn scan(
    day: &DayFiles,
    blocks: &[u32],
    ctx: &Ctx,
    out: &mut dyn FnMut(Found) -> bool,
) -> Result<()> {
    let Some(sealed) = day.sealed() else {
        return Ok(());
    };
    let query = &ctx.query;
    let filters = query.has_filters();
    let mut failed = None;
    SCRATCH.with_borrow_mut(|scratch| {
        sealed.scan_blocks(blocks, scratch, &mut |b, read| {
            if ctx.cancelled() {
                return false;
            }
            Counters::add(&ctx.stats.blocks_read, 1);
            match read {
                Ok(cols) => {
                    let (mut exec, mut task) = (None, None);
                    let mut more = true;
                    column::for_each_match(query, cols.messages(), cols.message_offsets(), |k| {
                        let found = if ctx.count_only && !filters {
                            Found::Counted
                        } else {
                            let p = cols.payload(k);
                            if filters && !query.filters_pass(&Fields::from(&p)) {
                                return true;
                            }
                            if ctx.count_only {
                                Found::Counted
                            } else {
                                hit(day, sealed.path(), b, k, &p, &mut exec, &mut task)
                            }
                        };
                        more = out(found);
                        more
                    });
                    more
                }
                // A damaged block loses its own entries only: report it and go on.
                Err(StoreError::Corrupt {
                    file,
                    offset,
                    reason,
                }) => out(Found::Damage(SearchDamage {
                    file,
                    offset,
                    reason,
                })),
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })
    })?;
    failed.map_or(Ok(()), Err)
}

/// The hit for entry `k` of block `b` (or the damage, if the entry does not build).
fn hit(
    day: &DayFiles,
    file: &std::path::Path,
    b: u32,
    k: usize,
    p: &PayloadRef<'_>,
    exec: &mut Option<ExecutionId>,
    task: &mut Option<TaskId>,
) -> Found {
    match p.to_entry_sharing(exec, task) {
        Ok(entry) => Found::Hit(Hit {
            entry,
            seq: p.number(),
            position: Position {
                day: day.day(),
                place: Place::Block {
                    block: b,
                    entry: u32::try_from(k).unwrap_or(u32::MAX),
                },
            },
        }),
        Err(e) => Found::Damage(SearchDamage {
            file: file.to_owned(),
            offset: 0,
            reason: format!("block {b}, entry {k}: {e}"),
        }),
    }
}
