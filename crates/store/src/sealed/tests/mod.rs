//! Tests of a sealed file as search and shipping read it: block order, filters, damage.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::SealedFile;
use crate::day::Day;
use crate::journal::index::exec_hash;
use crate::sealed::filter::words;
use crate::sealed::layout::{sealed_path, sealed_tmp_path};
use crate::sealed::options::SealOptions;
use crate::sealed::seal::write_sealed;
use crate::{
    CommitPolicy, Config, Durability, ExecutionId, Level, LogEntry, LogStore, ManualClock, TaskId,
};

mod dicts;

const NOON: i64 = 1_768_046_400_000;

/// A live-layout day (left live: the store is closed before any roll) of `n` interleaved entries.
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
    use crate::sealed::layout::*;
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
    let h = crate::sealed::filter::word_hash("hi");
    let mut bits = [0u8; 8];
    for i in 0..u64::from(crate::sealed::filter::HASHES) {
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
    SortedIndex::write(&crate::names::sorted_index_file(&segs, day, 1), &entries).unwrap();
    spoil(&idx, entries.len());
    let seg_len = std::fs::metadata(segs.join(format!("{day}.000001.log")))
        .unwrap()
        .len();
    for partition_bytes in [seg_len, seg_len / 4] {
        let got = entries_of(SealOptions {
            partition_bytes,
            ..SealOptions::default()
        });
        // (The files differ only in the segment bytes they record: the sorted index is counted.)
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
    let rows = crate::sealed::breakdown::breakdown(&sealed_path(&dir.path().join("segments"), day))
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.stored).sum::<u64>(), f.len() as u64);
    let messages = rows.iter().find(|r| r.name == "column: messages").unwrap();
    let text: usize = written.iter().map(|e| e.message.len()).sum();
    // The column holds the text and one length varint per message.
    assert!(messages.raw >= text as u64 && messages.raw <= (text + 2 * written.len()) as u64);
    assert!(rows.iter().any(|r| r.name == "catalog" && r.stored > 0));
    assert!(!rows.iter().any(|r| r.name.starts_with("unaccounted")));
}
