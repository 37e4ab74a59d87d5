//! Dictionaries, common words and merges: what the day-end step keeps and what it saves.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use std::collections::HashSet;

use crate::day::Day;
use crate::journal::index::exec_hash;
use crate::sealed::common::CommonWords;
use crate::sealed::filter::{word_hash, words, BITS_PER_WORD};
use crate::sealed::layout::{sealed_path, sealed_tmp_path};
use crate::sealed::options::SealOptions;
use crate::sealed::SealedFile;
use crate::LogEntry;

use super::*;

fn with_dict() -> SealOptions {
    SealOptions {
        block_target: 16 << 10,
        train_bytes: 2 << 20,
        dict_bytes: 16 << 10,
        ..SealOptions::default()
    }
}

/// Every entry of `file`, block after block.
fn all_entries(file: &SealedFile) -> Vec<LogEntry> {
    (0..file.block_count())
        .flat_map(|b| file.read_block(b).unwrap())
        .collect()
}

/// The entries of the file at `path` as search reads them (`scan_blocks`: runs of blocks of
/// one dictionary decompressed after a copy of it), or each block's error.
fn scanned(path: &Path) -> Vec<Result<Vec<LogEntry>, String>> {
    let day = crate::sealed::SealedDay::open(path, Day(0)).unwrap();
    let n = u32::try_from(day.block_table().len()).unwrap();
    let mut out = Vec::new();
    let all: Vec<u32> = (0..n).collect();
    let done = day
        .scan_blocks(
            &all,
            &mut crate::sealed::BlockScratch::default(),
            &mut |b, r| {
                assert_eq!(b as usize, out.len());
                out.push(
                    r.map(|c| c.payloads().iter().map(|p| p.to_entry().unwrap()).collect())
                        .map_err(|e| e.to_string()),
                );
                true
            },
        )
        .unwrap();
    assert!(done);
    out
}

/// A file sealed with a trained dictionary (version 6) holds every entry exactly, in fewer
/// bytes than without; a damaged dictionary loses the blocks that use it, and is reported.
#[test]
fn a_dictionary_shrinks_the_blocks_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (day, written) = v1_day(dir.path(), 60_000);
    let plain = seal(
        dir.path(),
        day,
        SealOptions {
            dict_bytes: 0,
            ..with_dict()
        },
    );
    let f = seal(dir.path(), day, with_dict());
    assert!(
        f.len() < plain.len(),
        "with a dictionary {} bytes, without {}",
        f.len(),
        plain.len()
    );
    let path = sealed_path(&dir.path().join("segments"), day);
    let sealed = SealedFile::open(&path).unwrap();
    assert!(sealed.trailer().dicts);
    assert_eq!(sealed.dict_layout().unwrap().dicts.len(), 1);
    assert!(sealed.block_table().iter().all(|e| e.unwrap().dict == 1));
    let mut expected = written.clone();
    expected.sort_by_key(|e| exec_hash(e.execution_id.as_str()));
    assert_eq!(all_entries(&sealed), expected);
    let scan: Vec<LogEntry> = scanned(&path)
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert_eq!(scan, expected, "search's path reads the same");
    assert!(sealed.check_dicts().unwrap().is_empty());
    let rows = crate::sealed::breakdown::breakdown(&path).unwrap();
    assert_eq!(rows.iter().map(|r| r.stored).sum::<u64>(), f.len() as u64);
    // Damage the dictionary: its blocks are lost, said so, and `verify` says why.
    let (at, _, _) = sealed.dict_layout().unwrap().dicts[0];
    drop(sealed);
    let mut bytes = f.clone();
    bytes[usize::try_from(at).unwrap() + 100] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let sealed = SealedFile::open(&path).unwrap();
    let err = sealed.read_block(0).unwrap_err().to_string();
    assert!(err.contains("dictionary 1"), "{err}");
    let problems = sealed.check_dicts().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].1.contains("checksum"));
    // Search's path reports every block as lost, and why.
    for r in scanned(&path) {
        let err = r.unwrap_err();
        assert!(err.contains("dictionary 1"), "{err}");
    }
}

/// The common words of `file` (version 7), `[]` if it lists none; panics if they are lost.
fn common_list(file: &SealedFile) -> Vec<u64> {
    match file.common_words().as_deref() {
        None => Vec::new(),
        Some(CommonWords::Listed(w)) => w.to_vec(),
        Some(CommonWords::Lost) => panic!("{}: common words lost", file.path().display()),
    }
}

/// Every block's filter holds the words of its messages that the file does not list as common,
/// sized at [`BITS_PER_WORD`] each (exactly those if `sealed`; a merged file's blocks were
/// built against their own file's list, a subset of the merged one), and the block's metadata
/// answers "maybe" for every word of its messages (common or not): no search can miss an
/// entry.
fn assert_filters_leave_out_the_common_words(file: &SealedFile, sealed: bool) {
    let list = common_list(file);
    for (i, e) in file.block_table().iter().enumerate() {
        let entries = file.read_block(i).unwrap();
        let all: HashSet<u64> = entries
            .iter()
            .flat_map(|e| words(&e.message).collect::<Vec<_>>())
            .map(|w| word_hash(&w))
            .collect();
        let kept: Vec<u64> = all
            .iter()
            .copied()
            .filter(|h| list.binary_search(h).is_err())
            .collect();
        let filter = file.filter(&e.unwrap()).unwrap();
        let want = if kept.is_empty() {
            0
        } else {
            (kept.len() * BITS_PER_WORD).div_ceil(8).max(8)
        };
        if sealed {
            assert_eq!(filter.bits.len(), want, "block {i}: {} kept", kept.len());
        } else {
            assert!(filter.bits.len() >= want, "block {i}: {} kept", kept.len());
        }
        assert!(
            kept.iter().all(|&h| filter.may_contain_hash(h)),
            "block {i}"
        );
        let meta = &file.blocks()[i];
        for entry in &entries {
            for w in words(&entry.message) {
                assert!(meta.may_contain_word(&w), "block {i} lost {w}");
            }
        }
    }
}

/// Version 7: the words held by half the sampled blocks are listed once, every block filter
/// leaves exactly them out, and every word is still found; a damaged list makes every block a
/// "maybe" for every word, and is reported.
#[test]
fn common_words_are_listed_once_and_left_out_of_every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (day, written) = v1_day(dir.path(), 20_000);
    let opts = SealOptions {
        block_target: 8 << 10,
        train_bytes: 128 << 10,
        ..SealOptions::default()
    };
    let f = seal(dir.path(), day, opts);
    let path = sealed_path(&dir.path().join("segments"), day);
    let sealed = SealedFile::open(&path).unwrap();
    assert!(sealed.trailer().common);
    let list = common_list(&sealed);
    // In every message: common. A line number is in one block: not.
    for w in [
        "line",
        "downloading",
        "crate",
        "serde_json",
        "from",
        "index",
    ] {
        assert!(list.binary_search(&word_hash(w)).is_ok(), "{w}");
    }
    assert!(list.binary_search(&word_hash("12345")).is_err());
    assert!(list.len() < 80, "{} common words", list.len());
    assert_filters_leave_out_the_common_words(&sealed, true);
    let mut expected = written.clone();
    expected.sort_by_key(|e| exec_hash(e.execution_id.as_str()));
    assert_eq!(all_entries(&sealed), expected);
    assert!(sealed.check_common().is_empty());
    let rows = crate::sealed::breakdown::breakdown(&path).unwrap();
    let row = rows.iter().find(|r| r.name == "common words").unwrap();
    assert_eq!(row.stored, 8 * list.len() as u64 + 8);
    // A rare word is still ruled out by most filters.
    let skipped = sealed
        .blocks()
        .iter()
        .filter(|m| !m.may_contain_word("12345"))
        .count();
    assert!(
        skipped * 10 >= sealed.block_count() * 9,
        "{skipped} of {}",
        sealed.block_count()
    );
    // Damage the list: every block may hold every word, and `verify` says why.
    let start = sealed.filters_end();
    drop(sealed);
    let mut bytes = f.clone();
    bytes[usize::try_from(start).unwrap() + 3] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let sealed = SealedFile::open(&path).unwrap();
    assert_eq!(sealed.common_words().as_deref(), Some(&CommonWords::Lost));
    assert!(sealed.blocks().iter().all(|m| m.may_contain_word("12345")));
    let problems = sealed.check_common();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, start);
    assert!(problems[0].1.contains("common-words"), "{problems:?}");
    assert_eq!(all_entries(&sealed), expected, "the entries are all there");
    assert!(!crate::sealed::merge::mergeable(&sealed));
}

/// A version-6 file (no common words; its blocks are those of version 7) is read as it is and
/// merges with version-7 files: the merge lists the version-7 file's common words.
#[test]
fn a_version_6_file_reads_and_merges_with_version_7_ones() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (day, _) = v1_day(one.path(), 40);
    let (day2, _) = v1_day(two.path(), 20_000);
    let mut old = seal(one.path(), day, SealOptions::default());
    let old_path = sealed_path(&one.path().join("segments"), day);
    old[8..12].copy_from_slice(&6u32.to_le_bytes());
    std::fs::write(&old_path, &old).unwrap();
    seal(
        two.path(),
        day2,
        SealOptions {
            block_target: 8 << 10,
            train_bytes: 128 << 10,
            ..SealOptions::default()
        },
    );
    let a = Arc::new(SealedFile::open(&old_path).unwrap());
    let b = Arc::new(SealedFile::open(&sealed_path(&two.path().join("segments"), day2)).unwrap());
    assert_eq!((a.version(), b.version()), (6, 7));
    assert!(a.common_words().is_none() && !common_list(&b).is_empty());
    assert!(crate::sealed::merge::mergeable(&a) && crate::sealed::merge::mergeable(&b));
    let tmp = one.path().join("merged.tmp");
    crate::sealed::merge::merge(
        &[Arc::clone(&a), Arc::clone(&b)],
        &tmp,
        crate::sealed::merge::Frames::Copy,
        &AtomicBool::new(false),
    )
    .unwrap()
    .unwrap();
    let m = SealedFile::open(&tmp).unwrap();
    assert_eq!(m.version(), 7);
    assert_eq!(common_list(&m), common_list(&b));
    let mut want = all_entries(&a);
    want.extend(all_entries(&b));
    assert_eq!(all_entries(&m), want);
    assert_filters_leave_out_the_common_words(&m, false);
}

/// A merge keeps each input's dictionary, writes one met twice once, and renumbers the
/// blocks: the merged file holds every entry of its inputs, in order.
#[test]
fn merges_keep_and_share_dictionaries() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (day, _) = v1_day(one.path(), 60_000);
    let (day2, _) = v1_day(two.path(), 50_000);
    seal(one.path(), day, with_dict());
    // Other blocks, so another dictionary.
    seal(
        two.path(),
        day2,
        SealOptions {
            block_target: 24 << 10,
            ..with_dict()
        },
    );
    let a = Arc::new(SealedFile::open(&sealed_path(&one.path().join("segments"), day)).unwrap());
    let b = Arc::new(SealedFile::open(&sealed_path(&two.path().join("segments"), day2)).unwrap());
    assert_ne!(a.dict_bytes(0).unwrap(), b.dict_bytes(0).unwrap());
    assert!(crate::sealed::merge::mergeable(&a) && crate::sealed::merge::mergeable(&b));
    let tmp = one.path().join("merged.tmp");
    let inputs = [Arc::clone(&a), Arc::clone(&b), Arc::clone(&a)];
    crate::sealed::merge::merge(
        &inputs,
        &tmp,
        crate::sealed::merge::Frames::Copy,
        &AtomicBool::new(false),
    )
    .unwrap()
    .unwrap();
    let m = SealedFile::open(&tmp).unwrap();
    assert_eq!(
        m.dict_layout().unwrap().dicts.len(),
        2,
        "a's dictionary once"
    );
    let mut want = all_entries(&a);
    want.extend(all_entries(&b));
    want.extend(all_entries(&a));
    assert_eq!(all_entries(&m), want);
    // Search's path, whose runs of one dictionary switch between the two.
    let scan: Vec<LogEntry> = scanned(&tmp).into_iter().flat_map(Result::unwrap).collect();
    assert_eq!(scan, want);
    assert!(m.check_dicts().unwrap().is_empty());
    assert!(
        crate::sealed::merge::mergeable(&m),
        "a merged file merges again"
    );
    // Its common words are the union of its inputs'.
    let (la, lb) = (common_list(&a), common_list(&b));
    assert!(!la.is_empty() && !lb.is_empty());
    assert_eq!(
        common_list(&m),
        crate::sealed::common::union(&[&la, &lb]).unwrap()
    );
    assert_filters_leave_out_the_common_words(&m, false);
}

/// A part sealed with the day's dictionary (what the sealer hands a later part of the day)
/// uses it without training, and merged with the part it came from, the day holds it once.
#[test]
fn a_later_part_reuses_the_days_dictionary_and_the_merge_holds_it_once() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (day, _) = v1_day(one.path(), 60_000);
    let (day2, _) = v1_day(two.path(), 30_000);
    seal(one.path(), day, with_dict());
    let a = Arc::new(SealedFile::open(&sealed_path(&one.path().join("segments"), day)).unwrap());
    let d = a.dict_bytes(0).unwrap().unwrap();
    let segs = two.path().join("segments");
    let input =
        crate::sealed::seal::SealInput::segment(&segs, day2, 1, sealed_tmp_path(&segs, day2))
            .with_dict(Some(d.clone()));
    crate::sealed::seal::write_sealed_from(&input, day2, with_dict(), &AtomicBool::new(false))
        .unwrap()
        .unwrap();
    let b = Arc::new(SealedFile::open(&sealed_tmp_path(&segs, day2)).unwrap());
    assert_eq!(
        b.dict_bytes(0).unwrap().as_ref(),
        Some(&d),
        "the dictionary it was given"
    );
    assert!(b.block_table().iter().all(|e| e.unwrap().dict == 1));
    let tmp = one.path().join("merged.tmp");
    crate::sealed::merge::merge(
        &[Arc::clone(&a), Arc::clone(&b)],
        &tmp,
        crate::sealed::merge::Frames::Copy,
        &AtomicBool::new(false),
    )
    .unwrap()
    .unwrap();
    let m = SealedFile::open(&tmp).unwrap();
    assert_eq!(m.dict_layout().unwrap().dicts.len(), 1);
    let mut want = all_entries(&a);
    want.extend(all_entries(&b));
    assert_eq!(all_entries(&m), want);
}

/// The merge that makes a finished day's sealed file compresses every block again: each block
/// keeps its number, raw bytes, filter and dictionary (so cursors counted in blocks hold), the
/// file is smaller, and a damaged block is carried over as it was, still reported.
#[test]
fn a_recompressing_merge_keeps_every_block_and_spends_fewer_bytes() {
    use crate::sealed::merge::{merge, Frames};
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (day, _) = v1_day(one.path(), 60_000);
    let (day2, _) = v1_day(two.path(), 50_000);
    seal(one.path(), day, with_dict());
    seal(
        two.path(),
        day2,
        SealOptions {
            block_target: 24 << 10,
            ..with_dict()
        },
    );
    // A copy of the first day with one block's frame damaged.
    let clean = sealed_path(&one.path().join("segments"), day);
    let spoiled = one.path().join("spoiled.sealed");
    std::fs::copy(&clean, &spoiled).unwrap();
    let victim = SealedFile::open(&clean).unwrap().block_table()[3].unwrap();
    let mut bytes = std::fs::read(&spoiled).unwrap();
    bytes[usize::try_from(victim.offset).unwrap() + 20] ^= 0x40;
    std::fs::write(&spoiled, &bytes).unwrap();
    let a = Arc::new(SealedFile::open(&spoiled).unwrap());
    let b = Arc::new(SealedFile::open(&sealed_path(&two.path().join("segments"), day2)).unwrap());
    assert!(crate::sealed::merge::mergeable(&a) && crate::sealed::merge::mergeable(&b));
    let inputs = [Arc::clone(&a), Arc::clone(&b)];
    let never = AtomicBool::new(false);
    let (copied, again) = (one.path().join("copy.tmp"), one.path().join("again.tmp"));
    merge(&inputs, &copied, Frames::Copy, &never)
        .unwrap()
        .unwrap();
    let outcome = merge(
        &inputs,
        &again,
        Frames::Recompress(crate::sealed::options::DAY_LEVEL),
        &never,
    )
    .unwrap()
    .unwrap();
    let (c, r) = (
        SealedFile::open(&copied).unwrap(),
        SealedFile::open(&again).unwrap(),
    );
    assert_eq!(outcome.bytes_out, std::fs::metadata(&again).unwrap().len());
    assert!(
        outcome.bytes_out < std::fs::metadata(&copied).unwrap().len(),
        "{} bytes recompressed, {} copied",
        outcome.bytes_out,
        std::fs::metadata(&copied).unwrap().len()
    );
    assert_eq!(c.block_count(), r.block_count());
    let (mut f1, mut r1, mut f2, mut r2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut smaller = 0;
    for i in 0..c.block_count() {
        let (ec, er) = (c.block_table()[i].unwrap(), r.block_table()[i].unwrap());
        assert_eq!(
            (
                ec.raw_len,
                ec.entries,
                ec.min_ts,
                ec.max_ts,
                ec.level_mask,
                ec.dict
            ),
            (
                er.raw_len,
                er.entries,
                er.min_ts,
                er.max_ts,
                er.level_mask,
                er.dict
            ),
            "block {i}"
        );
        assert_eq!(
            (ec.filter_len, ec.filter_crc),
            (er.filter_len, er.filter_crc)
        );
        let ok_c = c.frame_and_raw(i, &mut f1, &mut r1).unwrap();
        let ok_r = r.frame_and_raw(i, &mut f2, &mut r2).unwrap();
        assert_eq!(ok_c, ok_r, "block {i}: damaged in one and not the other");
        if ok_c {
            assert_eq!(r1, r2, "block {i}: other raw bytes");
            smaller += usize::from(er.len < ec.len);
        } else {
            assert_eq!(i, 3, "only the spoiled block is damaged");
            assert_eq!(f1, f2, "a damaged block is carried over byte for byte");
            assert_eq!((ec.len, ec.crc), (er.len, er.crc));
        }
    }
    assert!(smaller > c.block_count() / 2, "{smaller} blocks smaller");
    // Every entry but the damaged block's, in the same order, by both read paths.
    let read = |f: &SealedFile| -> Vec<Option<Vec<LogEntry>>> {
        (0..f.block_count()).map(|b| f.read_block(b).ok()).collect()
    };
    assert_eq!(read(&r), read(&c));
    let scan = |p: &Path| -> Vec<Option<Vec<LogEntry>>> {
        scanned(p).into_iter().map(Result::ok).collect()
    };
    assert_eq!(scan(&again), read(&c));
    assert_eq!(
        read(&r).iter().filter(|x| x.is_none()).count(),
        1,
        "the damaged block is reported"
    );
    assert!(r.check_dicts().unwrap().is_empty());
    assert_eq!(common_list(&r), common_list(&c));
    assert!(
        crate::sealed::merge::mergeable(&r),
        "a recompressed file merges again"
    );
}
