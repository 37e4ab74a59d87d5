//! Tests of a sealed file as search and shipping read it: block order, filters, damage.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use std::collections::HashSet;

use super::common::CommonWords;
use super::filter::{word_hash, words, BITS_PER_WORD};
use super::layout::{sealed_path, sealed_tmp_path};
use super::seal::{write_sealed, SealOptions};
use super::SealedFile;
use crate::day::Day;
use crate::journal::index::exec_hash;
use crate::{
    CommitPolicy, Config, Durability, ExecutionId, Level, LogEntry, LogStore, ManualClock, TaskId,
};

const NOON: i64 = 1_768_046_400_000;

/// A v1 day (left live: the store is closed before any roll) of `n` interleaved entries.
fn v1_day(dir: &Path, n: usize) -> (Day, Vec<LogEntry>) {
    let clock = ManualClock::new(NOON);
    let config = Config {
        commit: CommitPolicy {
            max_batch_entries: 10,
            ..CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
        part_bytes: crate::DEFAULT_PART_BYTES,
        ..Config::default()
    };
    let store = LogStore::open_with(dir, config).unwrap();
    let mut written = Vec::new();
    for i in 0..n {
        let exec = ExecutionId::new(format!("run-{}", i % 7)).unwrap();
        let mut e = LogEntry::new(
            exec,
            NOON + i as i64,
            Level::ALL[i % 4],
            if i % 2 == 0 {
                "plugin:fetch"
            } else {
                "scheduler"
            },
            format!(
                "line {i}: Downloading crate serde_json v1.0.{} from index",
                i % 50
            ),
        );
        if i % 3 == 0 {
            e = e.with_task(TaskId::new(format!("t{}", i % 5)).unwrap());
        }
        store.append(&e).unwrap();
        written.push(e);
    }
    store.flush(Durability::Synced).unwrap();
    drop(store);
    (Day::from_unix_ms(NOON), written)
}

fn seal(dir: &Path, day: Day, opts: SealOptions) -> Vec<u8> {
    let segs = dir.join("segments");
    write_sealed(&segs, day, opts, &AtomicBool::new(false))
        .unwrap()
        .unwrap();
    std::fs::rename(sealed_tmp_path(&segs, day), sealed_path(&segs, day)).unwrap();
    std::fs::read(sealed_path(&segs, day)).unwrap()
}

fn small_blocks() -> SealOptions {
    SealOptions {
        block_target: 2048,
        partition_bytes: 4096,
        ..SealOptions::default()
    }
}

#[test]
fn blocks_are_in_file_order_executions_clustered_in_append_order() {
    let dir = tempfile::tempdir().unwrap();
    let (day, written) = v1_day(dir.path(), 3000);
    seal(dir.path(), day, small_blocks());
    let sealed = SealedFile::open(&sealed_path(&dir.path().join("segments"), day)).unwrap();

    let metas = sealed.blocks();
    assert!(metas.len() > 20, "{} blocks", metas.len());
    let mut all = Vec::new();
    for (i, m) in metas.iter().enumerate() {
        let entries = sealed.read_block(i).unwrap();
        assert_eq!(entries.len(), m.entries as usize);
        assert_eq!(m.min_ts, entries.iter().map(|e| e.timestamp).min().unwrap());
        assert_eq!(m.max_ts, entries.iter().map(|e| e.timestamp).max().unwrap());
        for e in &entries {
            assert!(m.level_mask >> e.level.to_byte() & 1 == 1);
            assert!(m.may_have_source_prefix(&e.source[..3]));
            assert!(m.may_have_execution_prefix(&e.execution_id.as_str()[..4]));
            if let Some(t) = &e.task_id {
                assert!(m.may_have_task(t.as_str()));
            }
            for w in words(&e.message) {
                assert!(m.may_contain_word(&w), "block {i} lost word {w}");
            }
        }
        all.extend(entries);
    }
    assert!(!metas[0].may_have_execution_prefix("nope"));
    assert!(!metas[0].may_have_task("t9"));
    assert!(!metas[0].may_have_source_prefix("x"));
    // Clustered: each execution's entries are contiguous, executions in hash order, and
    // inside each execution the entries are in append order.
    let mut expected = written.clone();
    expected.sort_by_key(|e| exec_hash(e.execution_id.as_str())); // stable: append order kept
    assert_eq!(all, expected);
}

#[test]
fn partitions_do_not_change_a_byte() {
    // The spill sort cuts a large day into partitions (read whole, or run by run when one is
    // over twice its budget); the file must not depend on how.
    let dir = tempfile::tempdir().unwrap();
    let (day, _) = v1_day(dir.path(), 2000);
    let seg_len = std::fs::metadata(dir.path().join(format!("segments/{day}.000001.log")))
        .unwrap()
        .len();
    let whole = seal(dir.path(), day, SealOptions::default());
    for partition_bytes in [seg_len / 4, 1] {
        let parted = seal(
            dir.path(),
            day,
            SealOptions {
                partition_bytes,
                ..SealOptions::default()
            },
        );
        assert!(
            whole == parted,
            "partition_bytes {partition_bytes} changed the file"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|n| n.contains("tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_damaged_block_loses_only_its_own_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (day, _) = v1_day(dir.path(), 3000);
    seal(dir.path(), day, small_blocks());
    let path = sealed_path(&dir.path().join("segments"), day);
    let sealed = SealedFile::open(&path).unwrap();
    let k = sealed.block_count() / 2;
    let target = sealed.block_table()[k].unwrap();
    drop(sealed);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[usize::try_from(target.offset).unwrap() + 5] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let sealed = SealedFile::open(&path).unwrap();
    for i in 0..sealed.block_count() {
        let r = sealed.read_block(i);
        if i == k {
            let err = r.unwrap_err().to_string();
            assert!(err.contains(&format!("block {k}")), "{err}");
            assert!(err.contains("checksum"), "{err}");
        } else {
            assert!(r.is_ok(), "block {i}: {r:?}");
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The worked example of docs/FORMAT.md ("Version 2: sealed days"): every byte of the sealed
/// file of one entry, except the zstd frame, whose decompression is pinned instead.
#[test]
fn sealed_layout_matches_format_doc() {
    use super::layout::*;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1000);
    let store = LogStore::open_with(
        dir.path(),
        Config {
            commit: CommitPolicy::default(),
            clock: Arc::new(clock),
            part_bytes: crate::DEFAULT_PART_BYTES,
            ..Config::default()
        },
    )
    .unwrap();
    let e = LogEntry::new(
        ExecutionId::new("e1").unwrap(),
        1000,
        Level::Info,
        "s",
        "hi",
    );
    store.append(&e).unwrap();
    drop(store);
    let day = Day(0);
    let f = seal(dir.path(), day, SealOptions::default());
    let len = f.len();
    // Header, then the trailer copy.
    assert_eq!(
        hex(&f[..16]),
        "4C 4F 47 53 54 53 4C 44 07 00 00 00 00 00 00 00"
    );
    assert_eq!(f[16..88], f[len - 72..]);
    let t = Trailer::from_bytes(&f[len - 72..], len as u64).unwrap();
    let table = usize::try_from(t.block_table).unwrap();
    let b = BlockEntry::from_bytes(&f[table..table + 64]).unwrap();
    assert_eq!(b.offset, 88);
    let block = &f[88..88 + usize::try_from(b.len).unwrap()];
    let raw = zstd::bulk::decompress(block, b.raw_len as usize).unwrap();
    assert_eq!(
        hex(&raw),
        "01 01 02 65 31 00 D0 0F 01 01 01 73 00 00 00 00 02 68 69 02"
    );
    assert_eq!(b.crc, crc32fast::hash(block));
    // The zstd frame: this one is a single raw block (the input is too small to compress).
    assert_eq!(hex(block), FRAME);
    let filter_at = usize::try_from(b.filter_offset).unwrap();
    let filter = &f[filter_at..filter_at + b.filter_len as usize];
    assert_eq!(b.filter_offset, 117);
    assert_eq!(hex(filter), FILTER);
    assert_eq!(hex(&f[table..table + 64]), BLOCK_ENTRY);
    let x = usize::try_from(t.exec_table).unwrap();
    assert_eq!(hex(&f[x..x + 56]), EXEC_RECORD);
    // The catalog (version 5): record 0 by first entry, its page CRC; the fence: hash("e1"),
    // its page CRC.
    assert_eq!(hex(&f[x + 56..x + 76]), CATALOG);
    assert_eq!(
        hex(&f[usize::try_from(t.names).unwrap()..len - 72]),
        "65 31"
    );
    assert_eq!(hex(&f[len - 72..]), TRAILER);
    assert_eq!(len, 349);
    // The bloom bits are those of the word "hi" (FNV-1a 0x...; 6 double-hashed positions in
    // 64 bits).
    let h = super::filter::word_hash("hi");
    let mut bits = [0u8; 8];
    for i in 0..u64::from(super::filter::HASHES) {
        let bit = ((h & 0xffff_ffff) + i * ((h >> 32) | 1)) % 64;
        bits[usize::try_from(bit / 8).unwrap()] |= 1 << (bit % 8);
    }
    assert_eq!(filter[2..10], bits);
}

const FRAME: &str =
    "28 B5 2F FD 20 14 A1 00 00 01 01 02 65 31 00 D0 0F 01 01 01 73 00 00 00 00 02 68 69 02";
const FILTER: &str = "08 06 00 00 00 04 02 81 40 20 01 01 73 00 01 02 65 31";
const BLOCK_ENTRY: &str =
    "58 00 00 00 00 00 00 00 1D 00 00 00 14 00 00 00 01 00 00 00 0D A7 8A 16 \
E8 03 00 00 00 00 00 00 E8 03 00 00 00 00 00 00 75 00 00 00 00 00 00 00 12 00 00 00 8A 15 DF 44 \
02 00 00 00 84 CE D2 61";
const EXEC_RECORD: &str =
    "83 B8 39 B5 07 7B 8E 08 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 \
E8 03 00 00 00 00 00 00 E8 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00 DF 6D 00 82";
const CATALOG: &str = "00 00 00 00 1C DF 44 21 83 B8 39 B5 07 7B 8E 08 69 0F F6 3E";
const TRAILER: &str = "4C 4F 47 53 54 45 4E 44 87 00 00 00 00 00 00 00 C7 00 00 00 00 00 00 00 \
13 01 00 00 00 00 00 00 02 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 76 00 00 00 00 00 00 00 \
01 00 00 00 01 00 00 00 01 00 00 00 CD 92 6B 41";

/// A day sealed by a version-1 writer has both indexes; the partition sort reads the live one.
/// Here `spoil` damages the live index (given its path and entry count) beside a whole sorted
/// index: sealing, with the segment in one partition or in four, must still give every entry
/// of the undamaged day, in the same order.
fn seals_every_entry_despite(spoil: impl Fn(&Path, usize)) {
    use crate::journal::index::{self, SortedIndex};
    use crate::view::{Access, FileView};
    let dir = tempfile::tempdir().unwrap();
    let (day, _) = v1_day(dir.path(), 2000);
    let segs = dir.path().join("segments");
    let entries_of = |opts| {
        seal(dir.path(), day, opts);
        let sealed = SealedFile::open(&sealed_path(&segs, day)).unwrap();
        (0..sealed.block_count())
            .flat_map(|b| sealed.read_block(b).unwrap())
            .collect::<Vec<_>>()
    };
    let whole = entries_of(SealOptions::default());
    assert_eq!(whole.len(), 2000);
    let idx = crate::names::index_file(&segs, day, 1);
    let mut entries = Vec::new();
    let view = FileView::open(&idx, Access::Pread).unwrap();
    index::scan_live(&view, 0, |_, e| entries.push(e)).unwrap();
    drop(view);
    SortedIndex::write(
        &crate::names::sorted_index_file(&segs, day, 1),
        &entries,
    )
    .unwrap();
    spoil(&idx, entries.len());
    let seg_len = std::fs::metadata(segs.join(format!("{day}.000001.log")))
        .unwrap()
        .len();
    for partition_bytes in [seg_len, seg_len / 4] {
        let got = entries_of(SealOptions {
            partition_bytes,
            ..SealOptions::default()
        });
        // (The files differ only in the v1 bytes they record: the sorted index is counted.)
        assert!(
            got == whole,
            "partition_bytes {partition_bytes}: entries lost"
        );
    }
}

#[test]
fn a_live_index_cut_by_damage_falls_back_to_the_whole_sorted_index() {
    seals_every_entry_despite(|idx, n| {
        let mut bytes = std::fs::read(idx).unwrap();
        bytes[16 + n / 3 * crate::journal::index::ENTRY_LEN + 3] ^= 0x40;
        std::fs::write(idx, &bytes).unwrap();
    });
}

#[test]
fn a_live_index_short_of_the_sorted_index_is_not_trusted() {
    // A version-1 writer fsynced the sorted index when it sealed a day, never the live one: a
    // power cut can leave the live index a valid but short prefix beside a whole sorted index.
    seals_every_entry_despite(|idx, _| {
        let file = std::fs::OpenOptions::new().write(true).open(idx).unwrap();
        file.set_len(16 + 10 * crate::journal::index::ENTRY_LEN as u64)
            .unwrap();
    });
}

/// The byte breakdown of a sealed file accounts for every byte of it, and its message column's
/// raw size is the messages' bytes.
#[test]
fn the_breakdown_accounts_for_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (day, written) = v1_day(dir.path(), 3000);
    let f = seal(dir.path(), day, small_blocks());
    let rows =
        super::breakdown::breakdown(&sealed_path(&dir.path().join("segments"), day)).unwrap();
    assert_eq!(rows.iter().map(|r| r.stored).sum::<u64>(), f.len() as u64);
    let messages = rows.iter().find(|r| r.name == "column: messages").unwrap();
    let text: usize = written.iter().map(|e| e.message.len()).sum();
    // The column holds the text and one length varint per message.
    assert!(messages.raw >= text as u64 && messages.raw <= (text + 2 * written.len()) as u64);
    assert!(rows.iter().any(|r| r.name == "catalog" && r.stored > 0));
    assert!(!rows.iter().any(|r| r.name.starts_with("unaccounted")));
}

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
    let day = super::SealedDay::open(path, Day(0)).unwrap();
    let n = u32::try_from(day.block_table().len()).unwrap();
    let mut out = Vec::new();
    let all: Vec<u32> = (0..n).collect();
    let done = day
        .scan_blocks(&all, &mut super::BlockScratch::default(), &mut |b, r| {
            assert_eq!(b as usize, out.len());
            out.push(
                r.map(|c| c.payloads().iter().map(|p| p.to_entry().unwrap()).collect())
                    .map_err(|e| e.to_string()),
            );
            true
        })
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
    let rows = super::breakdown::breakdown(&path).unwrap();
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
    let rows = super::breakdown::breakdown(&path).unwrap();
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
    assert!(!super::merge::mergeable(&sealed));
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
    assert!(super::merge::mergeable(&a) && super::merge::mergeable(&b));
    let tmp = one.path().join("merged.tmp");
    super::merge::merge(
        &[Arc::clone(&a), Arc::clone(&b)],
        &tmp,
        super::merge::Frames::Copy,
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
    assert!(super::merge::mergeable(&a) && super::merge::mergeable(&b));
    let tmp = one.path().join("merged.tmp");
    let inputs = [Arc::clone(&a), Arc::clone(&b), Arc::clone(&a)];
    super::merge::merge(
        &inputs,
        &tmp,
        super::merge::Frames::Copy,
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
    assert!(super::merge::mergeable(&m), "a merged file merges again");
    // Its common words are the union of its inputs'.
    let (la, lb) = (common_list(&a), common_list(&b));
    assert!(!la.is_empty() && !lb.is_empty());
    assert_eq!(common_list(&m), super::common::union(&[&la, &lb]).unwrap());
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
    let input = super::seal::SealInput::segment(&segs, day2, 1, sealed_tmp_path(&segs, day2))
        .with_dict(Some(d.clone()));
    super::seal::write_sealed_from(&input, day2, with_dict(), &AtomicBool::new(false))
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
    super::merge::merge(
        &[Arc::clone(&a), Arc::clone(&b)],
        &tmp,
        super::merge::Frames::Copy,
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
    use super::merge::{merge, Frames};
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
    assert!(super::merge::mergeable(&a) && super::merge::mergeable(&b));
    let inputs = [Arc::clone(&a), Arc::clone(&b)];
    let never = AtomicBool::new(false);
    let (copied, again) = (one.path().join("copy.tmp"), one.path().join("again.tmp"));
    merge(&inputs, &copied, Frames::Copy, &never)
        .unwrap()
        .unwrap();
    let outcome = merge(
        &inputs,
        &again,
        Frames::Recompress(super::seal::DAY_LEVEL),
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
        super::merge::mergeable(&r),
        "a recompressed file merges again"
    );
}
