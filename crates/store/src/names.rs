//! The names of a store's files, and which of them make up each day.
//!
//! ```text
//! YYYY-MM-DD.log / .idx / .sidx     segment 0 of the day (the one segment of a day written
//!                                   before segments rolled; `.sidx`: sealed by a version-1 writer)
//! YYYY-MM-DD.NNNNNN.log / .idx      segment N ≥ 1 of the day and its live index
//! YYYY-MM-DD[.NNNNNN].heads         the heads checkpoint of a live index (a cache: `heads`)
//! YYYY-MM-DD.NNNNNN-MMMMMM.part     a part: segments N..=M sealed (sealed layout)
//! YYYY-MM-DD.sealed                 the whole day sealed
//! *.tmp*                            being written; never read, deleted by the next writer
//! ```
//!
//! A day's entries are, in append order: its parts and segments by segment number. A file
//! that a wider one covers is a leftover of an interrupted step (the wider one was fsynced and
//! renamed into place before anything it covers was deleted): readers ignore it and the next
//! writer deletes it. So each entry is read from exactly one file at any moment.

use std::path::{Path, PathBuf};

use crate::day::Day;
use crate::error::{Result, StoreError};

/// Readers address a day's live segments in one offset space: segment `n`'s byte `o` is at
/// `n << SEQ_SHIFT | o`. Segment 0 (the old one-segment day) keeps its plain offsets, so
/// positions saved before segments rolled stay valid.
pub(crate) const SEQ_SHIFT: u32 = 40;

/// The largest segment: offsets must fit below [`SEQ_SHIFT`].
pub(crate) const MAX_SEGMENT_BYTES: u64 = 1 << SEQ_SHIFT;

/// The day-wide offset of byte `offset` of segment `seq`.
pub(crate) fn virtual_offset(seq: u32, offset: u64) -> u64 {
    (u64::from(seq) << SEQ_SHIFT) | offset
}

/// The segment and file offset of a day-wide offset.
pub(crate) fn split_offset(v: u64) -> (u32, u64) {
    (
        u32::try_from(v >> SEQ_SHIFT).unwrap_or(u32::MAX),
        v & (MAX_SEGMENT_BYTES - 1),
    )
}

fn seq_stem(day: Day, seq: u32) -> String {
    if seq == 0 {
        day.to_string()
    } else {
        format!("{day}.{seq:06}")
    }
}

/// Segment `seq` of `day`.
pub(crate) fn segment_file(dir: &Path, day: Day, seq: u32) -> PathBuf {
    dir.join(format!("{}.log", seq_stem(day, seq)))
}

/// The live index of segment `seq` of `day`.
pub fn index_file(dir: &Path, day: Day, seq: u32) -> PathBuf {
    dir.join(format!("{}.idx", seq_stem(day, seq)))
}

/// The heads checkpoint of segment `seq`'s live index (`store::heads`).
pub(crate) fn heads_file(dir: &Path, day: Day, seq: u32) -> PathBuf {
    dir.join(format!("{}.heads", seq_stem(day, seq)))
}

/// The sorted index of a day sealed with a sorted index (segment 0 only).
pub(crate) fn sorted_index_file(dir: &Path, day: Day, seq: u32) -> PathBuf {
    dir.join(format!("{}.sidx", seq_stem(day, seq)))
}

/// The part holding segments `first..=last` of `day`.
pub(crate) fn part_file(dir: &Path, day: Day, first: u32, last: u32) -> PathBuf {
    dir.join(format!("{day}.{first:06}-{last:06}.part"))
}

/// The file a part is written to before its rename (never read).
pub(crate) fn part_tmp_file(dir: &Path, day: Day, first: u32, last: u32) -> PathBuf {
    dir.join(format!("{day}.{first:06}-{last:06}.part.tmp"))
}

/// What one file name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    Segment(Day, u32),
    Index(Day, u32),
    Heads(Day, u32),
    Sorted(Day, u32),
    Part(Day, u32, u32),
    Sealed(Day),
    /// A temporary file of an interrupted step.
    Tmp(Day),
}

/// Parses a file name of the segments directory; `None` for anything else.
pub(crate) fn parse(name: &str) -> Option<Name> {
    let (day, rest) = (name.get(..10)?, name.get(10..)?);
    let day: Day = day.parse().ok()?;
    let rest = rest.strip_prefix('.')?;
    if rest.contains(".tmp") {
        return Some(Name::Tmp(day));
    }
    match rest {
        "log" => return Some(Name::Segment(day, 0)),
        "idx" => return Some(Name::Index(day, 0)),
        "heads" => return Some(Name::Heads(day, 0)),
        "sidx" => return Some(Name::Sorted(day, 0)),
        "sealed" => return Some(Name::Sealed(day)),
        _ => {}
    }
    let (stem, ext) = rest.split_once('.')?;
    let seq = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    match ext {
        "log" => Some(Name::Segment(day, seq(stem).filter(|&n| n > 0)?)),
        "idx" => Some(Name::Index(day, seq(stem).filter(|&n| n > 0)?)),
        "heads" => Some(Name::Heads(day, seq(stem).filter(|&n| n > 0)?)),
        "part" => {
            let (a, b) = stem.split_once('-')?;
            let (a, b) = (seq(a)?, seq(b)?);
            (a <= b).then_some(Name::Part(day, a, b))
        }
        _ => None,
    }
}

/// The files of one day that hold its entries, and the leftovers beside them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DayListing {
    pub(crate) day: Day,
    /// The whole day sealed: then nothing else counts.
    pub(crate) sealed: bool,
    /// Parts in use, by segment range, oldest first (none covers another).
    pub(crate) parts: Vec<(u32, u32)>,
    /// Segments in use (not covered by a part), oldest first.
    pub(crate) segments: Vec<u32>,
    /// Covered parts and segments: leftovers of an interrupted step.
    pub(crate) covered_parts: Vec<(u32, u32)>,
    pub(crate) covered_segments: Vec<u32>,
    /// Whether temporary files are there.
    pub(crate) tmp: bool,
}

impl DayListing {
    /// The next segment number after everything in the day.
    pub(crate) fn next_seq(&self) -> u32 {
        let seg = self.segments.iter().chain(&self.covered_segments).max();
        let part = self
            .parts
            .iter()
            .chain(&self.covered_parts)
            .map(|p| p.1)
            .max();
        seg.max(part.as_ref()).map_or(1, |&n| n + 1)
    }

    /// Whether the parts and segments in use leave a segment number out between them. The
    /// writer never does (a part replaces exactly the segments it covers), so a gap means
    /// this listing raced a rename: `readdir` may miss a part renamed into place while it
    /// runs, yet not the unlink of the segment it replaced. Readers list again.
    pub(crate) fn has_gap(&self) -> bool {
        if self.sealed {
            return false;
        }
        let mut ranges: Vec<(u32, u32)> = self
            .parts
            .iter()
            .copied()
            .chain(self.segments.iter().map(|&s| (s, s)))
            .collect();
        ranges.sort_unstable();
        ranges
            .windows(2)
            .any(|w| w[1].0 != w[0].1.saturating_add(1))
    }

    /// Whether the day has any file holding entries.
    pub(crate) fn is_empty(&self) -> bool {
        !self.sealed && self.parts.is_empty() && self.segments.is_empty()
    }
}

/// The parsed names of the segments directory, with their paths (other files are skipped).
fn read_names(dir: &Path) -> Result<Vec<(Name, PathBuf)>> {
    let mut names = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(StoreError::io("list", dir))?;
    for ent in rd {
        let ent = ent.map_err(StoreError::io("list", dir))?;
        if let Some(n) = ent.file_name().to_str().and_then(parse) {
            names.push((n, ent.path()));
        }
    }
    Ok(names)
}

/// Every day of the segments directory, oldest first. Index files without their segment are
/// ignored (a segment is deleted last).
pub(crate) fn list(dir: &Path) -> Result<Vec<DayListing>> {
    Ok(group(
        read_names(dir)?.into_iter().map(|(n, _)| n).collect(),
    ))
}

/// The listing of `day` as if its `.sealed` file were not there (it is unreadable): the files
/// it replaced, if any are left, are the day.
pub(crate) fn list_without_sealed(dir: &Path, day: Day) -> Result<DayListing> {
    let names = read_names(dir)?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| day_of(n) == day && !matches!(n, Name::Sealed(_)))
        .collect();
    Ok(group(names).pop().unwrap_or(DayListing {
        day,
        ..DayListing::default()
    }))
}

fn day_of(n: &Name) -> Day {
    match *n {
        Name::Segment(d, _)
        | Name::Index(d, _)
        | Name::Heads(d, _)
        | Name::Sorted(d, _)
        | Name::Part(d, _, _)
        | Name::Sealed(d)
        | Name::Tmp(d) => d,
    }
}

/// Groups parsed names by day and resolves which files are in use.
fn group(mut names: Vec<Name>) -> Vec<DayListing> {
    names.sort_by_key(day_of);
    let mut out: Vec<DayListing> = Vec::new();
    for n in names {
        let day = day_of(&n);
        if out.last().is_none_or(|l| l.day != day) {
            out.push(DayListing {
                day,
                ..DayListing::default()
            });
        }
        let Some(l) = out.last_mut() else { continue };
        match n {
            Name::Segment(_, s) => l.segments.push(s),
            Name::Part(_, a, b) => l.parts.push((a, b)),
            Name::Sealed(_) => l.sealed = true,
            Name::Tmp(_) => l.tmp = true,
            Name::Index(..) | Name::Heads(..) | Name::Sorted(..) => {}
        }
    }
    for l in &mut out {
        l.segments.sort_unstable();
        // Widest first at each start, so a merged part wins over the parts it holds.
        l.parts.sort_by_key(|&(a, b)| (a, std::cmp::Reverse(b)));
        let mut kept: Vec<(u32, u32)> = Vec::new();
        for p in std::mem::take(&mut l.parts) {
            match kept.last() {
                Some(&(_, end)) if p.0 <= end => l.covered_parts.push(p),
                _ => kept.push(p),
            }
        }
        l.parts = kept;
        if l.sealed {
            l.covered_parts.append(&mut l.parts);
            l.covered_segments.append(&mut l.segments);
            continue;
        }
        let (segs, covered): (Vec<u32>, Vec<u32>) = l
            .segments
            .iter()
            .partition(|&&s| !l.parts.iter().any(|&(a, b)| a <= s && s <= b));
        l.segments = segs;
        l.covered_segments = covered;
    }
    out.retain(|l| !l.is_empty() || !l.covered_parts.is_empty() || l.tmp);
    out
}

/// Deletes `path`; a file that is not there is already deleted.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("delete", path)(e)),
    }
}

/// Deletes segment `seq` of `day` and its indexes (the segment last: an index without its
/// segment is ignored). The caller fsyncs the directory.
pub(crate) fn remove_segment(dir: &Path, day: Day, seq: u32) -> Result<()> {
    remove(&sorted_index_file(dir, day, seq))?;
    remove(&heads_file(dir, day, seq))?;
    remove(&index_file(dir, day, seq))?;
    remove(&segment_file(dir, day, seq))
}

/// Deletes part `first..=last` of `day`. The caller fsyncs the directory.
pub(crate) fn remove_part(dir: &Path, day: Day, first: u32, last: u32) -> Result<()> {
    remove(&part_file(dir, day, first, last))
}

/// Deletes the temporary files of `day` (never read; a failure is only logged).
pub(crate) fn remove_tmp_files(dir: &Path, day: Day) {
    let Ok(names) = read_names(dir) else {
        return;
    };
    for (_, p) in names.into_iter().filter(|(n, _)| *n == Name::Tmp(day)) {
        if let Err(e) = remove(&p) {
            tracing::warn!(error = %e, "cannot delete a temporary file of an interrupted step");
        }
    }
}

/// Deletes every file of `day` (sealed file, parts, segments last). The caller fsyncs the
/// directory.
pub(crate) fn remove_day(dir: &Path, day: Day) -> Result<()> {
    remove_tmp_files(dir, day);
    let mut names: Vec<(Name, PathBuf)> = read_names(dir)?
        .into_iter()
        .filter(|(n, _)| day_of(n) == day)
        .collect();
    // Segments last: an index left without its segment by an interrupted delete is ignored.
    names.sort_by_key(|(n, _)| matches!(n, Name::Segment(..)));
    for (_, p) in names {
        remove(&p)?;
    }
    Ok(())
}

/// Deletes the leftovers that wider files cover. The caller fsyncs the directory.
pub(crate) fn remove_covered(dir: &Path, l: &DayListing) -> Result<()> {
    for &(a, b) in &l.covered_parts {
        remove_part(dir, l.day, a, b)?;
    }
    for &s in &l.covered_segments {
        remove_segment(dir, l.day, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_listing_that_misses_a_renamed_part_has_a_gap() {
        let day = |parts: Vec<(u32, u32)>, segments: Vec<u32>| DayListing {
            parts,
            segments,
            ..DayListing::default()
        };
        assert!(!day(vec![(1, 3), (4, 4)], vec![5, 6]).has_gap());
        assert!(!day(vec![], vec![1, 2, 3]).has_gap());
        // Part 4-4 renamed into place while readdir ran, segment 4 already unlinked.
        assert!(day(vec![(1, 3)], vec![5, 6]).has_gap());
        assert!(day(vec![], vec![1, 3]).has_gap());
        assert!(!DayListing {
            sealed: true,
            ..day(vec![(1, 3)], vec![5])
        }
        .has_gap());
    }
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/x");
        let day = Day(20000);
        for (path, name) in [
            (segment_file(dir, day, 0), Name::Segment(day, 0)),
            (segment_file(dir, day, 7), Name::Segment(day, 7)),
            (index_file(dir, day, 0), Name::Index(day, 0)),
            (index_file(dir, day, 12), Name::Index(day, 12)),
            (sorted_index_file(dir, day, 0), Name::Sorted(day, 0)),
            (part_file(dir, day, 1, 9), Name::Part(day, 1, 9)),
            (part_tmp_file(dir, day, 1, 9), Name::Tmp(day)),
            (dir.join(format!("{day}.sealed")), Name::Sealed(day)),
            (dir.join(format!("{day}.sealed.tmp-part3")), Name::Tmp(day)),
        ] {
            let file = path.file_name().and_then(|n| n.to_str()).unwrap();
            assert_eq!(parse(file), Some(name), "{file}");
        }
        for bad in [
            "2026-13-01.log",
            "x.log",
            "2026-12-04.0-1.log",
            "2026-12-04.000000.log",
            "2026-12-04.000005-000002.part",
            "2026-12-04.1x.idx",
            "LOCK",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn wider_files_cover_narrower_ones() {
        let d = Day(1);
        let l = group(vec![
            Name::Part(d, 1, 1),
            Name::Part(d, 2, 2),
            Name::Part(d, 1, 2),
            Name::Part(d, 3, 3),
            Name::Segment(d, 3),
            Name::Segment(d, 4),
            Name::Segment(d, 5),
            Name::Index(d, 5),
        ]);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].parts, vec![(1, 2), (3, 3)]);
        assert_eq!(l[0].segments, vec![4, 5]);
        assert_eq!(l[0].covered_parts, vec![(1, 1), (2, 2)]);
        assert_eq!(l[0].covered_segments, vec![3]);
        assert_eq!(l[0].next_seq(), 6);
        let sealed = group(vec![
            Name::Sealed(d),
            Name::Part(d, 1, 2),
            Name::Segment(d, 3),
        ]);
        assert!(sealed[0].sealed && sealed[0].parts.is_empty() && sealed[0].segments.is_empty());
        assert_eq!(sealed[0].covered_segments, vec![3]);
    }

    #[test]
    fn offsets_split_back() {
        assert_eq!(split_offset(virtual_offset(0, 123)), (0, 123));
        assert_eq!(
            split_offset(virtual_offset(42, MAX_SEGMENT_BYTES - 1)),
            (42, MAX_SEGMENT_BYTES - 1)
        );
        assert!(virtual_offset(1, 0) > virtual_offset(0, MAX_SEGMENT_BYTES - 1));
    }
}
