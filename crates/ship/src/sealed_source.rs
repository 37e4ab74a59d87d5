//! Reading a day's sealed files (its parts, or its whole sealed file) in block order, for the
//! shipper.
//!
//! Blocks are shipped whole, in block order. Within each file executions are clustered (each
//! one's entries contiguous, in append order), and an execution has one cluster per part it
//! was in, so an entry's ordinal, its position among its execution's entries of the day, is
//! the entries of its earlier clusters plus its position in its cluster: the same number the
//! live layout of the same day gives it, so rows shipped from either layout collapse under
//! `FINAL`. Merges copy blocks in order, so block numbers, and positions, hold across them.
//!
//! A position is the next block plus the execution the previous block ended in and how many of
//! its entries came before. A damaged block loses its entries; the ordinals after it are
//! recovered from the execution table (the execution's total minus what follows), so they
//! never collide with rows already shipped.

use std::collections::HashMap;

use super::chunk::{day_u16, Chunk, Limits};
use super::cursor::DayPosition;
use super::rows::Rows;
use super::schema::RowKey;
use logstore_store::access::DayFiles;
use logstore_store::access::SealedDay;
use logstore_store::Day;
use logstore_store::{Result, StoreError};

/// Reads one sealed day from a position onwards.
pub struct SealedReader {
    day: Day,
    /// The next block to read.
    block: usize,
    /// The execution of the last entry read.
    exec: Option<String>,
    /// How many entries of `exec` came before the next one.
    ordinal: u32,
    /// Per execution, how many of its first entries this process already shipped from the
    /// day's live layout (the day was sealed under the shipper): they are not sent again.
    skip: HashMap<String, u32>,
    /// Entries numbered below this were shipped from a live segment: not sent again.
    floor: u64,
}

impl SealedReader {
    /// A reader at `position` (a sealed position, or the start), skipping the first
    /// `skip[exec]` entries of each execution.
    pub fn open(day: Day, position: &DayPosition, skip: HashMap<String, u32>) -> SealedReader {
        let (block, exec, ordinal, floor) = match position {
            DayPosition::Sealed {
                block,
                exec,
                ordinal,
                floor,
                ..
            } => (
                usize::try_from(*block).unwrap_or(usize::MAX),
                exec.clone(),
                *ordinal,
                *floor,
            ),
            // The day's one segment became parts: what was shipped from it is below its floor.
            DayPosition::V1 { floor, .. } => (0, None, 0, *floor),
            DayPosition::Start => (0, None, 0, 0),
        };
        SealedReader {
            day,
            block,
            exec,
            ordinal,
            skip,
            floor,
        }
    }

    /// Raises the floor: entries numbered below it were shipped elsewhere.
    pub fn raise_floor(&mut self, floor: u64) {
        self.floor = self.floor.max(floor);
    }

    /// Whether every block of `files` is read.
    pub fn at_end(&self, files: &DayFiles) -> bool {
        files.sealed().is_none_or(|s| self.block >= s.block_count())
    }

    /// The day.
    pub fn day(&self) -> Day {
        self.day
    }

    /// Encodes whole blocks after the position into `out` until `limits`.
    pub fn read(
        &mut self,
        files: &DayFiles,
        node: &str,
        limits: Limits,
        out: &mut Rows,
    ) -> Result<Chunk> {
        let sealed = sealed_of(files)?;
        let day = day_u16(self.day, sealed.path())?;
        let start_len = out.bytes();
        let mut entries = 0usize;
        let mut min_ts: Option<i64> = None;
        // After a damaged block, the next block is read whatever the limits: the ordinals are
        // repaired there, and a position is never saved between the two.
        let mut damaged = false;
        while self.block < sealed.block_count()
            && (damaged || (entries < limits.entries && out.bytes() - start_len < limits.bytes))
        {
            let i = self.block;
            let repair = std::mem::take(&mut damaged);
            let r = sealed.with_block(i, None, |payloads| -> Result<()> {
                if let (true, Some(first)) = (repair, payloads.first()) {
                    self.repair_ordinal(sealed, i, first.execution_id)?;
                }
                for p in payloads {
                    if self.exec.as_deref() != Some(p.execution_id) {
                        self.exec = Some(p.execution_id.to_owned());
                        // A day of several parts has one cluster per part for an execution:
                        // its ordinals go on from the clusters before this block.
                        self.ordinal = entries_before(sealed, i, p.execution_id)?;
                    }
                    let ordinal = self.ordinal;
                    self.ordinal += 1;
                    if self.skip.get(p.execution_id).is_some_and(|&n| ordinal < n)
                        || (p.seq != 0 && p.seq < self.floor)
                    {
                        continue;
                    }
                    if !out.push_payload(RowKey::of(node, day, ordinal, p.seq), p) {
                        continue;
                    }
                    min_ts = Some(min_ts.map_or(p.timestamp, |m| m.min(p.timestamp)));
                    entries += 1;
                }
                Ok(())
            });
            match r {
                Ok(inner) => inner?,
                Err(StoreError::Corrupt {
                    file,
                    offset,
                    reason,
                }) => {
                    tracing::warn!(file = %file.display(), offset, %reason, "not shipping a damaged block (run `logstore verify`)");
                    damaged = true;
                }
                Err(e) => return Err(e),
            }
            self.block += 1;
        }
        Ok(Chunk {
            entries,
            min_ts,
            end: self.position(),
        })
    }

    /// After damaged blocks: `exec`'s first entry in block `i` comes after all of its entries
    /// that precede block `i`, a number the execution table gives as its total minus its
    /// entries from block `i` to its last block.
    fn repair_ordinal(&mut self, sealed: &SealedDay, i: usize, exec: &str) -> Result<()> {
        let records = sealed.exec_ranges(exec)?;
        let i32 = u32::try_from(i).unwrap_or(u32::MAX);
        let Some(rec) = records
            .iter()
            .find(|r| r.first_block <= i32 && i32 <= r.last_block)
        else {
            tracing::warn!(file = %sealed.path().display(), exec, "execution missing from the sealed file's table after a damaged block; its ordinals restart");
            self.exec = Some(exec.to_owned());
            self.ordinal = 0;
            return Ok(());
        };
        let mut after = 0u32;
        for k in i..=rec.last_block as usize {
            let n = sealed.with_block(k, None, |ps| {
                ps.iter().filter(|p| p.execution_id == exec).count()
            });
            after += n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
        }
        self.exec = Some(exec.to_owned());
        self.ordinal = entries_before(sealed, i, exec)? + rec.entries.saturating_sub(after);
        Ok(())
    }

    /// The position after what was read (no live segment read yet).
    pub fn position(&self) -> DayPosition {
        DayPosition::Sealed {
            block: self.block as u64,
            exec: self.exec.clone(),
            ordinal: self.ordinal,
            floor: self.floor,
            live: None,
        }
    }

    /// Entries after the position and the smallest timestamp among them.
    pub fn pending(&self, files: &DayFiles) -> Result<(u64, Option<i64>)> {
        let sealed = sealed_of(files)?;
        let rest = sealed.blocks().get(self.block..).unwrap_or(&[]);
        let n = rest.iter().map(|b| u64::from(b.entries)).sum();
        let min_ts = rest
            .iter()
            .filter(|b| b.entries > 0)
            .map(|b| b.min_ts)
            .min();
        Ok((n, min_ts))
    }
}

/// Entries of `exec` in its clusters that end before block `i` (its records are disjoint
/// block ranges, one per part it was in).
fn entries_before(sealed: &SealedDay, i: usize, exec: &str) -> Result<u32> {
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    Ok(sealed
        .exec_ranges(exec)?
        .iter()
        .filter(|r| r.last_block < i)
        .fold(0u32, |n, r| n.saturating_add(r.entries)))
}

fn sealed_of(files: &DayFiles) -> Result<&SealedDay> {
    files.sealed().ok_or_else(|| StoreError::Corrupt {
        file: files.path(),
        offset: 0,
        reason: "expected a day with sealed files".to_owned(),
    })
}
