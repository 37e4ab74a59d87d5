//! Lines of a sealed day (format v2): an execution's entries sit in a contiguous range of
//! blocks, so a line is reached by block counts, decompressing only from the block that holds
//! it.

use crate::error::Result;
use crate::journal::record::PayloadRef;
use crate::sealed::layout::ExecRecord;
use crate::sealed::SealedDay;
use crate::ExecutionId;

/// Calls `f(line, payload)` for the entries of `rec` (whose first entry is line `start`) at
/// line `from` or later. Returns `false` if `f` asked to stop.
///
/// The blocks strictly inside the record's range hold only this execution (executions are
/// clustered), so their entry counts in the block table number their lines without reading
/// them; the first and last blocks may be shared and are read. A damaged block loses its own
/// entries (logged); a damaged inner block still counts its lines, so that the lines after it
/// stay the same for every reader.
pub(super) fn read_lines(
    sealed: &SealedDay,
    rec: &ExecRecord,
    execution_id: &ExecutionId,
    start: u64,
    from: u64,
    f: &mut impl FnMut(u64, &PayloadRef<'_>) -> bool,
) -> Result<bool> {
    let id = execution_id.as_str();
    let (first, last) = (rec.first_block, rec.last_block);
    let table = sealed.block_table();
    let inner = |i: usize| {
        i > first as usize && i < last as usize && table.get(i).copied().flatten().is_some()
    };
    let entries_of = |i: usize| {
        table
            .get(i)
            .copied()
            .flatten()
            .map_or(0, |b| u64::from(b.entries))
    };
    let (mut begin, mut line) = (first, start);
    if from > start && last > first {
        // How many of the first block's entries are ours: it may begin with another execution.
        let mut ours = 0u64;
        sealed.for_blocks(first, first, &mut |_, block| {
            if let Ok(columns) = block {
                ours = columns.rows_of(id).count() as u64;
            }
            true
        })?;
        if from >= start + ours {
            let (mut b, mut at) = (first + 1, start + ours);
            while inner(b as usize) && at + entries_of(b as usize) <= from {
                at += entries_of(b as usize);
                b += 1;
            }
            (begin, line) = (b, at);
        }
    }
    let mut more = true;
    sealed.for_blocks(begin, last, &mut |i, block| {
        match block {
            Ok(columns) => {
                for p in columns.rows_of(id).map(|k| columns.payload(k)) {
                    let this = line;
                    line += 1;
                    if this >= from && !f(this, &p) {
                        more = false;
                        break;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "skipped a damaged block (run `logstore verify`)");
                crate::observe::damage(1);
                if inner(i) {
                    line += entries_of(i);
                }
            }
        }
        more
    })?;
    Ok(more)
}
