//! Searching a segment (the live day, or a day sealed with a sorted index (the first sealed layout)): a literal scan over
//! the raw frames, decoding only the frames that may match.
//!
//! A day is cut into units of about [`UNIT_BYTES`] at run starts read from its index (a run
//! starts on a frame boundary, so the cut needs no trust in the segment bytes). Inside a unit
//! every frame's CRC is checked as the scan walks it (cheap next to decoding, and it means
//! damage anywhere is reported, and a damaged length field can never make the walk skip a
//! frame unseen). Meanwhile the prefilter finds the next literal hit in the raw bytes; only
//! the frame holding a hit has its first fields peeked (execution id, time, level) for the
//! cheap filters, then its payload decoded and matched in full. Without a prefilter (a query
//! of filters only, or of non-ASCII words) every frame that passes the peek is decoded.

use std::sync::Arc;

use super::query::Fields;
use super::unit::{Counters, Ctx, Found, Unit};
use super::{Hit, Place, Position, Query, SearchDamage};
use logstore_store::access::record::{self, PayloadRef};
use logstore_store::access::{IndexEntry, SegFiles};
use logstore_store::{ExecutionId, TaskId};
use logstore_store::{Result, StoreError};

/// Target size of a unit of work. Large enough that a unit's cost dwarfs handing it to a
/// thread, small enough that both cores get work on a small day and that a unit's matches
/// can be held to reverse them.
const UNIT_BYTES: u64 = 4 << 20;

/// Index entries sampled per unit to find cut points.
const SAMPLES_PER_UNIT: u64 = 4;

/// Cuts `day`'s segment into units (in segment order) and appends them to `units`.
/// Returns false when the day's index is gone: the day was sealed (and its live-layout files deleted)
/// since the caller took its view, so the sealed file is to be searched instead.
pub(crate) fn plan(day: &Arc<SegFiles>, units: &mut Vec<Unit>) -> Result<bool> {
    let Some(runs) = day.run_index()? else {
        return Ok(false);
    };
    let start = day.frames_start();
    let end = if day.sorted_index().is_some() {
        // A sealed segment is never written again: all of it is whole frames.
        day.segment()
            .len()
            .map_err(StoreError::io("read segment", day.segment().path()))?
    } else {
        // A live one is readable up to the end of the last run its index shows.
        runs.last_end()?.unwrap_or(start)
    };
    if end <= start {
        return Ok(true);
    }
    let wanted = (end - start).div_ceil(UNIT_BYTES);
    let samples = (wanted * SAMPLES_PER_UNIT).min(runs.count());
    let mut cuts: Vec<u64> = Vec::new();
    for k in 1..samples {
        if let Some(e) = runs.get(k * runs.count() / samples)? {
            if e.offset > start && e.offset < end {
                cuts.push(e.offset);
            }
        }
    }
    cuts.sort_unstable();
    let mut from = start;
    for cut in cuts {
        if cut - from >= UNIT_BYTES && end - cut >= UNIT_BYTES / 2 {
            units.push(Unit::Segment {
                day: Arc::clone(day),
                start: from,
                end: cut,
            });
            from = cut;
        }
    }
    units.push(Unit::Segment {
        day: Arc::clone(day),
        start: from,
        end,
    });
    Ok(true)
}

/// Most runs a sorted index may have for [`outside_range`] to try its proof: the proof
/// holds the offsets of every run in memory (16 bytes each) to sort them.
const MAX_SORTED_PROOF_RUNS: u64 = 1 << 20;

/// Whether every frame of the day's segment that a search would scan is provably outside the
/// query's `since..until`. The day of a file is the UTC day of the *write*, not of the entries'
/// timestamps (an entry may carry any timestamp), so the day's date proves nothing; the index
/// does: every run records its entries' time range. The proof needs every index entry intact,
/// every run outside the range, and the runs tiling the scanned bytes exactly (so no frame
/// escapes the index). It stops at the first run inside the range, usually the first.
pub(crate) fn outside_range(day: &SegFiles, query: &Query) -> Result<bool> {
    let (since, until) = (query.since_ms, query.until_ms);
    if since.is_none() && until.is_none() {
        return Ok(false);
    }
    let Some(runs) = day.run_index()? else {
        return Ok(false);
    };
    let outside = |e: &IndexEntry| {
        since.is_some_and(|s| e.max_ts < s) || until.is_some_and(|u| e.min_ts >= u)
    };
    let sorted = day.sorted_index().is_some();
    if sorted && runs.count() > MAX_SORTED_PROOF_RUNS {
        return Ok(false);
    }
    let mut spans = Vec::new();
    let mut at = day.frames_start();
    for i in 0..runs.count() {
        let Some(e) = runs.get(i)? else {
            return Ok(false);
        };
        if !outside(&e) {
            return Ok(false);
        }
        if sorted {
            spans.push((e.offset, e.end()));
        } else if e.offset != at {
            // A live index is in segment order: a gap or an overlap is a frame not accounted for.
            return Ok(false);
        } else {
            at = e.end();
        }
    }
    if !sorted {
        return Ok(true);
    }
    // A sorted index is in hash order: sort the runs back into segment order, and they must
    // cover the whole segment (a day sealed with a sorted index is scanned to its end).
    spans.sort_unstable();
    for (offset, end) in spans {
        if offset != at {
            return Ok(false);
        }
        at = end;
    }
    let len = day
        .segment()
        .len()
        .map_err(StoreError::io("read segment", day.segment().path()))?;
    Ok(at == len)
}

/// Scans `start..end` of `day`'s segment, handing matches and damage to `out` in segment
/// order; stops early when `out` returns false or the search is cancelled.
pub(crate) fn scan(
    day: &SegFiles,
    start: u64,
    end: u64,
    ctx: &Ctx,
    out: &mut dyn FnMut(Found) -> bool,
) -> Result<()> {
    let file = day.segment().path();
    let len = usize::try_from(end - start).unwrap_or(usize::MAX);
    let chunk = match day.segment().read(start, len) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            // The index promises more than the file holds (a power cut before recovery, or a
            // cut file): report it, and search what there is.
            let have = day
                .segment()
                .len()
                .map_err(StoreError::io("read segment", file))?;
            let damage = SearchDamage {
                file: file.to_owned(),
                offset: have,
                reason: format!("segment ends at {have} but its index has runs up to {end}"),
            };
            if !out(Found::Damage(damage)) || have <= start {
                return Ok(());
            }
            return scan(day, start, have, ctx, out);
        }
        Err(e) => return Err(StoreError::io("read segment", file)(e)),
    };
    Counters::add(&ctx.stats.segment_bytes, len as u64);
    let mut scanner = Scanner {
        buf: &chunk,
        query: &ctx.query,
        base: start,
        kind: day.kind(),
        day: day.day(),
        seq: day.seq(),
        file,
        ids: (None, None),
        decoded: 0,
        count_only: ctx.count_only,
    };
    scanner.run(ctx, out);
    Counters::add(&ctx.stats.frames_decoded, scanner.decoded);
    Ok(())
}

struct Scanner<'a> {
    buf: &'a [u8],
    query: &'a Query,
    /// Segment offset of `buf[0]`.
    base: u64,
    /// How the segment's frames are checked.
    kind: record::FrameKind,
    day: crate::Day,
    /// The segment's number in its day (hit positions name it).
    seq: u32,
    file: &'a std::path::Path,
    ids: (Option<ExecutionId>, Option<TaskId>),
    decoded: u64,
    /// Matches are counted, not built.
    count_only: bool,
}

impl Scanner<'_> {
    fn run(&mut self, ctx: &Ctx, out: &mut dyn FnMut(Found) -> bool) {
        let buf = self.buf;
        let prefilter = self.query.prefilter.as_ref();
        let mut pos = 0usize;
        let mut hit = prefilter.and_then(|p| p.find(buf, 0));
        let mut frames = 0u32;
        while pos < buf.len() {
            frames = frames.wrapping_add(1);
            if frames.is_multiple_of(1024) && ctx.cancelled() {
                return;
            }
            // Every frame's CRC is checked, matching or not: damage is reported wherever it
            // is, and a damaged length can never make the walk skip a frame unseen.
            let at = self.base + pos as u64;
            let (payload, end) = match record::check_frame_as(&buf[pos..], self.kind, at) {
                Ok((payload, len)) => (payload, pos + len),
                Err(e) => {
                    pos = self.skip_damage(pos, e.to_string(), out);
                    continue;
                }
            };
            let candidate = match prefilter {
                None => true,
                Some(p) => {
                    if hit.is_some_and(|h| h < pos) {
                        hit = p.find(buf, pos);
                    }
                    hit.is_some_and(|h| h < end)
                }
            };
            let wanted = candidate
                && peek_header(payload.get(self.kind.seq_len()..).unwrap_or_default())
                    .is_none_or(|(id, ts, level)| self.query.header_passes(id, ts, level));
            if wanted {
                self.decoded += 1;
                match record::decode_payload_as(payload, self.kind) {
                    Ok(p) => {
                        if self.query.matches(&Fields::from(&p)) && !self.emit(pos, &p, out) {
                            return;
                        }
                    }
                    Err(e) => {
                        if !out(Found::Damage(self.damage(pos, e.to_string()))) {
                            return;
                        }
                    }
                }
            }
            pos = end;
        }
    }

    /// Hands the hit at `pos` to `out`; false when the reader is gone.
    fn emit(&mut self, pos: usize, p: &PayloadRef<'_>, out: &mut dyn FnMut(Found) -> bool) -> bool {
        if self.count_only {
            return out(Found::Counted);
        }
        match p.to_entry_sharing(&mut self.ids.0, &mut self.ids.1) {
            Ok(entry) => {
                let position = Position {
                    day: self.day,
                    place: Place::Segment {
                        segment: self.seq,
                        offset: self.base + pos as u64,
                    },
                };
                out(Found::Hit(Hit {
                    entry,
                    seq: p.number(),
                    position,
                }))
            }
            Err(e) => out(Found::Damage(self.damage(pos, e.to_string()))),
        }
    }

    /// Reports the damage at `pos` and returns where the next valid frame starts.
    fn skip_damage(&self, pos: usize, reason: String, out: &mut dyn FnMut(Found) -> bool) -> usize {
        let next = record::next_frame_as(self.buf, pos + 1, self.kind, self.base)
            .unwrap_or(self.buf.len());
        let reason = format!("{} damaged bytes skipped: {reason}", next - pos);
        if out(Found::Damage(self.damage(pos, reason))) {
            next
        } else {
            self.buf.len()
        }
    }

    fn damage(&self, pos: usize, reason: String) -> SearchDamage {
        SearchDamage {
            file: self.file.to_owned(),
            offset: self.base + pos as u64,
            reason,
        }
    }
}

/// The execution id, timestamp and level at the start of a payload (see `docs/FORMAT.md`),
/// read without checking the CRC: only used to skip frames that cannot match. None when the
/// bytes do not look like a payload (the full decode then decides).
fn peek_header(payload: &[u8]) -> Option<(&str, i64, u8)> {
    let id_len = usize::from(*payload.first()?);
    if id_len >= 251 {
        return None;
    }
    let id = std::str::from_utf8(payload.get(1..1 + id_len)?).ok()?;
    let mut at = 1 + id_len;
    let tag = *payload.get(at)?;
    at += 1;
    let width = match tag {
        0..=250 => 0,
        251 => 2,
        252 => 4,
        253 => 8,
        _ => return None,
    };
    let zigzag = if width == 0 {
        u64::from(tag)
    } else {
        let bytes = payload.get(at..at + width)?;
        at += width;
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(bytes);
        u64::from_le_bytes(le)
    };
    #[allow(clippy::cast_possible_wrap)]
    let ts = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
    let level = *payload.get(at)?;
    Some((id, ts, level))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstore_store::{Level, LogEntry};

    #[test]
    fn peek_header_reads_what_decode_reads() {
        for ts in [
            0i64,
            -1,
            1000,
            -70_000,
            1_795_608_000_123,
            i64::MIN,
            i64::MAX,
        ] {
            let e = LogEntry::new(
                ExecutionId::new("exec-7").unwrap(),
                ts,
                Level::Warn,
                "s",
                "m",
            );
            let mut buf = Vec::new();
            record::encode(&e, &mut buf).unwrap();
            assert_eq!(
                peek_header(&buf[record::FRAME_HEADER_LEN..]),
                Some(("exec-7", ts, Level::Warn.to_byte()))
            );
        }
    }
}
