//! Recovery from damaged files: each test writes a store through the API, closes it, damages
//! the real files the way a crash, a power cut or a bad disk would, reopens, and checks that
//! exactly the intact data comes back, that the damage is reported by file and offset, and that
//! the writer carries on.

mod common;

use std::path::Path;

use common::*;
use logstore::{Durability, ExecutionId, Level, LogEntry, LogStore};

fn msg(exec: &str, i: u64) -> LogEntry {
    LogEntry::new(
        ExecutionId::new(exec).unwrap(),
        NOON + i64::try_from(i).unwrap(),
        Level::ALL[usize::try_from(i % 4).unwrap()],
        "worker",
        format!("{exec} message {i} ✓\nsecond line"),
    )
}

/// Writes `before` (one finished execution) and `exec` with `n` entries then its terminal
/// entry, every entry in its own flush when `one_per_run`, else all in one batch.
fn write_store(dir: &Path, n: u64, one_per_run: bool) -> (Vec<LogEntry>, Vec<LogEntry>) {
    let (_clock, config) = clock_config(NOON);
    let store = LogStore::open_with(dir, config).unwrap();
    let before: Vec<LogEntry> = (0..5).map(|i| msg("before", i)).collect();
    for e in &before {
        store.append(e).unwrap();
    }
    store
        .finish_execution(&ExecutionId::new("before").unwrap())
        .unwrap();
    let mut written: Vec<LogEntry> = (0..n).map(|i| msg("exec", i)).collect();
    written.push(terminal("exec", NOON + 1000, "SUCCESS"));
    for e in &written {
        store.append(e).unwrap();
        if one_per_run {
            store.flush(Durability::Written).unwrap();
        }
    }
    store
        .finish_execution(&ExecutionId::new("exec").unwrap())
        .unwrap();
    (before, written)
}

fn reopen(dir: &Path) -> LogStore {
    let (_clock, config) = clock_config(NOON);
    LogStore::open_with(dir, config).unwrap()
}

/// The writer still works: a new entry goes in and comes back, and a second reopen changes
/// nothing.
fn assert_writer_goes_on(dir: &Path, store: LogStore, exec: &str, expect: &[LogEntry]) {
    let extra = msg(exec, 9999);
    store.append(&extra).unwrap();
    store.flush(Durability::Synced).unwrap();
    let mut want = expect.to_vec();
    want.push(extra);
    assert_eq!(all_of(&store, exec), want);
    drop(store);
    let again = reopen(dir);
    assert_eq!(all_of(&again, exec), want, "second reopen is not stable");
    assert!(again.recovered_damage().is_empty());
    let report = again.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn tail_cut_at_every_byte_of_the_last_record() {
    let base = tempfile::tempdir().unwrap();
    let (before, written) = write_store(base.path(), 12, false);
    let seg = last_segment(base.path());
    let frames = frames(&seg);
    let &(last_off, last_len, ref last_exec, _) = frames.last().unwrap();
    assert_eq!(last_exec, "exec");
    let kept = &written[..written.len() - 1];
    for cut in last_off..last_off + last_len as u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        truncate(&last_segment(dir.path()), cut);
        let store = reopen(dir.path());
        assert_eq!(all_of(&store, "before"), before, "cut at {cut}");
        assert_eq!(all_of(&store, "exec"), kept, "cut at {cut}");
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "cut at {cut}: {:?}", report.problems);
        assert_writer_goes_on(dir.path(), store, "exec", kept);
    }
}

#[test]
fn tail_cut_inside_a_single_record_run() {
    // The last run holds one record, so the index entry of that run points past the cut.
    let base = tempfile::tempdir().unwrap();
    let (_, written) = write_store(base.path(), 6, true);
    let seg = last_segment(base.path());
    let &(last_off, last_len, _, _) = frames(&seg).last().unwrap();
    for cut in [
        last_off,
        last_off + 1,
        last_off + 8,
        last_off + last_len as u64 - 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        truncate(&last_segment(dir.path()), cut);
        let store = reopen(dir.path());
        let kept = &written[..written.len() - 1];
        assert_eq!(all_of(&store, "exec"), kept, "cut at {cut}");
        assert!(store.verify().unwrap().is_ok());
        assert_writer_goes_on(dir.path(), store, "exec", kept);
    }
}

/// Flips one bit in the middle of the record at frame position `victim` and checks that only
/// that record is lost and that `verify` names the file and the record's offset.
fn flipped_bit_loses_only_that_record(one_per_run: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (before, written) = write_store(dir.path(), 20, one_per_run);
    let seg = last_segment(dir.path());
    let frames = frames(&seg);
    // Frames: 5 of "before", then 21 of "exec"; the victim is exec's 10th entry.
    let victim = 5 + 10;
    let (off, len, ref exec, _) = frames[victim];
    assert_eq!(exec, "exec");
    flip_bit(&seg, off + len as u64 / 2, 3);

    let store = reopen(dir.path());
    let mut want = written.clone();
    want.remove(10);
    assert_eq!(all_of(&store, "before"), before);
    assert_eq!(
        all_of(&store, "exec"),
        want,
        "records before and after the damaged one must be returned"
    );
    let report = store.verify().unwrap();
    let named = report
        .problems
        .iter()
        .any(|p| p.file == seg && p.offset == off);
    let recovered = store
        .recovered_damage()
        .iter()
        .any(|d| d.file == seg && d.offset == off);
    assert!(
        named || recovered,
        "damage at {off} not named: verify {:?}, recovery {:?}",
        report.problems,
        store.recovered_damage()
    );
}

#[test]
fn flipped_bit_in_one_record_runs_loses_only_that_record() {
    flipped_bit_loses_only_that_record(true);
}

#[test]
fn flipped_bit_inside_a_multi_record_run_loses_only_that_record() {
    flipped_bit_loses_only_that_record(false);
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    for garbage in [
        vec![0u8; 1],
        vec![0u8; 100],
        vec![0xFF; 7],
        (0..=255u8).collect::<Vec<_>>(),
        // A plausible frame header: small length, wrong CRC.
        [20u32.to_le_bytes(), 0xDEAD_BEEFu32.to_le_bytes()].concat(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (before, written) = write_store(dir.path(), 8, false);
        let seg = last_segment(dir.path());
        let len = std::fs::metadata(&seg).unwrap().len();
        append_bytes(&seg, &garbage);
        let store = reopen(dir.path());
        assert_eq!(all_of(&store, "before"), before);
        assert_eq!(all_of(&store, "exec"), written);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), len, "tail not cut");
        assert!(store.verify().unwrap().is_ok());
        assert_writer_goes_on(dir.path(), store, "exec", &written);
    }
}

#[test]
fn torn_index_is_rebuilt_at_every_cut() {
    let base = tempfile::tempdir().unwrap();
    let (before, written) = write_store(base.path(), 30, true);
    let idx = index_of(&last_segment(base.path()));
    let idx_len = std::fs::metadata(&idx).unwrap().len();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut cuts: Vec<u64> = (0..25).map(|_| rng.u64(0..idx_len)).collect();
    cuts.extend([0, 1, 15, 16, 17, 16 + 56, idx_len - 1]);
    for cut in cuts {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        truncate(&index_of(&last_segment(dir.path())), cut);
        let store = reopen(dir.path());
        assert_eq!(all_of(&store, "before"), before, "index cut at {cut}");
        assert_eq!(all_of(&store, "exec"), written, "index cut at {cut}");
        assert!(store.verify().unwrap().is_ok(), "index cut at {cut}");
        assert_writer_goes_on(dir.path(), store, "exec", &written);
    }
}

#[test]
fn deleted_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (before, written) = write_store(dir.path(), 30, true);
    std::fs::remove_file(index_of(&last_segment(dir.path()))).unwrap();
    let store = reopen(dir.path());
    assert_eq!(all_of(&store, "before"), before);
    assert_eq!(all_of(&store, "exec"), written);
    assert!(index_of(&last_segment(dir.path())).exists());
    assert!(store.verify().unwrap().is_ok());
    assert_writer_goes_on(dir.path(), store, "exec", &written);
}

#[test]
fn flipped_bit_in_the_index_is_rebuilt_from_the_segment() {
    let base = tempfile::tempdir().unwrap();
    let (before, written) = write_store(base.path(), 30, true);
    let idx_len = std::fs::metadata(index_of(&last_segment(base.path())))
        .unwrap()
        .len();
    for at in (16..idx_len).step_by(37) {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        flip_bit(&index_of(&last_segment(dir.path())), at, 5);
        let store = reopen(dir.path());
        assert_eq!(all_of(&store, "before"), before, "index flip at {at}");
        assert_eq!(all_of(&store, "exec"), written, "index flip at {at}");
        assert!(store.verify().unwrap().is_ok(), "index flip at {at}");
    }
}

#[test]
fn index_pointing_past_the_end_after_a_power_cut() {
    // Power cut: the segment lost its unsynced end, the index (written later, but in the page
    // cache of another file) kept entries for records that are gone.
    let base = tempfile::tempdir().unwrap();
    let (before, written) = write_store(base.path(), 30, true);
    let seg = last_segment(base.path());
    let frames = frames(&seg);
    // Keep `before` and the first 10 records of exec; cut in the middle of the 11th.
    let (off, len, _, _) = frames[5 + 10];
    for cut in [off, off + len as u64 / 2] {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        truncate(&last_segment(dir.path()), cut);
        let store = reopen(dir.path());
        assert_eq!(all_of(&store, "before"), before);
        assert_eq!(all_of(&store, "exec"), &written[..10], "cut at {cut}");
        assert!(store.verify().unwrap().is_ok());
        assert_writer_goes_on(dir.path(), store, "exec", &written[..10]);
    }
}

#[test]
fn read_only_open_of_a_power_cut_store_reads_exactly_the_intact_entries() {
    // A reader opens a store after a power cut, before any writer recovered it: the index
    // points past the end of the segment, whose last record (the terminal entry) is torn. The
    // reader gets every intact entry and nothing else, verify names the torn record, and list
    // shows the execution as unfinished.
    let dir = tempfile::tempdir().unwrap();
    let (before, written) = write_store(dir.path(), 12, false);
    let seg = last_segment(dir.path());
    let (off, len, exec, _) = frames(&seg).pop().unwrap();
    assert_eq!(exec, "exec");
    truncate(&seg, off + len as u64 / 2);
    let ro = LogStore::open_read_only(dir.path()).unwrap();
    assert_eq!(all_of(&ro, "before"), before);
    let got = ro
        .query(&id("exec"), &logstore::Filter::default())
        .expect("the intact entries of the torn execution read fine");
    assert_eq!(
        got,
        &written[..12],
        "exactly the entries before the torn one"
    );
    let report = ro.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.file == seg && p.offset == off),
        "verify names the torn record at {off}: {:?}",
        report.problems
    );
    let listed: Vec<(String, Option<String>)> = ro
        .list()
        .unwrap()
        .into_iter()
        .map(|s| (s.execution_id.as_str().to_owned(), s.final_state))
        .collect();
    assert_eq!(
        listed,
        [("before".to_owned(), None), ("exec".to_owned(), None)],
        "the torn terminal entry does not count"
    );
}

#[test]
fn flipped_bit_in_a_run_that_is_not_the_last_loses_only_that_record() {
    // The damaged run is followed by other runs, so recovery keeps its index entry (only the
    // index's tail is re-checked) and the query meets the damage itself.
    let dir = tempfile::tempdir().unwrap();
    let (before, written) = write_store(dir.path(), 20, false);
    let after: Vec<LogEntry> = (0..5).map(|i| msg("after", i)).collect();
    {
        let store = reopen(dir.path());
        for e in &after {
            store.append(e).unwrap();
        }
        store
            .finish_execution(&ExecutionId::new("after").unwrap())
            .unwrap();
    }
    let seg = last_segment(dir.path());
    let (off, len, ref exec, _) = frames(&seg)[5 + 10];
    assert_eq!(exec, "exec");
    flip_bit(&seg, off + len as u64 / 2, 3);
    let store = reopen(dir.path());
    assert_eq!(all_of(&store, "before"), before);
    assert_eq!(all_of(&store, "after"), after);
    let report = store.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.file == seg && p.offset == off),
        "verify does not name the damage at {off}: {:?}",
        report.problems
    );
    let mut want = written.clone();
    want.remove(10);
    let got = all_of(&store, "exec");
    let state = store
        .list()
        .unwrap()
        .into_iter()
        .find(|s| s.execution_id.as_str() == "exec")
        .and_then(|s| s.final_state);
    eprintln!(
        "returned {} of {} intact entries; list() final state {state:?}",
        got.len(),
        want.len()
    );
    assert_eq!(
        got, want,
        "the records after the damaged one in the same run must be returned"
    );
    assert_eq!(state.as_deref(), Some("SUCCESS"));
}
