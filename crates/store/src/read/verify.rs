//! `verify`: read every record and every index entry, and report what is damaged and where.

use std::ops::ControlFlow;

use crate::error::Problem;
use crate::error::{Result, StoreError};
use crate::journal::recovery::run_is_whole;
use crate::journal::segment::{scan, ScanEvent, SEGMENT_HEADER_LEN};
use crate::names;
use crate::read::day_files::{open_day, DayIndex, Reuse};
use crate::sealed::layout::sealed_path;
use crate::sealed::SealedFile;
use crate::LogStore;

/// What [`LogStore::verify`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Days checked.
    pub days: usize,
    /// Whole, valid records read.
    pub records: u64,
    /// Index entries checked.
    pub index_entries: u64,
    /// Everything wrong, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl LogStore {
    /// Checks every record (frame, CRC, payload) of every segment, and every index entry
    /// against the records it points at. Records not covered by the index (a writer's buffer in
    /// flight, or a crashed writer's tail that the next open will recover) are not problems.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.refresh_days()?;
        let mut report = VerifyReport::default();
        let days = self.days();
        // A day whose files could not be opened at all is left out of the store's days.
        for listed in names::list(&self.inner.segments_dir)? {
            if !days.iter().any(|d| d.day == listed.day) && !listed.is_empty() {
                if let Err(e) = open_day(&self.inner.segments_dir, &listed, true, Reuse::default())
                {
                    report.days += 1;
                    report.problems.push(Problem {
                        file: sealed_path(&self.inner.segments_dir, listed.day),
                        offset: 0,
                        reason: format!("the day cannot be opened: {e}"),
                    });
                }
            }
        }
        // Parts that could not be opened are left out of their day.
        report.problems.extend(self.unreadable_days());
        for day in days {
            report.days += 1;
            if let Some(sealed) = day.sealed() {
                for file in sealed.files() {
                    verify_sealed(file, &mut report)?;
                }
            }
            for seg_files in &day.segs {
                let seg = &seg_files.segment;
                let len = seg
                    .len()
                    .map_err(StoreError::io("stat segment", seg.path()))?;
                let runs = seg_files.all_runs()?;
                if let DayIndex::Sorted(sorted) = &seg_files.index {
                    for offset in sorted.entries()?.1 {
                        report.problems.push(Problem {
                        file: sorted.path().to_owned(),
                        offset,
                        reason: "sorted index entry fails its checksum (delete this .sidx; the next writer open rebuilds it from the segment)".to_owned(),
                    });
                    }
                }
                let covered = runs
                    .iter()
                    .map(|r| r.end())
                    .max()
                    .unwrap_or(SEGMENT_HEADER_LEN);
                let mut indexed = 0u64;
                for run in &runs {
                    report.index_entries += 1;
                    indexed += u64::from(run.count);
                    if run.end() > len {
                        report.problems.push(Problem {
                            file: seg.path().to_owned(),
                            offset: run.offset,
                            reason: format!(
                                "index entry points past the end of the segment ({} > {len})",
                                run.end()
                            ),
                        });
                    } else if !run_is_whole(seg, seg_files.kind, run)? {
                        report.problems.push(Problem {
                            file: seg.path().to_owned(),
                            offset: run.offset,
                            reason: format!(
                                "the {} records the index lists here are not all intact",
                                run.count
                            ),
                        });
                    }
                }
                let mut found = 0u64;
                let mut problems = Vec::new();
                scan(
                    seg,
                    seg_files.kind,
                    SEGMENT_HEADER_LEN,
                    covered.min(len),
                    |ev| {
                        match ev {
                            ScanEvent::Record { .. } => found += 1,
                            ScanEvent::Damage {
                                offset,
                                len,
                                reason,
                            } => problems.push(Problem {
                                file: seg.path().to_owned(),
                                offset,
                                reason: format!("{len} damaged bytes: {reason}"),
                            }),
                            ScanEvent::Tail { offset, reason } => problems.push(Problem {
                                file: seg.path().to_owned(),
                                offset,
                                reason: format!("damaged up to the indexed end: {reason}"),
                            }),
                        }
                        ControlFlow::Continue(())
                    },
                )
                .map_err(StoreError::io("read segment", seg.path()))?;
                report.records += found;
                report.problems.extend(problems);
                if found != indexed && report.problems.is_empty() {
                    report.problems.push(Problem {
                        file: seg.path().to_owned(),
                        offset: SEGMENT_HEADER_LEN,
                        reason: format!("index lists {indexed} records, the segment holds {found}"),
                    });
                }
            }
        }
        Ok(report)
    }
}

/// Checks a sealed file block by block: every block's CRC, decompression and contents, every
/// filter, every execution record, and that the totals agree with the trailer.
fn verify_sealed(sealed: &SealedFile, report: &mut VerifyReport) -> Result<()> {
    let mut problems = Vec::new();
    let problem = |problems: &mut Vec<Problem>, offset: u64, reason: String| {
        problems.push(Problem {
            file: sealed.path().to_owned(),
            offset,
            reason,
        });
    };
    for (offset, reason) in sealed.open_damage() {
        problem(&mut problems, *offset, reason.clone());
    }
    let mut entries = 0u64;
    for i in 0..sealed.block_count() {
        report.index_entries += 1;
        match sealed.with_block(i, None, |e| e.len()) {
            Ok(n) => entries += n as u64,
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                problem(&mut problems, offset, reason)
            }
            Err(e) => return Err(e),
        }
        match sealed.check_filter(i) {
            Ok(()) => {}
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                problem(&mut problems, offset, reason)
            }
            Err(e) => return Err(e),
        }
    }
    let mut in_records = 0u64;
    let mut records = Vec::new();
    let bad = sealed.for_each_record(|r| {
        in_records += u64::from(r.entries);
        records.push(r);
    })?;
    for r in records {
        if sealed.name(&r)?.is_none() {
            problem(
                &mut problems,
                r.name_offset,
                format!(
                    "the execution id at names offset {} is damaged",
                    r.name_offset
                ),
            );
        }
    }
    report.index_entries += u64::from(sealed.executions());
    for (offset, reason) in sealed.check_dicts()? {
        problem(&mut problems, offset, reason);
    }
    for (offset, reason) in sealed.check_common() {
        problem(&mut problems, offset, reason);
    }
    for (offset, reason) in sealed.check_catalog()? {
        problem(&mut problems, offset, reason);
    }
    for offset in &bad {
        problem(
            &mut problems,
            *offset,
            "execution record fails its checks (queries of other executions scan the table; \
             this one's entries are found by no query)"
                .to_owned(),
        );
    }
    report.records += entries;
    if problems.is_empty() && (entries != sealed.entries() || in_records != sealed.entries()) {
        problem(
            &mut problems,
            0,
            format!(
                "the trailer counts {} entries, the blocks hold {entries}, the execution table {in_records}",
                sealed.entries()
            ),
        );
    }
    report.problems.extend(problems);
    Ok(())
}
