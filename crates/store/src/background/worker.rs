//! The background worker: one thread per writer that rewrites finished days into the sealed
//! format (`sealed/`), one day at a time, off the write path.
//!
//! Days come from the writer's open (every past day not sealed yet), from the day roll (the
//! day just left), and from [`LogStore::seal`]. The thread never takes the writer's lock, so
//! `append` and `finish_execution` never wait for it; it takes the days list's lock only to
//! swap a day's view, and the gate shared with `gc` only for the commit (rename, swap, delete),
//! so a day that `gc` deletes is never brought back by a seal that was running meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Result, StoreError};
use std::path::Path;

use crate::day::Day;
use crate::fs::sync_dir;
use crate::journal::segment::SEGMENT_HEADER_LEN;
use crate::journal::writer::Inner;
use crate::names::{self, part_file, part_tmp_file};
use crate::read::day_files::{open_sealed, DayFiles};
use crate::sealed::layout::{sealed_path, sealed_tmp_path};
use crate::sealed::merge;
use crate::sealed::options::{self, SealOptions};
use crate::sealed::seal::{self, SealInput, SealOutcome, SealStep};
use crate::sealed::SealedFile;

/// Starts the sealer thread of a writer.
pub(crate) fn start(inner: &Arc<Inner>) -> Result<()> {
    let thread = {
        let inner = Arc::clone(inner);
        std::thread::Builder::new()
            .name("logstore-seal".to_owned())
            .spawn(move || run(&inner))
            .map_err(StoreError::io(
                "start seal thread",
                std::path::PathBuf::new(),
            ))?
    };
    inner.seal_queue.set_thread(thread);
    Ok(())
}

/// Nice value of the sealer thread: under CPU contention the writer's threads (nice 0) get
/// about ten times its share, so ingest keeps its rate while a day seals; on an idle core the
/// seal runs at full speed.
const SEALER_NICE: i32 = 19;

/// Lowers the calling thread's CPU priority to [`SEALER_NICE`]. On Linux a nice value is per
/// thread, and `setpriority(PRIO_PROCESS, tid)` sets the thread `tid`'s.
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let Ok(who) = libc::id_t::try_from(tid) else {
        return;
    };
    // SAFETY: setpriority reads only its integer arguments; no memory is shared with it.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, SEALER_NICE) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the seal thread's priority");
    }
}

fn run(inner: &Inner) {
    lower_priority();
    let s = &inner.seal_queue;
    while let Some(day) = s.next_day() {
        s.report(day, tidy_day(inner, day));
    }
}

/// A day holds at most this many parts before the sealer merges some.
pub(crate) const MAX_PARTS: usize = 8;

/// Brings one day to its resting shape, one committed step at a time: its closed segments
/// become parts (oldest first); then, if the day is over, its parts become its `.sealed` file,
/// or else, if it holds more than [`MAX_PARTS`] parts, the cheapest window of adjacent parts
/// is merged. Each step is written to a temporary file, fsynced, renamed into place and the
/// directory fsynced before anything it replaces is deleted (`docs/DURABILITY.md`).
fn tidy_day(inner: &Inner, day: Day) -> Result<Vec<SealOutcome>> {
    let mut done = Vec::new();
    loop {
        if inner.seal_queue.stop_flag().load(Ordering::Relaxed) {
            return Ok(done);
        }
        let Some(files) = inner.days.read().iter().find(|d| d.day == day).cloned() else {
            return Ok(done);
        };
        if files.is_whole() {
            return Ok(done);
        }
        // Read after the view: a roll names its new segment open before any view shows it,
        // so a segment of this view that is not `open` is closed (and fsynced).
        let open = *inner.open_segment.lock();
        let over = open.is_none_or(|(d, _)| d != day);
        let closed = files
            .segs
            .iter()
            .map(|s| s.seq)
            .find(|&seq| open != Some((day, seq)));
        let step = match closed {
            // A day over with one segment and no part: sealed whole, clustered by execution.
            Some(seq) if over && files.segs.len() == 1 && files.parts.is_empty() => {
                seal_whole(inner, day, seq)?
            }
            Some(seq) => part_of_segment(inner, &files, seq)?,
            None if over => day_of_parts(inner, &files)?,
            None if files.parts.len() > MAX_PARTS => merge_window(inner, &files)?,
            None => return Ok(done),
        };
        match step {
            Some(outcome) => {
                let name = match outcome.step {
                    SealStep::Part { .. } => "part",
                    SealStep::Day { .. } => "day",
                    SealStep::Merge { .. } => "merge",
                    SealStep::Whole => "day",
                };
                crate::observe::sealed(name, outcome.segment_bytes, outcome.elapsed);
                done.push(outcome);
            }
            None => return Ok(done),
        }
    }
}

/// Replaces `day`'s view after a step (under the gate) with what `change` makes of it.
fn swap_view(inner: &Inner, day: Day, change: impl FnOnce(&DayFiles) -> DayFiles) {
    let mut days = inner.days.write();
    if let Some(slot) = days.iter_mut().find(|d| d.day == day) {
        *slot = Arc::new(change(slot));
    }
}

/// Commits a written temporary file: under the gate (a day `gc` deleted meanwhile is not
/// brought back), rename, fsync the directory. `false`: the day is gone.
fn commit(inner: &Inner, day: Day, tmp: &Path, path: &Path) -> Result<bool> {
    if !inner.days.read().iter().any(|d| d.day == day) {
        let _ = std::fs::remove_file(tmp);
        return Ok(false);
    }
    std::fs::rename(tmp, path).map_err(StoreError::io("rename", path))?;
    sync_dir(&inner.segments_dir)?;
    Ok(true)
}

/// Seals closed segment `seq` of the day into part `seq..=seq`.
fn part_of_segment(inner: &Inner, files: &DayFiles, seq: u32) -> Result<Option<SealOutcome>> {
    let dir = &inner.segments_dir;
    let day = files.day;
    let tmp = part_tmp_file(dir, day, seq, seq);
    // The day's dictionary, from its newest part that has one (sealed/dict.rs).
    let dict = files
        .sealed()
        .into_iter()
        .flat_map(|s| s.files().collect::<Vec<_>>())
        .rev()
        .find_map(|f| f.dict_bytes(0).ok().flatten());
    let input = SealInput::segment(dir, day, seq, tmp.clone()).with_dict(dict);
    let empty = std::fs::metadata(&input.segment).map_or(true, |m| m.len() <= SEGMENT_HEADER_LEN);
    let outcome = if empty {
        None
    } else {
        match seal::write_sealed_from(
            &input,
            day,
            SealOptions::default(),
            inner.seal_queue.stop_flag(),
        )? {
            Some(o) => Some(o),
            None => return Ok(None),
        }
    };
    let _gate = inner.seal_queue.gate.lock();
    let path = part_file(dir, day, seq, seq);
    if outcome.is_some() && !commit(inner, day, &tmp, &path)? {
        return Ok(None);
    }
    let part = match &outcome {
        Some(_) => Some(Arc::new(SealedFile::open(&path)?)),
        None => None,
    };
    let step = SealStep::Part {
        first: seq,
        last: seq,
    };
    swap_view(inner, day, |d| {
        let mut files = d.open_parts();
        let mut parts = d.parts.clone();
        if let Some(p) = part {
            files.push(p);
            parts.push((seq, seq));
        }
        let segs = d.segs.iter().filter(|s| s.seq != seq).cloned().collect();
        DayFiles::in_parts(day, files, parts, segs)
    });
    names::remove_segment(dir, day, seq)?;
    sync_dir(dir)?;
    Ok(Some(outcome.map_or_else(
        || SealOutcome::empty(day, step),
        |o| SealOutcome { step, ..o },
    )))
}

/// Seals a finished day of one segment and no part straight into its `.sealed` file.
fn seal_whole(inner: &Inner, day: Day, seq: u32) -> Result<Option<SealOutcome>> {
    let dir = &inner.segments_dir;
    let seg = names::segment_file(dir, day, seq);
    // The roll fsynced the segment; a day recovered at open may not have been.
    std::fs::File::open(&seg)
        .and_then(|f| f.sync_all())
        .map_err(StoreError::io("fsync segment", &seg))?;
    let tmp = sealed_tmp_path(dir, day);
    let input = SealInput::segment(dir, day, seq, tmp.clone());
    let Some(done) = seal::write_sealed_from(
        &input,
        day,
        day_options(inner),
        inner.seal_queue.stop_flag(),
    )?
    else {
        return Ok(None);
    };
    let _gate = inner.seal_queue.gate.lock();
    if !commit(inner, day, &tmp, &sealed_path(dir, day))? {
        return Ok(None);
    }
    // From here the sealed file is the day: a crash leaves it, and the next open deletes the
    // files it finds beside it.
    let view = open_sealed(dir, day)?;
    swap_view(inner, day, move |_| view);
    names::remove_segment(dir, day, seq)?;
    sync_dir(dir)?;
    Ok(Some(done))
}

/// Merges every part of a finished day into its `.sealed` file, its blocks compressed again
/// at the day's level ([`day_frames`]).
fn day_of_parts(inner: &Inner, files: &DayFiles) -> Result<Option<SealOutcome>> {
    let dir = &inner.segments_dir;
    let day = files.day;
    let inputs = files.open_parts();
    if inputs.is_empty() {
        return Ok(None);
    }
    if inputs.iter().any(|f| !merge::mergeable(f)) {
        tracing::error!(%day, "a part of the day is damaged or of an older format: the day stays in parts (run `logstore verify`)");
        return Ok(None);
    }
    // Even one part goes through the merge: compressed again at the day's level, or copied at
    // the parts' (one path to test; a day of one part is at most a part's size).
    let tmp = sealed_tmp_path(dir, day);
    let Some(m) = merge::merge(
        &inputs,
        &tmp,
        day_frames(inner),
        inner.seal_queue.stop_flag(),
    )?
    else {
        return Ok(None);
    };
    let _gate = inner.seal_queue.gate.lock();
    if !commit(inner, day, &tmp, &sealed_path(dir, day))? {
        return Ok(None);
    }
    let outcome = SealOutcome::of_merge(day, SealStep::Day { parts: m.inputs }, &m);
    let view = open_sealed(dir, day)?;
    swap_view(inner, day, move |_| view);
    for &(a, b) in &files.parts {
        names::remove_part(dir, day, a, b)?;
    }
    sync_dir(dir)?;
    Ok(Some(outcome))
}

/// How a finished day's sealed file is compressed: at [`Config::day_level`](crate::Config),
/// clamped to what zstd takes (never below the parts' level).
fn day_level(inner: &Inner) -> i32 {
    inner
        .config
        .day_level
        .clamp(options::ZSTD_LEVEL, zstd::zstd_safe::max_c_level())
}

/// The options a day of one segment is sealed with.
fn day_options(inner: &Inner) -> SealOptions {
    SealOptions {
        level: day_level(inner),
        ..SealOptions::default()
    }
}

/// How the day-end merge writes its parts' blocks: compressed again above the parts' level.
fn day_frames(inner: &Inner) -> merge::Frames {
    match day_level(inner) {
        l if l > options::ZSTD_LEVEL => merge::Frames::Recompress(l),
        _ => merge::Frames::Copy,
    }
}

/// Merges the window of adjacent parts with the fewest bytes (so big parts are rewritten
/// rarely: each merge at least doubles what it writes, like a size-tiered LSM).
fn merge_window(inner: &Inner, files: &DayFiles) -> Result<Option<SealOutcome>> {
    let dir = &inner.segments_dir;
    let day = files.day;
    let inputs = files.open_parts();
    let size = |f: &SealedFile| std::fs::metadata(f.path()).map_or(u64::MAX, |m| m.len());
    let ok: Vec<bool> = inputs.iter().map(|f| merge::mergeable(f)).collect();
    let width = MAX_PARTS.min(inputs.len());
    let best = (0..=inputs.len() - width)
        .filter(|&i| ok[i..i + width].iter().all(|&b| b))
        .min_by_key(|&i| inputs[i..i + width].iter().map(|f| size(f)).sum::<u64>());
    let Some(i) = best else {
        tracing::error!(%day, "damaged parts leave no window to merge (run `logstore verify`)");
        return Ok(None);
    };
    let window = &files.parts[i..i + width];
    let (a, b) = (window[0].0, window[width - 1].1);
    let tmp = part_tmp_file(dir, day, a, b);
    let Some(m) = merge::merge(
        &inputs[i..i + width],
        &tmp,
        merge::Frames::Copy,
        inner.seal_queue.stop_flag(),
    )?
    else {
        return Ok(None);
    };
    let _gate = inner.seal_queue.gate.lock();
    let path = part_file(dir, day, a, b);
    if !commit(inner, day, &tmp, &path)? {
        return Ok(None);
    }
    let merged = Arc::new(SealedFile::open(&path)?);
    swap_view(inner, day, |d| {
        let mut files = Vec::new();
        let mut parts = Vec::new();
        for (f, &(x, y)) in d.open_parts().into_iter().zip(&d.parts) {
            if !(a <= x && y <= b) {
                files.push(f);
                parts.push((x, y));
            } else if x == a {
                files.push(Arc::clone(&merged));
                parts.push((a, b));
            }
        }
        DayFiles::in_parts(day, files, parts, d.segs.clone())
    });
    for &(x, y) in window {
        names::remove_part(dir, day, x, y)?;
    }
    sync_dir(dir)?;
    Ok(Some(SealOutcome::of_merge(
        day,
        SealStep::Merge {
            first: a,
            last: b,
            inputs: width,
        },
        &m,
    )))
}

/// Compresses every block of the sealed file `input` again at `level` into `output`, fsynced,
/// as the store does when a finished day's parts become its sealed file
/// (`merge::Frames::Recompress`): for tools and benchmarks that measure that step alone.
/// [`StoreError::Corrupt`] if `input` is damaged or of a version a merge does not take.
pub fn recompress_sealed(
    input: &std::path::Path,
    output: &std::path::Path,
    level: i32,
) -> Result<merge::MergeOutcome> {
    let file = Arc::new(SealedFile::open(input)?);
    if !merge::mergeable(&file) {
        return Err(StoreError::Corrupt {
            file: input.to_owned(),
            offset: 0,
            reason: "damaged, or of a version older than 6: its blocks are not rewritten"
                .to_owned(),
        });
    }
    let never = AtomicBool::new(false);
    merge::merge(&[file], output, merge::Frames::Recompress(level), &never)?.ok_or_else(|| {
        StoreError::Corrupt {
            file: input.to_owned(),
            offset: 0,
            reason: "the rewrite stopped".to_owned(),
        }
    })
}

/// Seals one day of a store that no writer has open, in the calling thread, with `options`
/// (for tools and benchmarks that measure the rewrite alone). Takes the writer lock for the
/// duration. The day must have been closed cleanly (or recovered by a writer's open): its
/// index is trusted as it is. Returns `None` if the day is already sealed, and
/// [`StoreError::NotOneSegment`] if it is several segments or has parts (rewriting one of them
/// into the day's sealed file would hide the others).
pub fn seal_closed_day(
    dir: &std::path::Path,
    day: Day,
    options: SealOptions,
) -> Result<Option<SealOutcome>> {
    let _lock = crate::journal::lock::take_lock(dir)?;
    let segments = dir.join("segments");
    if sealed_path(&segments, day).exists() {
        return Ok(None);
    }
    if let Some(l) = names::list(&segments)?.into_iter().find(|l| l.day == day) {
        if l.segments.len() > 1 || !l.parts.is_empty() {
            return Err(StoreError::NotOneSegment {
                day,
                segments: l.segments.len(),
                parts: l.parts.len(),
            });
        }
    }
    let seq = seal::day_segment(&segments, day)?;
    names::remove_tmp_files(&segments, day);
    let Some(done) = seal::write_sealed(&segments, day, options, &AtomicBool::new(false))? else {
        return Ok(None);
    };
    let path = sealed_path(&segments, day);
    std::fs::rename(sealed_tmp_path(&segments, day), &path)
        .map_err(StoreError::io("rename sealed file", &path))?;
    sync_dir(&segments)?;
    names::remove_segment(&segments, day, seq)?;
    sync_dir(&segments)?;
    Ok(Some(done))
}
